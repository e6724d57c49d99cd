"""What the engine reads and writes: the check, the customer's pockets, the redemption
request, and the recalculated receipt.

Contract:

* Every input type and every receipt record is a slotted class of plain values (ints,
  strings, enums, tuples, datetimes) with read-only attributes and value equality, a
  `purse.domain.records.Record` (see "the receipt" below for why). The API layer maps
  them to and from protobuf field by field.
* Money is in minor units of the check's currency, points in hundredths of a point,
  quantities in thousandths of a unit, shares in basis points (see `purse.domain.amounts`).
* Identifiers of things Purse stores are ints (`account_id`, `coupon_id`, `lot_id`,
  `category_id`, `point_of_sale_id`); product and goods category codes are the POS's
  strings.
* Per-line figures in the receipt (`line_amounts`, `line_debits`, `line_points`) are
  aligned with `Receipt.lines`, which are sorted by position. For every discount, payment
  and accrual the per-line figures sum exactly to its total, so a refund of some lines can
  reverse exactly what was applied to them.
* The input types are validated by `purse.domain.engine.calculate`, not on construction,
  so that a bad request yields every field path at once with a typed error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import ClassVar, Final, overload

from purse.domain.records import Record

check_lines_max: Final = 1000
product_code_length_max_characters: Final = 64
price_max_minor_units: Final = 10**13
quantity_max_thousandths: Final = 10**9
# Bounds on what a check adds up to, so that every sum Purse forms from checks (totals,
# accruals, statistics, balances) fits a 64-bit integer with room to spare.
line_amount_max_minor_units: Final = 10**13
check_sum_max_minor_units: Final = 10**13


# --- the check -----------------------------------------------------------------------------


class CheckLine(Record):
    """One line as the POS sends it; `amount` must be `price` x `quantity` within rounding."""

    __slots__ = ("amount", "goods_category_code", "position", "price", "product_code", "quantity")
    _fields: ClassVar[tuple[str, ...]] = (
        "position", "product_code", "price", "quantity", "amount", "goods_category_code",
    )  # fmt: skip

    def __init__(
        self,
        position: int,
        product_code: str,
        price: int,
        quantity: int,
        amount: int,
        goods_category_code: str | None = None,
    ) -> None:
        self.position: Final = position
        self.product_code: Final = product_code
        self.price: Final = price
        self.quantity: Final = quantity
        self.amount: Final = amount
        self.goods_category_code: Final = goods_category_code


class Check(Record):
    """The receipt under construction at the till, in the business's currency."""

    __slots__ = ("currency", "lines")
    _fields: ClassVar[tuple[str, ...]] = ("currency", "lines")

    def __init__(self, currency: str, lines: tuple[CheckLine, ...]) -> None:
        self.currency: Final = currency
        self.lines: Final = lines


# --- the customer as the engine sees them ----------------------------------------------------


class AccessType(Enum):
    """What a membership may do with bonus points."""

    FULL = "full"  # accrue and redeem
    LIMITED = "limited"  # accrue only
    NONE = "none"  # neither: awaiting consent to personal-data processing
    BLACKLISTED = "blacklisted"  # no transactions at all


class AccountKind(Enum):
    """The unit an account is kept in and how it pays."""

    MONEY = "money"  # balance in minor units; pays any allowed line
    PRODUCTS = "products"  # balance in thousandths of a product unit (litres, cups)
    ACHIEVEMENTS = "achievements"  # balance counts purchases toward the next free one


class CouponKind(Enum):
    """How a coupon reduces the check."""

    PERCENT = "percent"  # value in basis points of the allowed lines
    FIXED = "fixed"  # value in minor units, at most the allowed lines' amount
    FREE_PRODUCT = "free_product"  # value in thousandths of a unit of an allowed product


class PointsLot(Record):
    """Available points (balance minus holds) credited together; spent soonest-to-expire first.

    `expires_at` is on the same clock as the `moment` passed to the engine; a lot is
    spendable while `moment < expires_at`; None never expires.
    """

    __slots__ = ("expires_at", "lot_id", "points")
    _fields: ClassVar[tuple[str, ...]] = ("lot_id", "points", "expires_at")

    def __init__(self, lot_id: int, points: int, expires_at: datetime | None = None) -> None:
        self.lot_id: Final = lot_id
        self.points: Final = points
        self.expires_at: Final = expires_at


class CustomerAccount(Record):
    """A customer account with its type's settings folded in.

    `balance` is what is available (balance minus holds), in the kind's unit. An empty
    `product_codes` allows any product. `redemption_limit_without_pin`: a debit above it needs
    the customer's PIN (None: never). `purchases_per_reward` is N of "every Nth purchase
    free" and matters only for achievements accounts; one purchase is one whole unit.
    """

    __slots__ = (
        "account_id", "balance", "kind", "product_codes", "purchases_per_reward",
        "redemption_limit_without_pin", "title",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "account_id", "kind", "balance", "product_codes", "redemption_limit_without_pin",
        "purchases_per_reward", "title",
    )  # fmt: skip

    def __init__(
        self,
        account_id: int,
        kind: AccountKind,
        balance: int,
        product_codes: tuple[str, ...] = (),
        redemption_limit_without_pin: int | None = None,
        purchases_per_reward: int = 0,
        title: str = "",
    ) -> None:
        self.account_id: Final = account_id
        self.kind: Final = kind
        self.balance: Final = balance
        self.product_codes: Final = product_codes
        self.redemption_limit_without_pin: Final = redemption_limit_without_pin
        self.purchases_per_reward: Final = purchases_per_reward
        self.title: Final = title


class Coupon(Record):
    """A coupon in the customer's wallet with its series' restrictions folded in.

    An empty `product_codes` allows every line (for FREE_PRODUCT: any product).
    `check_sum_min` is compared with the check sum as sent, in minor units.
    """

    __slots__ = (
        "check_sum_min", "coupon_id", "expires_at", "kind", "product_codes", "title", "value",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "coupon_id", "kind", "value", "product_codes", "check_sum_min", "expires_at", "title",
    )  # fmt: skip

    def __init__(
        self,
        coupon_id: int,
        kind: CouponKind,
        value: int,
        product_codes: tuple[str, ...] = (),
        check_sum_min: int = 0,
        expires_at: datetime | None = None,
        title: str = "",
    ) -> None:
        self.coupon_id: Final = coupon_id
        self.kind: Final = kind
        self.value: Final = value
        self.product_codes: Final = product_codes
        self.check_sum_min: Final = check_sum_min
        self.expires_at: Final = expires_at
        self.title: Final = title


class Certificate(Record):
    """A gift certificate: stored value in minor units that pays like money."""

    __slots__ = ("balance", "certificate_id", "expires_at")
    _fields: ClassVar[tuple[str, ...]] = ("certificate_id", "balance", "expires_at")

    def __init__(
        self, certificate_id: int, balance: int, expires_at: datetime | None = None
    ) -> None:
        self.certificate_id: Final = certificate_id
        self.balance: Final = balance
        self.expires_at: Final = expires_at


class Customer(Record):
    """A membership's category, access type and pockets (available amounts, holds deducted)."""

    __slots__ = ("access_type", "accounts", "category_id", "certificates", "coupons", "points_lots")
    _fields: ClassVar[tuple[str, ...]] = (
        "category_id", "access_type", "points_lots", "accounts", "coupons", "certificates",
    )  # fmt: skip

    def __init__(
        self,
        category_id: int,
        access_type: AccessType = AccessType.FULL,
        points_lots: tuple[PointsLot, ...] = (),
        accounts: tuple[CustomerAccount, ...] = (),
        coupons: tuple[Coupon, ...] = (),
        certificates: tuple[Certificate, ...] = (),
    ) -> None:
        self.category_id: Final = category_id
        self.access_type: Final = access_type
        self.points_lots: Final = points_lots
        self.accounts: Final = accounts
        self.coupons: Final = coupons
        self.certificates: Final = certificates


# --- what the cashier asks to spend ----------------------------------------------------------


class AccountSpending(Record):
    """Pay from a money or products account; `amount` None means as much as allowed."""

    __slots__ = ("account_id", "amount")
    _fields: ClassVar[tuple[str, ...]] = ("account_id", "amount")

    def __init__(self, account_id: int, amount: int | None = None) -> None:
        self.account_id: Final = account_id
        self.amount: Final = amount


class CertificateSpending(Record):
    """Pay with a certificate; `amount` None means as much as allowed."""

    __slots__ = ("amount", "certificate_id")
    _fields: ClassVar[tuple[str, ...]] = ("certificate_id", "amount")

    def __init__(self, certificate_id: int, amount: int | None = None) -> None:
        self.certificate_id: Final = certificate_id
        self.amount: Final = amount


class Redemption(Record):
    """Everything the cashier chose to spend on this check (achievements apply by themselves)."""

    __slots__ = ("accounts", "certificates", "coupon_ids", "points")
    _fields: ClassVar[tuple[str, ...]] = ("points", "coupon_ids", "accounts", "certificates")

    def __init__(
        self,
        points: int = 0,
        coupon_ids: tuple[int, ...] = (),
        accounts: tuple[AccountSpending, ...] = (),
        certificates: tuple[CertificateSpending, ...] = (),
    ) -> None:
        self.points: Final = points
        self.coupon_ids: Final = coupon_ids
        self.accounts: Final = accounts
        self.certificates: Final = certificates


no_redemption: Final = Redemption()


# --- the receipt -----------------------------------------------------------------------------
#
# The receipt's records, as the inputs above, are plain slotted classes rather than frozen
# dataclasses or NamedTuples: they are built on every calculation, and compiled (mypyc)
# such a class is built natively in a fraction of the time a NamedTuple or a frozen
# dataclass takes (whose constructors run as Python). Their attributes are Final: mypy
# refuses writes, and the compiled classes make them read-only at run time. `_Record` gives
# them the value semantics of the NamedTuples they replace: equality, hashing, iteration
# and repr by value (see `purse.domain.records`).


class SourceKind(Enum):
    """What produced a discount, payment or accrual; `source_id` identifies it within its kind."""

    RULE = "rule"
    COUPON = "coupon"
    POINTS = "points"  # source_id 0: the points pocket
    ACCOUNT = "account"
    CERTIFICATE = "certificate"


class _Record(Record):
    """What callers could do with the NamedTuples these records once were: besides the
    value semantics of `Record` (and its `_replace`), iteration and indexing, by the values
    of `_fields`, in order."""

    __slots__ = ()

    def __iter__(self) -> Iterator[object]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._fields)

    @overload
    def __getitem__(self, key: int) -> object: ...

    @overload
    def __getitem__(self, key: slice) -> tuple[object, ...]: ...

    def __getitem__(self, key: int | slice) -> object | tuple[object, ...]:
        return self._values()[key]


class ReceiptLine(_Record):
    """One check line after the calculation; `to_pay` is what the customer still owes on it."""

    __slots__ = (
        "amount", "discount", "paid_with_accounts", "paid_with_points", "points_accrued",
        "points_redeemed", "position", "product_code", "to_pay",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "position", "product_code", "amount", "discount", "paid_with_points", "paid_with_accounts",
        "to_pay", "points_redeemed", "points_accrued",
    )  # fmt: skip

    def __init__(
        self,
        position: int,
        product_code: str,
        amount: int,
        discount: int,
        paid_with_points: int,
        paid_with_accounts: int,
        to_pay: int,
        points_redeemed: int,
        points_accrued: int,
    ) -> None:
        self.position: Final = position
        self.product_code: Final = product_code
        self.amount: Final = amount
        self.discount: Final = discount
        self.paid_with_points: Final = paid_with_points
        self.paid_with_accounts: Final = paid_with_accounts
        self.to_pay: Final = to_pay
        self.points_redeemed: Final = points_redeemed
        self.points_accrued: Final = points_accrued


class Discount(_Record):
    """A reduction of the price by a rule or a coupon."""

    __slots__ = ("amount", "line_amounts", "source_id", "source_kind", "title")
    _fields: ClassVar[tuple[str, ...]] = (
        "source_kind", "source_id", "title", "amount", "line_amounts",
    )  # fmt: skip

    def __init__(
        self,
        source_kind: SourceKind,
        source_id: int,
        title: str,
        amount: int,
        line_amounts: tuple[int, ...],
    ) -> None:
        self.source_kind: Final = source_kind
        self.source_id: Final = source_id
        self.title: Final = title
        self.amount: Final = amount
        self.line_amounts: Final = line_amounts


class Payment(_Record):
    """Money paid from a pocket: `amount` in minor units, `debit` in the pocket's own unit.

    The pocket's unit: points in hundredths, money and certificates in minor units,
    products in thousandths of a unit, achievements in purchases (N per free unit).
    """

    __slots__ = (
        "amount", "debit", "line_amounts", "line_debits", "source_id", "source_kind", "title",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "source_kind", "source_id", "title", "amount", "debit", "line_amounts", "line_debits",
    )  # fmt: skip

    def __init__(
        self,
        source_kind: SourceKind,
        source_id: int,
        title: str,
        amount: int,
        debit: int,
        line_amounts: tuple[int, ...],
        line_debits: tuple[int, ...],
    ) -> None:
        self.source_kind: Final = source_kind
        self.source_id: Final = source_id
        self.title: Final = title
        self.amount: Final = amount
        self.debit: Final = debit
        self.line_amounts: Final = line_amounts
        self.line_debits: Final = line_debits


class Accrual(_Record):
    """Points credited by an accrual rule, in hundredths of a point."""

    __slots__ = ("line_points", "points", "rule_id", "title")
    _fields: ClassVar[tuple[str, ...]] = ("rule_id", "title", "points", "line_points")

    def __init__(self, rule_id: int, title: str, points: int, line_points: tuple[int, ...]) -> None:
        self.rule_id: Final = rule_id
        self.title: Final = title
        self.points: Final = points
        self.line_points: Final = line_points


class LotTake(_Record):
    """Points taken from one lot by the points payment."""

    __slots__ = ("lot_id", "points")
    _fields: ClassVar[tuple[str, ...]] = ("lot_id", "points")

    def __init__(self, lot_id: int, points: int) -> None:
        self.lot_id: Final = lot_id
        self.points: Final = points


class AchievementProgress(_Record):
    """Purchases an achievements account counted on this check and the free units it gave.

    `balance_after` = balance + `purchases` - N x `rewards`; `line_purchases` is aligned
    with the receipt lines.
    """

    __slots__ = ("account_id", "balance_after", "line_purchases", "purchases", "rewards")
    _fields: ClassVar[tuple[str, ...]] = (
        "account_id", "purchases", "rewards", "balance_after", "line_purchases",
    )  # fmt: skip

    def __init__(
        self,
        account_id: int,
        purchases: int,
        rewards: int,
        balance_after: int,
        line_purchases: tuple[int, ...],
    ) -> None:
        self.account_id: Final = account_id
        self.purchases: Final = purchases
        self.rewards: Final = rewards
        self.balance_after: Final = balance_after
        self.line_purchases: Final = line_purchases


class Confirmation(_Record):
    """A debit above its pocket's redemption limit without PIN: the customer must confirm."""

    __slots__ = ("debit", "limit", "source_id", "source_kind")
    _fields: ClassVar[tuple[str, ...]] = ("source_kind", "source_id", "debit", "limit")

    def __init__(self, source_kind: SourceKind, source_id: int, debit: int, limit: int) -> None:
        self.source_kind: Final = source_kind
        self.source_id: Final = source_id
        self.debit: Final = debit
        self.limit: Final = limit


class NotApplied(_Record):
    """A rule or coupon that did not apply, with a stable reason code and words for people."""

    __slots__ = ("description", "reason", "source_id", "source_kind")
    _fields: ClassVar[tuple[str, ...]] = ("source_kind", "source_id", "reason", "description")

    def __init__(
        self, source_kind: SourceKind, source_id: int, reason: str, description: str
    ) -> None:
        self.source_kind: Final = source_kind
        self.source_id: Final = source_id
        self.reason: Final = reason
        self.description: Final = description


class Receipt(_Record):
    """The recalculated check.

    Totals: `check_sum` = `discount_total` + `paid_with_points` + `paid_with_accounts`
    + `to_pay`. `points_redeemable_max` is the most points the cashier could have asked to
    redeem on this check (0 when redemption is not allowed). `not_applied` always lists the
    requested coupons, and the accounts and certificates asked for "as much as allowed", that
    gave nothing; it lists rules only when explanations were asked for.
    """

    __slots__ = (
        "accruals", "achievements", "check_sum", "confirmations", "currency", "discount_total",
        "discounts", "lines", "lots_taken", "not_applied", "paid_with_accounts",
        "paid_with_points", "payments", "points_accrued", "points_redeemable_max",
        "points_redeemed", "to_pay",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "currency", "lines", "check_sum", "discount_total", "paid_with_points",
        "paid_with_accounts", "to_pay", "points_redeemed", "points_accrued",
        "points_redeemable_max", "discounts", "payments", "accruals", "lots_taken", "achievements",
        "confirmations", "not_applied",
    )  # fmt: skip

    def __init__(
        self,
        currency: str,
        lines: tuple[ReceiptLine, ...],
        check_sum: int,
        discount_total: int,
        paid_with_points: int,
        paid_with_accounts: int,
        to_pay: int,
        points_redeemed: int,
        points_accrued: int,
        points_redeemable_max: int,
        discounts: tuple[Discount, ...],
        payments: tuple[Payment, ...],
        accruals: tuple[Accrual, ...],
        lots_taken: tuple[LotTake, ...],
        achievements: tuple[AchievementProgress, ...],
        confirmations: tuple[Confirmation, ...],
        not_applied: tuple[NotApplied, ...],
    ) -> None:
        self.currency: Final = currency
        self.lines: Final = lines
        self.check_sum: Final = check_sum
        self.discount_total: Final = discount_total
        self.paid_with_points: Final = paid_with_points
        self.paid_with_accounts: Final = paid_with_accounts
        self.to_pay: Final = to_pay
        self.points_redeemed: Final = points_redeemed
        self.points_accrued: Final = points_accrued
        self.points_redeemable_max: Final = points_redeemable_max
        self.discounts: Final = discounts
        self.payments: Final = payments
        self.accruals: Final = accruals
        self.lots_taken: Final = lots_taken
        self.achievements: Final = achievements
        self.confirmations: Final = confirmations
        self.not_applied: Final = not_applied

    @property
    def confirmation_required(self) -> bool:
        """True when some debit exceeds its pocket's redemption limit without PIN."""
        return bool(self.confirmations)
