"""Terminals and who they speak for: the context every terminal call runs in."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TerminalKind(Enum):
    """The workplace a terminal is (stored as the enum value)."""

    CASH_DESK = "cash_desk"
    POS_APP = "pos_app"
    EXTERNAL_POS = "external_pos"
    KIOSK = "kiosk"
    STEWARD = "steward"
    ONLINE = "online"


class NoticeChannel(Enum):
    """How a program tells customers about their transactions (stored as the value, which
    is the outbox's channel; NONE writes no notice at all)."""

    SMS = "sms"
    PUSH = "push"
    SMART = "smart"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class TerminalContext:
    """A resolved, enabled terminal with its business, point of sale and program."""

    business_id: int
    business_name: str
    point_of_sale_id: int
    point_of_sale_name: str
    terminal_id: int
    terminal_name: str
    kind: TerminalKind
    enabled: bool
    program_id: int
    program_name: str
    currency: str
    currency_exponent: int
    phone_prefix: str
    time_zone: str
    enrols_unknown_phones: bool
    default_access_type: str
    # A digest of the password's hash: tokens carry it, so a new password revokes them.
    credential_stamp: bytes = bytes(8)
    # How the program tells customers about the transactions of this terminal.
    notice_channel: NoticeChannel = NoticeChannel.SMS
