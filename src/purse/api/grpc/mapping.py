"""Protobuf ⇄ domain, in one place. Nothing outside `purse.api` sees a protobuf message."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from purse.domain import moments
from purse.domain.customers import (
    POINTS_ACCOUNT_TYPE_ID,
    AccessType,
    CustomerMatch,
    Membership,
    Pocket,
    PocketKind,
    StoredIdentifier,
)
from purse.domain.errors import invalid
from purse.domain.identifiers import Identifier, IdentifierKind
from purse.domain.terminals import TerminalContext, TerminalKind
from purse.v1 import common_pb2, terminal_service_pb2

ACCESS_TYPES = {
    AccessType.FULL: common_pb2.ACCESS_TYPE_FULL,
    AccessType.LIMITED: common_pb2.ACCESS_TYPE_LIMITED,
    AccessType.NONE: common_pb2.ACCESS_TYPE_NONE,
    AccessType.BLACKLISTED: common_pb2.ACCESS_TYPE_BLACKLISTED,
}
POCKET_KINDS = {
    PocketKind.POINTS: common_pb2.POCKET_KIND_POINTS,
    PocketKind.MONEY: common_pb2.POCKET_KIND_MONEY_ACCOUNT,
    PocketKind.PRODUCTS: common_pb2.POCKET_KIND_PRODUCTS_ACCOUNT,
    PocketKind.ACHIEVEMENTS: common_pb2.POCKET_KIND_ACHIEVEMENTS_ACCOUNT,
}
POCKET_UNITS = {
    PocketKind.POINTS: common_pb2.POCKET_UNIT_POINT_HUNDREDTHS,
    PocketKind.MONEY: common_pb2.POCKET_UNIT_MINOR_UNITS,
    PocketKind.PRODUCTS: common_pb2.POCKET_UNIT_THOUSANDTHS,
    PocketKind.ACHIEVEMENTS: common_pb2.POCKET_UNIT_COUNT,
}
TERMINAL_KINDS = {
    TerminalKind.CASH_DESK: terminal_service_pb2.TERMINAL_KIND_CASH_DESK,
    TerminalKind.KIOSK: terminal_service_pb2.TERMINAL_KIND_KIOSK,
    TerminalKind.STEWARD: terminal_service_pb2.TERMINAL_KIND_STEWARD,
    TerminalKind.ONLINE: terminal_service_pb2.TERMINAL_KIND_ONLINE,
}
IDENTIFIER_KINDS = {
    IdentifierKind.PHONE: common_pb2.IDENTIFIER_KIND_PHONE,
    IdentifierKind.CARD_NUMBER: common_pb2.IDENTIFIER_KIND_CARD_NUMBER,
    IdentifierKind.CARD_QR: common_pb2.IDENTIFIER_KIND_CARD_QR,
}
STORED_KINDS_FROM_PROTO: dict[int, IdentifierKind] = {
    common_pb2.IDENTIFIER_KIND_CARD_NUMBER: IdentifierKind.CARD_NUMBER,
    common_pb2.IDENTIFIER_KIND_CARD_QR: IdentifierKind.CARD_QR,
}


def moment_from_proto(value: timestamp_pb2.Timestamp, field: str) -> datetime:
    """A timestamp a caller sent, refused (naming `field`) outside the accepted range."""
    problem = moments.moment_seconds_violation(value.seconds, value.nanos)
    if problem is not None:
        raise invalid(field, problem, reason="TIMESTAMP_OUT_OF_RANGE")
    return value.ToDatetime(tzinfo=UTC)


def timestamp(moment: datetime | float | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    value = timestamp_pb2.Timestamp()
    if isinstance(moment, datetime):
        value.FromDatetime(moment)
    else:
        value.FromNanoseconds(int(moment * 1_000_000_000))
    return value


def identifier_from_proto(
    message: common_pb2.CustomerIdentifier, field: str = "identifier"
) -> Identifier:
    """The one identifier set in the oneof; InvalidArgument when none is."""
    which = message.WhichOneof("value")
    if which is None:
        raise invalid(
            field,
            "set one of phone, card_number, card_qr, app_token, steward_code",
            "IDENTIFIER_MISSING",
        )
    return Identifier(IdentifierKind(which), getattr(message, which))


def stored_kind_from_proto(kind: int) -> IdentifierKind:
    found = STORED_KINDS_FROM_PROTO.get(kind)
    if found is None:
        raise invalid("kind", "CARD_NUMBER or CARD_QR", "KIND_INVALID")
    return found


def pocket_to_proto(pocket: Pocket) -> common_pb2.Pocket:
    return common_pb2.Pocket(
        pocket_id=pocket.pocket_id,
        kind=POCKET_KINDS[pocket.kind],
        unit=POCKET_UNITS[pocket.kind],
        account_type_id=pocket.account_type_id
        if pocket.account_type_id != POINTS_ACCOUNT_TYPE_ID
        else 0,
        title=pocket.title,
        balance=pocket.balance,
        held=pocket.held,
        available=pocket.available,
        expiring=pocket.expiring,
        next_expiry_time=timestamp(pocket.next_expiry),
        redemption_limit_without_pin=pocket.redemption_limit_without_pin,
    )


def membership_to_proto(membership: Membership) -> common_pb2.Membership:
    return common_pb2.Membership(
        customer_id=membership.customer_id,
        phone=membership.phone,
        category_id=membership.category_id,
        category_title=membership.category_title,
        access_type=ACCESS_TYPES[membership.access_type],
        participation_confirmed=membership.participation_confirmed,
        newly_enrolled=membership.newly_enrolled,
        pockets=[pocket_to_proto(pocket) for pocket in membership.pockets],
        sales_count=membership.sales_count,
        sales_sum_minor_units=membership.sales_sum_minor_units,
        last_visit_time=timestamp(membership.last_visit),
        given_name=membership.given_name,
        family_name=membership.family_name,
        language=membership.language,
    )


def stored_identifier_to_proto(
    identifier: StoredIdentifier,
) -> terminal_service_pb2.StoredIdentifier:
    return terminal_service_pb2.StoredIdentifier(
        kind=IDENTIFIER_KINDS[identifier.kind], value=identifier.value
    )


def match_to_proto(match: CustomerMatch) -> terminal_service_pb2.CustomerMatch:
    return terminal_service_pb2.CustomerMatch(
        membership=membership_to_proto(match.membership),
        identifiers=[stored_identifier_to_proto(item) for item in match.identifiers],
    )


def terminal_to_proto(terminal: TerminalContext) -> terminal_service_pb2.TerminalSummary:
    return terminal_service_pb2.TerminalSummary(
        business_id=terminal.business_id,
        business_name=terminal.business_name,
        point_of_sale_id=terminal.point_of_sale_id,
        point_of_sale_name=terminal.point_of_sale_name,
        terminal_id=terminal.terminal_id,
        terminal_name=terminal.terminal_name,
        kind=TERMINAL_KINDS[terminal.kind],
    )
