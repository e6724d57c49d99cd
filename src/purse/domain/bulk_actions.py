"""Bulk actions: one administrator's action on a selection of customers — pure.

An action is one of: credit points (special points with `expires_at` or `valid_days`),
replenish a money or products account, issue a coupon of a series, change the category,
change the access type, send a message, or send a news notification. Credits and coupons
may carry a message; sending a message always does. A message goes by SMS, push or smart
(push, and SMS where the push was not delivered), with the business's template
(`{name}`, `{balance}`, `{points}`, `{coupon}`) or, left blank, the system text.

`validate_action` refuses a malformed action naming the field by its path in the
contract (`action.credit_points.points_hundredths`, `action.message.template`) before
anything is read. `action_document`/`action_from_document` are the stored form.

Every member of a bulk operation gets the action once: a credit or coupon is a
transaction whose check number is `member_check_number(operation, customer)` on the
administrator's terminal (unique per terminal, so a second write of it is the first one
read back), and a message without a credit is written with the member's move to done.

`estimate` is the dry run: from what each selected customer is now (`Recipient`), how
many are reached, what is credited in all, and the messages by channel, the rejected
ones (customers who have not confirmed participation get none: rejected, at no cost),
their SMS segments and the cost at the segment price.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final

from purse.domain.checks import AccessType
from purse.domain.customer_operations import (
    AccountCredit,
    CouponIssue,
    PointsCredit,
    operation_document,
    operation_from_document,
    validate_operation,
)
from purse.domain.errors import FieldViolation, InvalidArgument, invalid
from purse.domain.sms import sms_cost_minor_units, sms_length
from purse.domain.terminals import NoticeChannel

# A selection the dry run may freeze; a larger one is refused SELECTION_TOO_LARGE.
bulk_customers_max: Final = 2_000_000
# How long a dry run's token starts its operation.
draft_seconds_max: Final = 3_600
template_characters_max: Final = 1_000
# The check number of a member's transaction: at most 64 characters with the largest ids.
member_check_number_prefix: Final = "~bulk:"


class BulkActionKind(Enum):
    """What a bulk action does; the value is stored and is the audit log's action."""

    CREDIT_POINTS = "credit_points"
    CREDIT_ACCOUNT = "credit_account"
    ISSUE_COUPONS = "issue_coupons"
    CHANGE_CATEGORY = "change_category"
    CHANGE_ACCESS_TYPE = "change_access_type"
    SEND_MESSAGE = "send_message"
    SEND_NEWS = "send_news"

    @property
    def through_ledger(self) -> bool:
        """Whether each member gets a transaction of the administrator's terminal."""
        return self in _ledger_kinds


_ledger_kinds = frozenset(
    {BulkActionKind.CREDIT_POINTS, BulkActionKind.CREDIT_ACCOUNT, BulkActionKind.ISSUE_COUPONS}
)


class OperationState(Enum):
    DRAFT = "draft"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (OperationState.SUCCEEDED, OperationState.CANCELLED)


class MemberState(Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class CategoryChange:
    category_id: int


@dataclass(frozen=True, slots=True)
class AccessTypeChange:
    access_type: AccessType


@dataclass(frozen=True, slots=True)
class MessageOnly:
    """Send the message and nothing else."""


@dataclass(frozen=True, slots=True)
class NewsNotice:
    """A push about one of the business's news items."""

    news_item_id: int


Change = (
    PointsCredit
    | AccountCredit
    | CouponIssue
    | CategoryChange
    | AccessTypeChange
    | MessageOnly
    | NewsNotice
)

_kind_of: Final[dict[type, BulkActionKind]] = {
    PointsCredit: BulkActionKind.CREDIT_POINTS,
    AccountCredit: BulkActionKind.CREDIT_ACCOUNT,
    CouponIssue: BulkActionKind.ISSUE_COUPONS,
    CategoryChange: BulkActionKind.CHANGE_CATEGORY,
    AccessTypeChange: BulkActionKind.CHANGE_ACCESS_TYPE,
    MessageOnly: BulkActionKind.SEND_MESSAGE,
    NewsNotice: BulkActionKind.SEND_NEWS,
}


@dataclass(frozen=True, slots=True)
class BulkMessage:
    """A message to each member; a blank template sends the system text."""

    channel: NoticeChannel
    template: str = ""


@dataclass(frozen=True, slots=True)
class BulkAction:
    change: Change
    message: BulkMessage | None = None

    @property
    def kind(self) -> BulkActionKind:
        return _kind_of[type(self.change)]

    @property
    def sent(self) -> BulkMessage | None:
        """The message each member is sent: the one given, or a news item's push."""
        if isinstance(self.change, NewsNotice):
            return BulkMessage(NoticeChannel.PUSH)
        return self.message


def validate_action(action: BulkAction, now: datetime, path: str = "action") -> None:
    """InvalidArgument naming the path of what is malformed."""
    change = action.change
    prefix = f"{path}.{action.kind.value}"
    if isinstance(change, PointsCredit | AccountCredit | CouponIssue):
        if isinstance(change, CouponIssue) and change.code is not None:
            raise invalid(f"{prefix}.code", "bulk coupons get generated codes: leave it empty")
        try:
            validate_operation(change, now)
        except InvalidArgument as error:
            raise _prefixed(error, prefix) from None
    elif isinstance(change, CategoryChange) and change.category_id <= 0:
        raise invalid(f"{prefix}.category_id", "a customer category id")
    elif isinstance(change, NewsNotice) and change.news_item_id <= 0:
        raise invalid(f"{prefix}.news_item_id", "a news item id")
    message = action.message
    if isinstance(change, MessageOnly) and message is None:
        raise invalid(f"{path}.message", "required to send a message")
    if message is not None:
        if isinstance(change, CategoryChange | AccessTypeChange | NewsNotice):
            raise invalid(f"{path}.message", f"{action.kind.value} takes no message")
        blank_allowed = not isinstance(change, MessageOnly)
        _validate_message(message, f"{path}.message", blank_allowed)


def _validate_message(message: BulkMessage, path: str, blank_allowed: bool) -> None:
    """The channel and the template's length; its variables are the texts' to check
    (`purse.notify.texts.check_bulk_template`), which the use case calls."""
    if message.channel is NoticeChannel.NONE:
        raise invalid(f"{path}.channel", "SMS, push or smart")
    if len(message.template) > template_characters_max:
        raise invalid(f"{path}.template", f"at most {template_characters_max} characters")
    if not message.template.strip() and not blank_allowed:
        raise invalid(f"{path}.template", "the text to send")


def _prefixed(error: InvalidArgument, prefix: str) -> InvalidArgument:
    violations = tuple(
        FieldViolation(f"{prefix}.{violation.field}", violation.description)
        for violation in error.violations
    )
    return InvalidArgument(f"{prefix}.{error.message}", reason=error.reason, violations=violations)


def member_check_number(operation_id: int, customer_id: int) -> str:
    return f"{member_check_number_prefix}{operation_id}:{customer_id}"


def member_request_digest(operation_id: int, customer_id: int) -> bytes:
    """The digest of a member's transaction: the operation and the member."""
    return hashlib.sha256(f"purse/bulk\0{operation_id}\0{customer_id}".encode()).digest()


def token_digest(token: str) -> bytes:
    return hashlib.sha256(b"purse/bulk-token\0" + token.encode()).digest()


def action_document(action: BulkAction) -> dict[str, Any]:
    """The action as stored with its operation (and in the audit log)."""
    change = action.change
    document: dict[str, Any] = {"kind": action.kind.value}
    if isinstance(change, PointsCredit | AccountCredit | CouponIssue):
        document["operation"] = operation_document(change)
    elif isinstance(change, CategoryChange):
        document["category_id"] = change.category_id
    elif isinstance(change, AccessTypeChange):
        document["access_type"] = change.access_type.value
    elif isinstance(change, NewsNotice):
        document["news_item_id"] = change.news_item_id
    if action.message is not None:
        document["message"] = {
            "channel": action.message.channel.value,
            "template": action.message.template,
        }
    return document


def action_from_document(document: dict[str, Any]) -> BulkAction:
    kind = BulkActionKind(document["kind"])
    change: Change
    if kind.through_ledger:
        operation = operation_from_document(document["operation"])
        assert isinstance(operation, PointsCredit | AccountCredit | CouponIssue)
        change = operation
    elif kind is BulkActionKind.CHANGE_CATEGORY:
        change = CategoryChange(document["category_id"])
    elif kind is BulkActionKind.CHANGE_ACCESS_TYPE:
        change = AccessTypeChange(AccessType(document["access_type"]))
    elif kind is BulkActionKind.SEND_NEWS:
        change = NewsNotice(document["news_item_id"])
    else:
        change = MessageOnly()
    message = document.get("message")
    return BulkAction(
        change,
        None
        if message is None
        else BulkMessage(NoticeChannel(message["channel"]), message["template"]),
    )


@dataclass(frozen=True, slots=True)
class Recipient:
    """A selected customer as the dry run sees them."""

    customer_id: int
    access_type: AccessType
    participation_confirmed: bool
    has_device: bool
    # The text the customer would get (already rendered), or "" without a message.
    text: str = ""


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the dry run counted; amounts in the action's unit."""

    customers: int = 0
    # Customers the change reaches (credits and coupons skip blacklisted customers).
    changed: int = 0
    amount_total: int = 0
    messages_sms: int = 0
    messages_push: int = 0
    rejected: int = 0
    sms_segments: int = 0
    sms_cost_minor_units: int = 0
    # Of the members skipped: blacklisted customers get no credit or coupon.
    skipped: int = 0


def _amount_of(change: Change) -> int:
    if isinstance(change, PointsCredit):
        return change.points_hundredths
    if isinstance(change, AccountCredit):
        return change.amount
    if isinstance(change, CouponIssue):
        return 1
    return 0


def member_refusal(action: BulkAction, access_type: AccessType) -> str | None:
    """Why a member is skipped (rejected) by the action itself, or None."""
    if action.kind.through_ledger and access_type is AccessType.BLACKLISTED:
        return "CUSTOMER_BLACKLISTED"
    return None


def message_route(channel: NoticeChannel, recipient: Recipient) -> NoticeChannel | None:
    """Where a member's message is expected to go; None: rejected (no participation, or
    a push without a device)."""
    if not recipient.participation_confirmed:
        return None
    if channel is NoticeChannel.SMART:
        return NoticeChannel.PUSH if recipient.has_device else NoticeChannel.SMS
    if channel is NoticeChannel.PUSH and not recipient.has_device:
        return None
    return channel


def estimate(
    action: BulkAction, recipients: Iterable[Recipient], segment_price_minor_units: int
) -> Estimate:
    """The dry run's figures over the selected customers."""
    customers = changed = skipped = sms = push = rejected = segments = 0
    amount = _amount_of(action.change)
    for recipient in recipients:
        customers += 1
        if member_refusal(action, recipient.access_type) is not None:
            skipped += 1
            continue
        changed += 1
        if action.sent is None:
            continue
        route = message_route(action.sent.channel, recipient)
        if route is None:
            rejected += 1
        elif route is NoticeChannel.PUSH:
            push += 1
        else:
            sms += 1
            segments += sms_length(recipient.text).segments
    return Estimate(
        customers=customers,
        changed=changed,
        amount_total=amount * changed,
        messages_sms=sms,
        messages_push=push,
        rejected=rejected,
        sms_segments=segments,
        sms_cost_minor_units=sms_cost_minor_units(segments, segment_price_minor_units),
        skipped=skipped,
    )


def added(first: Estimate, second: Estimate) -> Estimate:
    """Two parts of a selection's figures as one (the dry run counts a batch at a time)."""
    return Estimate(
        *(getattr(first, name) + getattr(second, name) for name in Estimate.__dataclass_fields__)
    )


def estimate_document(figures: Estimate) -> dict[str, int]:
    return {
        "customers": figures.customers,
        "changed": figures.changed,
        "amount_total": figures.amount_total,
        "messages_sms": figures.messages_sms,
        "messages_push": figures.messages_push,
        "rejected": figures.rejected,
        "sms_segments": figures.sms_segments,
        "sms_cost_minor_units": figures.sms_cost_minor_units,
        "skipped": figures.skipped,
    }


def estimate_from_document(document: dict[str, int]) -> Estimate:
    return Estimate(**{name: int(value) for name, value in document.items()})
