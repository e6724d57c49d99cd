"""Operations an administrator makes on one customer from the control panel — pure.

An operation credits or debits points (a credit may be *special*: a points lot that
expires at `expires_at`), credits or debits a money or products account, or issues a
coupon of a series into the customer's wallet. Each is one small frozen value;
`validate_operation` refuses a malformed one naming the field as the contract names it
(`points_hundredths`, `expires_at`, `account_type_id`, `series_id`, `code`), before
anything is read or written.

Each operation is a transaction of a terminal the administrator chooses, so that it shows
in the transaction log, and is idempotent by the administrator's key: the key becomes the
transaction's check number, `~admin:<key>`. Tills send check numbers of any printable
characters, so the prefix cannot be reserved outright; a till that used one anyway
shares the key space, and the second of the two is refused IDEMPOTENCY_KEY_REUSED (the
digests differ), never applied twice. The key itself is 1 to
`idempotency_key_characters_max` of `A-Z a-z 0-9 . _ : -`.

`operation_refusal` decides, on what the store read (`Circumstances`), whether the
operation may be made at all; settlement (`purse.domain.transactions.settle`) then
decides against the locked balances and coupon series whether it can: its refusals are
turned into errors by `settlement_refusal`. Credits and coupons are refused for a
blacklisted customer and an archived account type; debits are not, so that an
administrator can always take back what a customer should not keep.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, Final

from purse.domain.checks import AccessType
from purse.domain.customers import POINTS_ACCOUNT_TYPE_ID, PocketKind
from purse.domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from purse.domain.reasons import ERROR_REASONS
from purse.domain.transactions import (
    CouponGrant,
    Effects,
    LedgerKind,
    PocketChange,
    pocket_balance_max,
)

# The check number an operation's key becomes: `check_number_prefix` + the key, at most
# 64 characters (the transactions table's limit) with the longest key.
check_number_prefix: Final = "~admin:"
idempotency_key_characters_max: Final = 57
_idempotency_key = re.compile(r"[A-Za-z0-9._:-]+")
# The largest amount one operation moves, in the pocket's unit: no single credit can take
# a pocket past its largest balance by itself.
operation_amount_max: Final = pocket_balance_max
# How far ahead special points may expire.
special_points_days_max: Final = 1_830
# Coupon codes an administrator names: the codes the rest of the setup takes.
_coupon_code = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
# Generated coupon codes: unambiguous characters (no 0/O, 1/I/L, U), long enough that
# they are not guessed (32^12 = 2^60) while a cashier can still type one.
generated_coupon_code_alphabet: Final = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
generated_coupon_code_characters: Final = 12
# Bumped when the digest's input changes shape, so an old key never matches a new request.
_digest_version = 1


class OperationKind(Enum):
    """What an operation does; the value is the audit log's `action` and the document's
    `kind`."""

    POINTS_CREDIT = "credit_points"
    POINTS_DEBIT = "debit_points"
    ACCOUNT_CREDIT = "credit_account"
    ACCOUNT_DEBIT = "debit_account"
    COUPON_ISSUE = "issue_coupon"

    @property
    def resource(self) -> str:
        """What the audit log says it changed: the table, as every back-office entry names
        it, with the customer's id as the resource id (as a card change is)."""
        return "coupons" if self is OperationKind.COUPON_ISSUE else "pockets"


@dataclass(frozen=True, slots=True)
class PointsCredit:
    """Credit points; with `expires_at`, as special points spendable until then; with
    `valid_days`, for that many days from when the operation is first applied (a retry
    of the same key names the same period, so it matches; `with_expiry` turns it into a
    moment)."""

    kind: ClassVar[OperationKind] = OperationKind.POINTS_CREDIT
    points_hundredths: int
    expires_at: datetime | None = None
    valid_days: int = 0


def with_expiry(operation: CustomerOperation, now: datetime) -> CustomerOperation:
    """The operation as applied: a credit valid for some days gets its moment."""
    if isinstance(operation, PointsCredit) and operation.valid_days:
        return PointsCredit(operation.points_hundredths, now + timedelta(days=operation.valid_days))
    return operation


@dataclass(frozen=True, slots=True)
class PointsDebit:
    """Debit points, soonest-to-expire first, as a till's redemption takes them."""

    kind: ClassVar[OperationKind] = OperationKind.POINTS_DEBIT
    points_hundredths: int


@dataclass(frozen=True, slots=True)
class AccountCredit:
    """Replenish a money or products account, `amount` in the account's unit."""

    kind: ClassVar[OperationKind] = OperationKind.ACCOUNT_CREDIT
    account_type_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class AccountDebit:
    """Debit a money or products account, `amount` in the account's unit."""

    kind: ClassVar[OperationKind] = OperationKind.ACCOUNT_DEBIT
    account_type_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class CouponIssue:
    """Issue a coupon of a series into the customer's wallet; without `code`, the server
    generates one (the stored operation names the code it got)."""

    kind: ClassVar[OperationKind] = OperationKind.COUPON_ISSUE
    series_id: int
    code: str | None = None


CustomerOperation = PointsCredit | PointsDebit | AccountCredit | AccountDebit | CouponIssue


def check_number_of(idempotency_key: str, field: str = "idempotency_key") -> str:
    """The check number the key is stored under; InvalidArgument for a malformed key."""
    if len(idempotency_key) > idempotency_key_characters_max or not _idempotency_key.fullmatch(
        idempotency_key
    ):
        description = f"1 to {idempotency_key_characters_max} of A-Z a-z 0-9 . _ : -"
        raise InvalidArgument(
            f"{field}: {description}",
            reason="IDEMPOTENCY_KEY_INVALID",
            violations=(FieldViolation(field, description),),
        )
    return check_number_prefix + idempotency_key


def validate_operation(operation: CustomerOperation, now: datetime) -> None:
    """InvalidArgument naming every malformed field; the reason is the first one's."""
    violations: list[tuple[str, str, str]] = []
    match operation:
        case PointsCredit(points, expires_at, valid_days):
            violations += _amount("points_hundredths", points)
            if expires_at is not None:
                violations += _expiry(expires_at, now)
            if valid_days and expires_at is not None:
                violations.append(
                    ("valid_days", "give expires_at or valid_days, not both", "INVALID_ARGUMENT")
                )
            elif not 0 <= valid_days <= special_points_days_max:
                violations.append(
                    ("valid_days", f"0 to {special_points_days_max}", "EXPIRY_OUT_OF_RANGE")
                )
        case PointsDebit(points):
            violations += _amount("points_hundredths", points)
        case AccountCredit(account_type_id, amount) | AccountDebit(account_type_id, amount):
            if account_type_id <= POINTS_ACCOUNT_TYPE_ID:
                violations.append(
                    ("account_type_id", "an account type id (points have operations of their own)",
                     "INVALID_ARGUMENT")
                )  # fmt: skip
            violations += _amount("amount", amount)
        case CouponIssue(series_id, code):
            if series_id <= 0:
                violations.append(("series_id", "a coupon series id", "INVALID_ARGUMENT"))
            if code is not None and not _coupon_code.fullmatch(code):
                violations.append(
                    ("code", "1 to 64 of A-Z a-z 0-9 . _ : / -", "COUPON_CODE_INVALID")
                )
    if violations:
        field, description, reason = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise InvalidArgument(
            f"{field}: {description}{more}",
            reason=reason,
            violations=tuple(FieldViolation(path, text) for path, text, _ in violations),
        )


def _amount(field: str, value: int) -> list[tuple[str, str, str]]:
    if 0 < value <= operation_amount_max:
        return []
    return [(field, f"from 1 to {operation_amount_max}", "AMOUNT_OUT_OF_RANGE")]


def _expiry(expires_at: datetime, now: datetime) -> list[tuple[str, str, str]]:
    latest = now + timedelta(days=special_points_days_max)
    if expires_at.tzinfo is None or not now < expires_at <= latest:
        description = f"after now and at most {special_points_days_max} days ahead"
        return [("expires_at", description, "EXPIRY_OUT_OF_RANGE")]
    return []


@dataclass(frozen=True, slots=True)
class TerminalState:
    """The chosen terminal as stored."""

    point_of_sale_id: int
    enabled: bool
    archived: bool


@dataclass(frozen=True, slots=True)
class AccountTypeState:
    """The account type an account operation names, as stored."""

    kind: PocketKind
    archived: bool


@dataclass(frozen=True, slots=True)
class Circumstances:
    """What an operation is decided on, read together; None: not in this business."""

    terminal: TerminalState | None
    access_type: AccessType | None
    account_type: AccountTypeState | None = None
    series_found: bool = False


def terminal_refusal(terminal: TerminalState | None) -> DomainError | None:
    """Why the chosen terminal cannot carry an operation, or None."""
    if terminal is None:
        return NotFound("no such terminal in this business", reason="TERMINAL_NOT_FOUND")
    if terminal.archived:
        return FailedPrecondition("the terminal is archived; choose another", reason="ARCHIVED")
    if not terminal.enabled:
        return FailedPrecondition(
            "the terminal is disabled; choose another", reason="OPERATION_TERMINAL_DISABLED"
        )
    return None


_credits = (PointsCredit, AccountCredit, CouponIssue)
_adjustable_kinds = frozenset({PocketKind.MONEY, PocketKind.PRODUCTS})


def operation_refusal(
    operation: CustomerOperation, circumstances: Circumstances
) -> NotFound | FailedPrecondition | None:
    """Why the operation cannot be made on this customer: NotFound for what does not
    exist (nothing is stored), FailedPrecondition for a refusal that is the key's answer."""
    if circumstances.access_type is None:
        return NotFound("no such customer in this business", reason="CUSTOMER_NOT_FOUND")
    if isinstance(operation, AccountCredit | AccountDebit):
        account = circumstances.account_type
        if account is None:
            return NotFound(
                "no such account type in this business", reason="ACCOUNT_TYPE_NOT_FOUND"
            )
        if account.kind not in _adjustable_kinds:
            return FailedPrecondition(
                f"{account.kind.value} accounts are not credited or debited by hand",
                reason="ACCOUNT_KIND_NOT_ADJUSTABLE",
            )
        if account.archived and isinstance(operation, AccountCredit):
            return FailedPrecondition("the account type is archived", reason="ARCHIVED")
    if isinstance(operation, CouponIssue) and not circumstances.series_found:
        return NotFound("no such coupon series in this business", reason="COUPON_SERIES_NOT_FOUND")
    if circumstances.access_type is AccessType.BLACKLISTED and isinstance(operation, _credits):
        return FailedPrecondition(
            "the customer is blacklisted: nothing is credited or issued to them",
            reason="CUSTOMER_BLACKLISTED",
        )
    return None


def effects_of_operation(operation: CustomerOperation, customer_id: int) -> Effects:
    """What the operation changes; a coupon issue needs its code decided first."""
    match operation:
        case PointsCredit(points, expires_at):
            pocket = (customer_id, POINTS_ACCOUNT_TYPE_ID)
            return Effects(
                pockets=(PocketChange(pocket, LedgerKind.ADJUST, points, expires_at=expires_at),)
            )
        case PointsDebit(points):
            pocket = (customer_id, POINTS_ACCOUNT_TYPE_ID)
            # Spent points come out of the lots soonest-to-expire first, as at a till.
            return Effects(
                pockets=(PocketChange(pocket, LedgerKind.ADJUST, -points),), points_spent=points
            )
        case AccountCredit(account_type_id, amount):
            return Effects(
                pockets=(PocketChange((customer_id, account_type_id), LedgerKind.ADJUST, amount),)
            )
        case AccountDebit(account_type_id, amount):
            return Effects(
                pockets=(PocketChange((customer_id, account_type_id), LedgerKind.ADJUST, -amount),)
            )
        case CouponIssue(series_id, code):
            assert code is not None, "decide the code before the effects"
            return Effects(coupons_issued=(CouponGrant(series_id, code, customer_id),))
    raise AssertionError(f"unknown operation {operation!r}")


def operation_document(operation: CustomerOperation) -> dict[str, Any]:
    """The operation as stored with its transaction (and in the audit log)."""
    document: dict[str, Any] = {"kind": operation.kind.value}
    match operation:
        case PointsCredit(points, expires_at, valid_days):
            document["points_hundredths"] = points
            # In UTC: one moment, one text, one digest, whatever zone it came in.
            document["expires_at"] = (
                None if expires_at is None else expires_at.astimezone(UTC).isoformat()
            )
            if valid_days:
                document["valid_days"] = valid_days
        case PointsDebit(points):
            document["points_hundredths"] = points
        case AccountCredit(account_type_id, amount) | AccountDebit(account_type_id, amount):
            document["account_type_id"] = account_type_id
            document["amount"] = amount
        case CouponIssue(series_id, code):
            document["series_id"] = series_id
            document["code"] = code
    return document


def operation_from_document(document: dict[str, Any]) -> CustomerOperation:
    """The inverse of `operation_document`."""
    kind = OperationKind(document["kind"])
    if kind is OperationKind.POINTS_CREDIT:
        expires_at = document.get("expires_at")
        return PointsCredit(
            document["points_hundredths"],
            None if expires_at is None else datetime.fromisoformat(expires_at),
            document.get("valid_days", 0),
        )
    if kind is OperationKind.POINTS_DEBIT:
        return PointsDebit(document["points_hundredths"])
    if kind is OperationKind.ACCOUNT_CREDIT:
        return AccountCredit(document["account_type_id"], document["amount"])
    if kind is OperationKind.ACCOUNT_DEBIT:
        return AccountDebit(document["account_type_id"], document["amount"])
    return CouponIssue(document["series_id"], document.get("code"))


def request_digest(customer_id: int, operation: CustomerOperation) -> bytes:
    """The digest a key is compared on: the customer and the operation as requested (a
    coupon without a code digests as such, whatever code it was given)."""
    canonical = json.dumps(
        [_digest_version, customer_id, operation_document(operation)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(b"purse/customer-operation\0" + canonical.encode()).digest()


# Messages for settlement's refusals of an operation; the reason is settlement's own.
_settlement_messages: Final = {
    "INSUFFICIENT_POINTS": "the customer has fewer points available than the debit",
    "INSUFFICIENT_BALANCE": "the account holds less available than the debit",
    "BALANCE_LIMIT": "the credit would take the pocket past its largest balance",
    "COUPON_SERIES_EXHAUSTED": "every coupon the series allows has been issued",
    "ARCHIVED": "the coupon series is archived",
    "COUPON_SERIES_NOT_FOUND": "no such coupon series in this business",
    "CODE_TAKEN": "a coupon of this business has this code already",
    # Not for an operation (it has no certificates, coupons to use or expectations), but
    # every refusal of settlement has its words.
    "INSUFFICIENT_CERTIFICATE_BALANCE": "not enough on the certificate",
    "COUPON_ALREADY_USED": "the coupon was used meanwhile",
    "BALANCE_CHANGED": "a balance changed meanwhile; send the operation again",
}


def settlement_refusal(reason: str) -> DomainError:
    """The error for an operation settlement refused (now, or when it was first made)."""
    message = _settlement_messages.get(reason, "the operation was refused")
    if reason == "CODE_TAKEN":
        return AlreadyExists(message, reason=reason)
    if reason == "COUPON_SERIES_NOT_FOUND":
        return NotFound(message, reason=reason)
    return FailedPrecondition(
        message, reason=reason if reason in ERROR_REASONS else "FAILED_PRECONDITION"
    )


def stored_refusal(refusal: dict[str, Any]) -> DomainError:
    """The error a key's stored refusal answers with: one decided before settlement is
    stored whole; settlement's by its reason."""
    if "message" in refusal:
        violations = tuple(
            FieldViolation(path, text) for path, text in refusal.get("violations", ())
        )
        return FailedPrecondition(
            refusal["message"], reason=refusal["reason"], violations=violations
        )
    return settlement_refusal(str(refusal.get("reason", "")))
