"""What a transaction does to pockets, and settling a batch of them — pure.

A processed check becomes a list of *changes*: to pockets (balance and held), to points
lots, to certificates and to coupons. `effects_of_sale` derives them from a receipt:

* completed at once: debits are posted (balance falls), accruals credited;
* pending (a PIN is needed): debits are *held* (held rises, balance does not), nothing
  is accrued; coupons are reserved;
* `effects_of_confirmation` posts the holds and applies the accruals;
* `effects_of_release` voids the holds (cancel, expiry, too many wrong PINs).

Points lots (special, expiring points) follow the points themselves: a completed sale
takes what it spends from the live lots, soonest-to-expire first; a pending sale takes
what it holds the same way at once. Either keeps the amounts per lot (its
*reservations*), so that a lot expiring during a hold is written off only for what is
not held. Confirming leaves the lots as they are; releasing, and refunding, give the
points back to their lots (an expired lot then goes to the sweeper). A sale stored
before reservations existed has none (None): a pending one has its lots taken when it
is confirmed, as they always were.

`settle` applies the operations of one batch in order to the balances locked for it and
refuses any operation that would take a pocket's available amount (balance − held) or a
certificate's below zero, or use a coupon that is not in the state it expects. A refused
operation changes nothing; its neighbours are unaffected. Decisions about money are made
here, against rows locked in PostgreSQL, never in Redis.

A sale is calculated on balances read before they were locked. It names them
(`Effects.expected`), and settlement refuses it as BALANCE_CHANGED when a pocket it
touches no longer holds what was read — another check of the same customer came first.
Such a refusal is not an answer: the sale is calculated again on what is committed now,
so every check of a customer is calculated on the state the previous one left, exactly
as if they had been sent one by one. Only FINAL_REFUSALS are stored as a check's answer.

An administrator's operation (`purse.domain.customer_operations`) may also create what a
check never does: a points lot (a credit with `expires_at`: special points) and coupons
of a series (`Effects.coupons_issued`), which settlement counts against the series' cap
as it stands locked, refusing one too many, or one of an archived series, or a code the
business has already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Final

from purse.domain.checks import Receipt, SourceKind
from purse.domain.customers import POINTS_ACCOUNT_TYPE_ID
from purse.domain.records import Record

if TYPE_CHECKING:  # that module builds on this one
    from purse.domain.customer_operations import CustomerOperation


class LedgerKind(Enum):
    """The kinds of ledger entries (the `ledger_entries.kind` column)."""

    ACCRUE = "accrue"
    REDEEM = "redeem"
    HOLD = "hold"
    POST = "post"
    VOID = "void"
    EXPIRE = "expire"
    ADJUST = "adjust"
    REFUND = "refund"


class TransactionStatus(Enum):
    PENDING = "pending"
    COMPLETED = "completed"
    # A completed sale after refunds: some of its lines, or all of them.
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    LOCKED = "locked"
    REJECTED = "rejected"


# A pocket is named by (customer id, account type id); account type 0 is the points pocket.
# Typed as a tuple of any length: compiled, a tuple of fixed length is kept unboxed, and
# rebuilt as an object every time it is used as a dictionary key, as pocket keys always are.
PocketKey = tuple[int, ...]
# The largest balance of any pocket, in its unit: sums of balances and of any change a
# check can make stay far inside a 64-bit integer.
pocket_balance_max: Final = 10**17


# The records every sale builds and settlement reads (changes, effects, balances) are
# `Record`s, built natively when compiled; see `purse.domain.records`.


class PocketChange(Record):
    """One ledger entry: `amount` changes the balance, `held_amount` the held part. A
    credit of points with `expires_at` makes its points a new lot, spendable until then."""

    __slots__ = ("amount", "expires_at", "held_amount", "kind", "pocket")
    _fields: ClassVar[tuple[str, ...]] = ("pocket", "kind", "amount", "held_amount", "expires_at")

    def __init__(
        self,
        pocket: PocketKey,
        kind: LedgerKind,
        amount: int = 0,
        held_amount: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self.pocket: Final = pocket
        self.kind: Final = kind
        self.amount: Final = amount
        self.held_amount: Final = held_amount
        self.expires_at: Final = expires_at


class CertificateChange(Record):
    __slots__ = ("amount", "certificate_id", "held_amount")
    _fields: ClassVar[tuple[str, ...]] = ("certificate_id", "amount", "held_amount")

    def __init__(self, certificate_id: int, amount: int = 0, held_amount: int = 0) -> None:
        self.certificate_id: Final = certificate_id
        self.amount: Final = amount
        self.held_amount: Final = held_amount


class CouponChange(Record):
    """Move a coupon from `expected` status to `status`."""

    __slots__ = ("coupon_id", "expected", "status")
    _fields: ClassVar[tuple[str, ...]] = ("coupon_id", "expected", "status")

    def __init__(self, coupon_id: int, expected: str, status: str) -> None:
        self.coupon_id: Final = coupon_id
        self.expected: Final = expected
        self.status: Final = status


@dataclass(frozen=True, slots=True)
class CouponGrant:
    """Issue a coupon of `series_id` with `code` into the customer's wallet."""

    series_id: int
    code: str
    customer_id: int


class Effects(Record):
    """Everything one operation changes, besides its own transaction or refund row.

    `points_spent`: points posted as spent, taken from the customer's lots
    soonest-to-expire first. `points_reserved`: points held by a pending sale, taken from
    the lots the same way and remembered. `lots_returned`: (lot id, points) a released
    hold gives back to its lots. `expected`: (pocket, balance, held) as the calculation
    read them; settlement refuses the operation when a pocket it touches holds anything
    else. `coupons_issued`: coupons to issue, each counted against its series' cap.
    """

    __slots__ = (
        "certificates", "coupons", "coupons_issued", "expected", "lots_returned", "pockets",
        "points_reserved", "points_spent",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "pockets", "certificates", "coupons", "points_spent", "points_reserved",
        "lots_returned", "expected", "coupons_issued",
    )  # fmt: skip

    def __init__(
        self,
        pockets: tuple[PocketChange, ...] = (),
        certificates: tuple[CertificateChange, ...] = (),
        coupons: tuple[CouponChange, ...] = (),
        points_spent: int = 0,
        points_reserved: int = 0,
        lots_returned: tuple[tuple[int, int], ...] = (),
        expected: tuple[tuple[PocketKey, int, int], ...] = (),
        coupons_issued: tuple[CouponGrant, ...] = (),
    ) -> None:
        self.pockets: Final = pockets
        self.certificates: Final = certificates
        self.coupons: Final = coupons
        self.points_spent: Final = points_spent
        self.points_reserved: Final = points_reserved
        self.lots_returned: Final = lots_returned
        self.expected: Final = expected
        self.coupons_issued: Final = coupons_issued

    def expecting(self, expected: tuple[tuple[PocketKey, int, int], ...]) -> Effects:
        """The same effects, refused unless the pockets hold what `expected` says."""
        return Effects(
            self.pockets, self.certificates, self.coupons, self.points_spent,
            self.points_reserved, self.lots_returned, expected, self.coupons_issued,
        )  # fmt: skip


class Balance(Record):
    """A pocket's or a certificate's balance and the part of it held."""

    __slots__ = ("balance", "held")
    _fields: ClassVar[tuple[str, ...]] = ("balance", "held")

    def __init__(self, balance: int, held: int) -> None:
        self.balance: Final = balance
        self.held: Final = held

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(slots=True)
class SeriesCount:
    """A coupon series as locked: how many coupons it has issued, of at most how many
    (None: no cap), and whether it is archived."""

    coupons_issued: int
    coupons_max: int | None
    archived: bool


@dataclass(slots=True)
class LockedState:
    """What a batch locked: pockets, certificates and coupon statuses, by key; the coupon
    series it issues from, and which of the codes it issues the business has already."""

    pockets: dict[PocketKey, Balance] = field(default_factory=dict)
    certificates: dict[int, Balance] = field(default_factory=dict)
    coupons: dict[int, str] = field(default_factory=dict)
    series: dict[int, SeriesCount] = field(default_factory=dict)
    coupon_codes_taken: set[str] = field(default_factory=set)


class Refusal(Enum):
    """Why settlement refused an operation (stable reasons for the API)."""

    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    INSUFFICIENT_CERTIFICATE_BALANCE = "INSUFFICIENT_CERTIFICATE_BALANCE"
    COUPON_ALREADY_USED = "COUPON_ALREADY_USED"
    BALANCE_CHANGED = "BALANCE_CHANGED"
    BALANCE_LIMIT = "BALANCE_LIMIT"
    COUPON_SERIES_NOT_FOUND = "COUPON_SERIES_NOT_FOUND"
    COUPON_SERIES_EXHAUSTED = "COUPON_SERIES_EXHAUSTED"
    ARCHIVED = "ARCHIVED"
    CODE_TAKEN = "CODE_TAKEN"


# Refusals that do not depend on what other operations did first: they are a check's
# answer. Every other refusal of a sale means a concurrent change, and the sale is
# calculated again instead.
FINAL_REFUSALS: Final = frozenset({Refusal.BALANCE_LIMIT})


def _achievement_accounts(receipt: Receipt) -> set[int]:
    return {progress.account_id for progress in receipt.achievements}


def _account_debits(receipt: Receipt) -> list[tuple[SourceKind, int, int]]:
    """(kind, source id, debit) of every payment that can be held: achievements rewards are
    not, since the purchases that earn them are credited only when the sale completes."""
    rewards = _achievement_accounts(receipt)
    return [
        (payment.source_kind, payment.source_id, payment.debit)
        for payment in receipt.payments
        if not (payment.source_kind is SourceKind.ACCOUNT and payment.source_id in rewards)
    ]


def effects_of_sale(
    receipt: Receipt, customer_id: int | None, coupon_ids: Sequence[int], pending: bool
) -> Effects:
    """What processing `receipt` changes: posted at once, or held while `pending`."""
    pockets: list[PocketChange] = []
    certificates: list[CertificateChange] = []
    for kind, source_id, debit in _account_debits(receipt):
        if debit == 0:
            continue
        if kind is SourceKind.CERTIFICATE:
            certificates.append(
                CertificateChange(source_id, held_amount=debit)
                if pending
                else CertificateChange(source_id, amount=-debit)
            )
            continue
        assert customer_id is not None, "only a customer's pockets pay"
        account = POINTS_ACCOUNT_TYPE_ID if kind is SourceKind.POINTS else source_id
        pockets.append(
            PocketChange((customer_id, account), LedgerKind.HOLD, held_amount=debit)
            if pending
            else PocketChange((customer_id, account), LedgerKind.REDEEM, amount=-debit)
        )
    coupons = tuple(
        CouponChange(coupon_id, "issued", "reserved" if pending else "used")
        for coupon_id in coupon_ids
    )
    if pending:
        reserved = receipt.points_redeemed if customer_id is not None else 0
        return Effects(tuple(pockets), tuple(certificates), coupons, points_reserved=reserved)
    pockets += _accruals(receipt, customer_id)
    return Effects(tuple(pockets), tuple(certificates), coupons, receipt.points_redeemed)


def _accruals(receipt: Receipt, customer_id: int | None) -> list[PocketChange]:
    if customer_id is None:
        return []
    changes = []
    if receipt.points_accrued:
        changes.append(
            PocketChange(
                (customer_id, POINTS_ACCOUNT_TYPE_ID),
                LedgerKind.ACCRUE,
                amount=receipt.points_accrued,
            )
        )
    for progress in receipt.achievements:
        pocket = (customer_id, progress.account_id)
        # Purchases are credited first, so that the reward they earn can be taken.
        if progress.purchases:
            changes.append(PocketChange(pocket, LedgerKind.ACCRUE, amount=progress.purchases))
        reward = sum(
            payment.debit
            for payment in receipt.payments
            if payment.source_kind is SourceKind.ACCOUNT
            and payment.source_id == progress.account_id
        )
        if reward:
            changes.append(PocketChange(pocket, LedgerKind.REDEEM, amount=-reward))
    return changes


def effects_of_confirmation(
    receipt: Receipt,
    customer_id: int | None,
    coupon_ids: Sequence[int],
    reservations: dict[int, int] | None = None,
) -> Effects:
    """Post what a pending sale held, and apply its accruals; lots are taken now only for
    a sale that reserved none (stored before reservations existed)."""
    held = effects_of_sale(receipt, customer_id, coupon_ids, pending=True)
    pockets = [
        PocketChange(change.pocket, LedgerKind.POST, -change.held_amount, -change.held_amount)
        for change in held.pockets
    ]
    pockets += _accruals(receipt, customer_id)
    return Effects(
        tuple(pockets),
        tuple(
            CertificateChange(change.certificate_id, -change.held_amount, -change.held_amount)
            for change in held.certificates
        ),
        tuple(CouponChange(change.coupon_id, "reserved", "used") for change in held.coupons),
        receipt.points_redeemed if reservations is None else 0,
    )


def effects_of_release(
    receipt: Receipt,
    customer_id: int | None,
    coupon_ids: Sequence[int],
    reservations: dict[int, int] | None = None,
) -> Effects:
    """Void what a pending sale held, giving reserved points back to their lots."""
    held = effects_of_sale(receipt, customer_id, coupon_ids, pending=True)
    return Effects(
        tuple(
            PocketChange(change.pocket, LedgerKind.VOID, held_amount=-change.held_amount)
            for change in held.pockets
        ),
        tuple(
            CertificateChange(change.certificate_id, held_amount=-change.held_amount)
            for change in held.certificates
        ),
        tuple(CouponChange(change.coupon_id, "reserved", "issued") for change in held.coupons),
        lots_returned=tuple(sorted((reservations or {}).items())),
    )


def settle(state: LockedState, effects: Effects) -> Refusal | None:
    """Apply `effects` to `state` if every pocket, certificate and coupon allows it.

    Returns None when applied; otherwise the refusal, with `state` unchanged.
    """
    for key, balance, held in effects.expected:
        locked = state.pockets.get(key) or Balance(0, 0)
        if locked.balance != balance or locked.held != held:
            return Refusal.BALANCE_CHANGED
    pockets = _pockets_after(state, effects.pockets)
    if isinstance(pockets, Refusal):
        return pockets
    certificates = _certificates_after(state, effects.certificates)
    if isinstance(certificates, Refusal):
        return certificates
    for coupon in effects.coupons:
        if state.coupons.get(coupon.coupon_id) != coupon.expected:
            return Refusal.COUPON_ALREADY_USED
    # Only an administrator's operation issues coupons: a sale skips all that goes with it.
    series: dict[int, SeriesCount] = {}
    if effects.coupons_issued:
        issued = _issued(state, effects.coupons_issued)
        if isinstance(issued, Refusal):
            return issued
        series = issued
    state.pockets.update(pockets)
    state.certificates.update(certificates)
    for coupon in effects.coupons:
        state.coupons[coupon.coupon_id] = coupon.status
    state.series.update(series)
    for grant in effects.coupons_issued:
        state.coupon_codes_taken.add(grant.code)
    return None


def _pockets_after(
    state: LockedState, changes: tuple[PocketChange, ...]
) -> dict[PocketKey, Balance] | Refusal:
    """The balances of the pockets `changes` reach once they apply, or why they cannot."""
    pockets: dict[PocketKey, Balance] = {}
    for change in changes:
        current = pockets.get(change.pocket) or state.pockets.get(change.pocket) or Balance(0, 0)
        after = Balance(current.balance + change.amount, current.held + change.held_amount)
        if after.held < 0 or after.available < 0:
            return (
                Refusal.INSUFFICIENT_POINTS
                if change.pocket[1] == POINTS_ACCOUNT_TYPE_ID
                else Refusal.INSUFFICIENT_BALANCE
            )
        if after.balance > pocket_balance_max and change.amount > 0:
            return Refusal.BALANCE_LIMIT
        pockets[change.pocket] = after
    return pockets


def _certificates_after(
    state: LockedState, changes: tuple[CertificateChange, ...]
) -> dict[int, Balance] | Refusal:
    """The balances of the certificates `changes` reach once they apply, or why they cannot."""
    certificates: dict[int, Balance] = {}
    for change in changes:
        now = certificates.get(change.certificate_id) or state.certificates.get(
            change.certificate_id, Balance(0, 0)
        )
        after = Balance(now.balance + change.amount, now.held + change.held_amount)
        if after.held < 0 or after.available < 0:
            return Refusal.INSUFFICIENT_CERTIFICATE_BALANCE
        certificates[change.certificate_id] = after
    return certificates


def _issued(state: LockedState, grants: Sequence[CouponGrant]) -> dict[int, SeriesCount] | Refusal:
    """The series' counts once `grants` are issued, or why they cannot be."""
    counts: dict[int, SeriesCount] = {}
    codes: set[str] = set()
    for grant in grants:
        before = counts.get(grant.series_id) or state.series.get(grant.series_id)
        if before is None:
            return Refusal.COUPON_SERIES_NOT_FOUND
        if before.archived:
            return Refusal.ARCHIVED
        if before.coupons_max is not None and before.coupons_issued >= before.coupons_max:
            return Refusal.COUPON_SERIES_EXHAUSTED
        if grant.code in state.coupon_codes_taken or grant.code in codes:
            return Refusal.CODE_TAKEN
        codes.add(grant.code)
        counts[grant.series_id] = SeriesCount(
            before.coupons_issued + 1, before.coupons_max, before.archived
        )
    return counts


def take_from_lots(lots: list[tuple[int, int]], points: int) -> list[tuple[int, int]]:
    """(lot id, points taken) from `lots` — live (id, remaining), soonest-expiring first.

    What the lots do not cover comes from the never-expiring part, which has no row.
    """
    taken = []
    for lot_id, remaining in lots:
        if points <= 0:
            break
        amount = min(remaining, points)
        if amount > 0:
            taken.append((lot_id, amount))
            points -= amount
    return taken


@dataclass(frozen=True, slots=True)
class SaleReceipt:
    """What a sale keeps of its check: the receipt, each line's quantity (thousandths, by
    position; refunds take lines back by quantity), and the codes of the coupons and
    certificates the check named, by id."""

    receipt: Receipt
    quantities: dict[int, int]
    coupon_codes: dict[int, str]
    certificate_codes: dict[int, str]


# A sale's receipt as stored, opaque to the use cases (`purse.service.ports.ReceiptCodec`
# reads and writes it): bytes, or for a sale stored before receipts were bytes and not
# converted yet (`purse migrate` converts them), the JSON document it was stored as.
StoredReceipt = bytes | dict[str, Any]


class TransactionRecord(Record):
    """A stored transaction as the API shows it (built for every check answered).

    `receipt`: None for an administrator's operation and for a check refused for good.
    `lot_reservations`: the points the sale took from lots (held or spent), by lot id;
    None when stored before they were kept. `operation`: an administrator's operation
    (it has no receipt); None for a check.
    """

    __slots__ = (
        "check_number", "confirmation_deadline", "created_at", "customer_id", "finished_at",
        "lot_reservations", "operation", "receipt", "refunds", "refusal", "request_digest",
        "status", "terminal_id", "transaction_id",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "transaction_id", "check_number", "terminal_id", "status", "customer_id", "receipt",
        "request_digest", "created_at", "finished_at", "confirmation_deadline", "refusal",
        "refunds", "lot_reservations", "operation",
    )  # fmt: skip

    def __init__(
        self,
        transaction_id: int,
        check_number: str,
        terminal_id: int,
        status: TransactionStatus,
        customer_id: int | None,
        receipt: StoredReceipt | None,
        request_digest: bytes,
        created_at: datetime,
        finished_at: datetime | None = None,
        confirmation_deadline: datetime | None = None,
        refusal: dict[str, str] | None = None,
        refunds: tuple[RefundRecord, ...] = (),
        lot_reservations: dict[int, int] | None = None,
        operation: CustomerOperation | None = None,
    ) -> None:
        self.transaction_id: Final = transaction_id
        self.check_number: Final = check_number
        self.terminal_id: Final = terminal_id
        self.status: Final = status
        self.customer_id: Final = customer_id
        self.receipt: Final = receipt
        self.request_digest: Final = request_digest
        self.created_at: Final = created_at
        self.finished_at: Final = finished_at
        self.confirmation_deadline: Final = confirmation_deadline
        self.refusal: Final = refusal
        self.refunds: Final = refunds
        self.lot_reservations: Final = lot_reservations
        self.operation: Final = operation


@dataclass(frozen=True, slots=True)
class RefundedAccount:
    """What a refund did to one account, in the account's own unit: units that paid for
    the refunded lines returned, and achievements purchases they counted taken back."""

    account_type_id: int
    returned: int = 0
    recovered: int = 0
    not_recovered: int = 0


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """A refund of (part of) a transaction and what it did."""

    refund_id: int
    refund_number: str
    refunded_minor_units: int
    points_returned: int
    points_recovered: int
    points_not_recovered: int
    created_at: datetime
    accounts: tuple[RefundedAccount, ...] = ()
