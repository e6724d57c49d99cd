"""Protobuf ⇄ domain for the messages every contract shares (common.proto: moments,
identifiers, memberships, pockets); each contract maps its own messages in its own
package. Nothing outside `purse.api` sees a protobuf message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from purse.domain import moments
from purse.domain.customers import (
    POINTS_ACCOUNT_TYPE_ID,
    AccessType,
    Membership,
    Pocket,
    PocketKind,
)
from purse.domain.errors import invalid
from purse.domain.identifiers import Identifier, IdentifierKind
from purse.v1 import common_pb2

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
        set_timestamp(value, moment)
    else:
        value.FromNanoseconds(int(moment * 1_000_000_000))
    return value


_epoch = datetime(1970, 1, 1, tzinfo=UTC)


def set_timestamp(target: timestamp_pb2.Timestamp, moment: datetime) -> None:
    """`target` set to `moment` in place (a response's own field: nothing built apart and
    copied in). Timezone-aware moments by arithmetic, which `FromDatetime` costs several
    times over; a naive one is UTC, as `FromDatetime` has it."""
    if moment.tzinfo is None:
        target.FromDatetime(moment)
        return
    elapsed = moment - _epoch
    target.seconds = elapsed.days * 86_400 + elapsed.seconds
    target.nanos = elapsed.microseconds * 1000


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
    message = common_pb2.Pocket(**_pocket_fields(pocket))
    if pocket.next_expiry is not None:
        set_timestamp(message.next_expiry_time, pocket.next_expiry)
    return message


def _pocket_fields(pocket: Pocket) -> dict[str, Any]:
    """A pocket's scalar fields by their proto names (its next expiry is a message)."""
    return {
        "pocket_id": pocket.pocket_id,
        "kind": POCKET_KINDS[pocket.kind],
        "unit": POCKET_UNITS[pocket.kind],
        "account_type_id": pocket.account_type_id
        if pocket.account_type_id != POINTS_ACCOUNT_TYPE_ID
        else 0,
        "title": pocket.title,
        "balance": pocket.balance,
        "held": pocket.held,
        "available": pocket.available,
        "expiring": pocket.expiring,
        "redemption_limit_without_pin": pocket.redemption_limit_without_pin,
    }


def membership_to_proto(membership: Membership) -> common_pb2.Membership:
    message = common_pb2.Membership()
    fill_membership(message, membership)
    return message


def fill_membership(message: common_pb2.Membership, membership: Membership) -> None:
    """`message` (empty, usually a response's own field) set to `membership` in place."""
    message.customer_id = membership.customer_id
    message.phone = membership.phone
    message.category_id = membership.category_id
    message.category_title = membership.category_title
    message.access_type = ACCESS_TYPES[membership.access_type]
    message.participation_confirmed = membership.participation_confirmed
    message.newly_enrolled = membership.newly_enrolled
    add_pocket = message.pockets.add
    for pocket in membership.pockets:
        added = add_pocket(**_pocket_fields(pocket))
        if pocket.next_expiry is not None:
            set_timestamp(added.next_expiry_time, pocket.next_expiry)
    message.sales_count = membership.sales_count
    message.sales_sum_minor_units = membership.sales_sum_minor_units
    if membership.last_visit is not None:
        set_timestamp(message.last_visit_time, membership.last_visit)
    message.given_name = membership.given_name
    message.family_name = membership.family_name
    message.language = membership.language
