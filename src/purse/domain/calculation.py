"""A check's calculation from what was read for it — pure: the engine's inputs, the
engine, and the answer.

The use case (`purse.service.terminal.calculation`) reads, for one check or for many at
once, the customers' memberships, the `CalculationInputs` (`InputKeys` says what to read)
and the program compiled at its current version; `calculated` turns them into the
engine's plain values (`engine_inputs`), calls the engine, and returns the `Calculation`:

* lines the POS sent without a goods category get the catalogue's, a check sent without a
  currency the terminal's; a goods category the catalogue does not know is refused;
* a coupon named must be in the business, issued, and the customer's or nobody's (a
  bearer coupon); a certificate named must be in the business; FailedPrecondition names
  every one that is not;
* the customer's points are their spendable lots (`purse.domain.pockets`); their accounts
  carry their types' settings; an achievements account the member has no pocket for yet
  counts from an empty one (`Calculation.unopened_pockets`: the sale that counts a first
  purchase opens it);
* with `points_maximum`, the check is calculated again redeeming as many points as the
  first calculation allows;
* the membership answered carries the program's no-PIN limit on its points pocket.

What applying a calculated check then changes is `sale_effects` (with the balances it was
calculated on, which settlement requires to be unchanged) and `new_pockets`.

The moment the engine compares with is the sale's time (now, when the till gives none) in
the point of sale's time zone. Compiled with mypyc (setup.py), with the same results as
plain Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Final
from zoneinfo import ZoneInfo

from purse.domain import checks
from purse.domain.catalogue import check_goods_categories
from purse.domain.customers import (
    POINTS_ACCOUNT_TYPE_ID,
    Membership,
    Pocket,
    PocketKind,
    with_points_limit,
)
from purse.domain.engine import calculate
from purse.domain.errors import FailedPrecondition, FieldViolation, echoed
from purse.domain.identifiers import Identifier
from purse.domain.localize import localized
from purse.domain.pockets import spendable_lots
from purse.domain.program import CompiledProgram
from purse.domain.records import Record
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import Effects, PocketKey, effects_of_sale

_account_kinds: Final = {
    PocketKind.MONEY: checks.AccountKind.MONEY,
    PocketKind.PRODUCTS: checks.AccountKind.PRODUCTS,
    PocketKind.ACHIEVEMENTS: checks.AccountKind.ACHIEVEMENTS,
}

# --- what a calculation reads -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LotRow:
    lot_id: int
    remaining: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AccountTypeRow:
    account_type_id: int
    kind: str
    product_codes: tuple[str, ...]
    redemption_limit_without_pin: int | None
    purchases_per_reward: int
    name: str
    title: dict[str, str]


@dataclass(frozen=True, slots=True)
class CouponRow:
    coupon_id: int
    code: str
    customer_id: int | None
    status: str
    expires_at: datetime | None
    kind: str
    value: int
    product_codes: tuple[str, ...]
    check_sum_min: int
    name: str
    title: dict[str, str]


@dataclass(frozen=True, slots=True)
class CertificateRow:
    certificate_id: int
    code: str
    available: int
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class CalculationInputs:
    """Everything a check's calculation reads besides the membership and the program, as
    stored: the program's rules version, the customers' live points lots, the business's
    active account types, the coupons and certificates named, the catalogue's goods
    categories of the products sent without one, and which of the goods category codes
    sent the catalogue knows."""

    rules_version: int | None
    lots_by_customer: dict[int, tuple[LotRow, ...]]
    account_types: dict[int, AccountTypeRow]
    coupons: dict[str, CouponRow]
    certificates: dict[str, CertificateRow]
    goods_categories: dict[str, str]
    known_goods_categories: frozenset[str] = frozenset()

    def lots(self, customer_id: int) -> tuple[LotRow, ...]:
        return self.lots_by_customer.get(customer_id, ())


# --- the request and the answer -----------------------------------------------------------
#
# Both are built for every check: `Record`s, built natively when compiled.


class CalculationRequest(Record):
    """A check and what the cashier wants to spend on it, in plain values. `accounts`:
    (account type id, amount in the account's unit, or None for "as much as allowed")."""

    __slots__ = (
        "accounts", "certificate_codes", "check", "coupon_codes", "explain", "identifier",
        "points", "points_maximum", "sale_time",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "check", "identifier", "points", "points_maximum", "accounts", "coupon_codes",
        "certificate_codes", "explain", "sale_time",
    )  # fmt: skip

    def __init__(
        self,
        check: checks.Check,
        identifier: Identifier | None = None,
        points: int = 0,
        points_maximum: bool = False,
        accounts: tuple[tuple[int, int | None], ...] = (),
        coupon_codes: tuple[str, ...] = (),
        certificate_codes: tuple[str, ...] = (),
        explain: bool = False,
        sale_time: datetime | None = None,
    ) -> None:
        self.check: Final = check
        self.identifier: Final = identifier
        self.points: Final = points
        self.points_maximum: Final = points_maximum
        self.accounts: Final = accounts
        self.coupon_codes: Final = coupon_codes
        self.certificate_codes: Final = certificate_codes
        self.explain: Final = explain
        self.sale_time: Final = sale_time


class Calculation(Record):
    """The receipt, the membership it was calculated for, and the ids behind the codes.

    `hold_seconds`: the program's hold for a transaction that waits for the PIN.
    `unopened_pockets`: achievements pockets the member does not have yet (id 0, empty);
    the sale that counts a first purchase creates them.
    """

    __slots__ = (
        "certificate_codes", "coupon_codes", "hold_seconds", "membership", "receipt",
        "unopened_pockets",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "receipt", "membership", "coupon_codes", "certificate_codes", "hold_seconds",
        "unopened_pockets",
    )  # fmt: skip

    def __init__(
        self,
        receipt: checks.Receipt,
        membership: Membership | None,
        coupon_codes: dict[int, str],
        certificate_codes: dict[int, str],
        hold_seconds: int = 600,
        unopened_pockets: tuple[Pocket, ...] = (),
    ) -> None:
        self.receipt: Final = receipt
        self.membership: Final = membership
        self.coupon_codes: Final = coupon_codes
        self.certificate_codes: Final = certificate_codes
        self.hold_seconds: Final = hold_seconds
        self.unopened_pockets: Final = unopened_pockets


class InputKeys:
    """What to read for a group of checks, each list sorted: the customers' ids, the coupon
    and certificate codes named, the product codes sent without a goods category, and the
    goods category codes sent."""

    __slots__ = (
        "certificate_codes", "coupon_codes", "customer_ids", "goods_category_codes",
        "uncategorised_product_codes",
    )  # fmt: skip

    def __init__(
        self, requests: Sequence[CalculationRequest], memberships: Sequence[Membership | None]
    ) -> None:
        customer_ids: set[int] = set()
        for membership in memberships:
            if membership is not None:
                customer_ids.add(membership.customer_id)
        coupon_codes: set[str] = set()
        certificate_codes: set[str] = set()
        products: set[str] = set()
        categories: set[str] = set()
        for request in requests:
            coupon_codes.update(request.coupon_codes)
            certificate_codes.update(request.certificate_codes)
            for line in request.check.lines:
                category = line.goods_category_code
                if category:
                    categories.add(category)
                else:
                    products.add(line.product_code)
        self.customer_ids = sorted(customer_ids)
        self.coupon_codes = sorted(coupon_codes)
        self.certificate_codes = sorted(certificate_codes)
        self.uncategorised_product_codes = sorted(products)
        self.goods_category_codes = sorted(categories)


# --- the calculation ------------------------------------------------------------------------


class EngineInputs:
    """A check's calculation prepared: the engine's check, customer and redemption and the
    moment it compares with; the ids behind the coupon and certificate codes named; the
    achievements pockets the member does not have yet."""

    __slots__ = (
        "certificate_ids", "check", "coupon_ids", "customer", "moment", "redemption",
        "unopened",
    )  # fmt: skip

    def __init__(
        self,
        check: checks.Check,
        customer: checks.Customer | None,
        redemption: checks.Redemption,
        moment: datetime,
        coupon_ids: dict[str, int],
        certificate_ids: dict[str, int],
        unopened: tuple[Pocket, ...],
    ) -> None:
        self.check = check
        self.customer = customer
        self.redemption = redemption
        self.moment = moment
        self.coupon_ids = coupon_ids
        self.certificate_ids = certificate_ids
        self.unopened = unopened


def engine_inputs(
    terminal: TerminalContext,
    request: CalculationRequest,
    membership: Membership | None,
    inputs: CalculationInputs,
    now: float,
) -> EngineInputs:
    """The engine's inputs for the check; `now` in seconds since the epoch."""
    check_goods_categories(request.check.lines, inputs.known_goods_categories)
    moment = local_moment(terminal.time_zone, request.sale_time, now)
    unopened = unopened_pockets(membership, inputs)
    customer, coupon_ids, certificate_ids = _customer(request, membership, inputs, moment, unopened)
    redemption = checks.Redemption(
        request.points,
        tuple(coupon_ids.values()),
        tuple(
            [
                checks.AccountSpending(account_type_id, amount)
                for account_type_id, amount in request.accounts
            ]
        ),
        tuple(
            [
                checks.CertificateSpending(certificate_id)
                for certificate_id in certificate_ids.values()
            ]
        ),
    )
    return EngineInputs(
        categorised(request.check, inputs.goods_categories, terminal.currency),
        customer,
        redemption,
        moment,
        coupon_ids,
        certificate_ids,
        unopened,
    )


def calculated(
    terminal: TerminalContext,
    request: CalculationRequest,
    membership: Membership | None,
    inputs: CalculationInputs,
    program: CompiledProgram,
    now: float,
) -> Calculation:
    """The check's receipt from inputs already read; `now` in seconds since the epoch."""
    prepared = engine_inputs(terminal, request, membership, inputs, now)
    redemption = prepared.redemption
    receipt = calculate(
        prepared.check,
        program,
        prepared.customer,
        redemption,
        moment=prepared.moment,
        point_of_sale_id=terminal.point_of_sale_id,
        explain=request.explain,
    )
    if request.points_maximum and receipt.points_redeemable_max != request.points:
        receipt = calculate(
            prepared.check,
            program,
            prepared.customer,
            checks.Redemption(
                receipt.points_redeemable_max,
                redemption.coupon_ids,
                redemption.accounts,
                redemption.certificates,
            ),
            moment=prepared.moment,
            point_of_sale_id=terminal.point_of_sale_id,
            explain=request.explain,
        )
    if membership is not None:
        # The answer's points pocket reports the limit the receipt was calculated on.
        membership = with_points_limit(
            membership, program.program.points_redemption_limit_without_pin
        )
    return Calculation(
        receipt,
        membership,
        {coupon_id: code for code, coupon_id in prepared.coupon_ids.items()},
        {certificate_id: code for code, certificate_id in prepared.certificate_ids.items()},
        program.program.hold_seconds,
        prepared.unopened,
    )


def local_moment(time_zone: str, sale_time: datetime | None, now: float) -> datetime:
    """The sale's time, or `now`, in `time_zone`."""
    moment = sale_time or datetime.fromtimestamp(now, UTC)
    return moment.astimezone(ZoneInfo(time_zone))


def categorised(check: checks.Check, categories: dict[str, str], currency: str) -> checks.Check:
    """Lines the POS sent without a goods category get the catalogue's, a check sent
    without a currency the business's. Built with the constructors: `dataclasses.replace`
    cost a few microseconds a line on every check."""
    if not categories:
        return check if check.currency else checks.Check(currency, check.lines)
    lines: list[checks.CheckLine] = []
    for line in check.lines:
        category = None if line.goods_category_code else categories.get(line.product_code)
        lines.append(
            line
            if category is None
            else checks.CheckLine(
                line.position, line.product_code, line.price, line.quantity, line.amount, category
            )
        )
    return checks.Check(check.currency or currency, tuple(lines))


def _customer(
    request: CalculationRequest,
    membership: Membership | None,
    inputs: CalculationInputs,
    moment: datetime,
    unopened: tuple[Pocket, ...],
) -> tuple[checks.Customer | None, dict[str, int], dict[str, int]]:
    """The engine's view of the customer, and the ids of the named coupons and certificates."""
    customer_id = None if membership is None else membership.customer_id
    coupons, coupon_ids = _coupons(request.coupon_codes, inputs, customer_id)
    certificate_ids = _certificate_ids(request.certificate_codes, inputs)
    named = set(certificate_ids.values())
    certificates = tuple(
        [
            checks.Certificate(row.certificate_id, row.available, row.expires_at)
            for row in inputs.certificates.values()
            if row.certificate_id in named
        ]
    )
    if membership is None:
        if not coupons and not certificates:
            return None, {}, {}
        # An unidentified buyer may still present bearer coupons and certificates.
        anonymous = checks.Customer(0, checks.AccessType.NONE, (), (), coupons, certificates)
        return anonymous, coupon_ids, certificate_ids
    points = next(p for p in membership.pockets if p.account_type_id == POINTS_ACCOUNT_TYPE_ID)
    lots = spendable_lots(
        points.balance,
        points.held,
        [
            (lot.lot_id, lot.remaining, lot.expires_at)
            for lot in inputs.lots(membership.customer_id)
        ],
        moment,
    )
    customer = checks.Customer(
        membership.category_id,
        membership.access_type,
        lots,
        _accounts((*membership.pockets, *unopened), inputs),
        coupons,
        certificates,
    )
    return customer, coupon_ids, certificate_ids


def _accounts(
    pockets: Sequence[Pocket], inputs: CalculationInputs
) -> tuple[checks.CustomerAccount, ...]:
    accounts: list[checks.CustomerAccount] = []
    for pocket in pockets:
        settings = inputs.account_types.get(pocket.account_type_id)
        if settings is None:
            continue
        accounts.append(
            checks.CustomerAccount(
                pocket.account_type_id,
                _account_kinds[pocket.kind],
                pocket.available,
                settings.product_codes,
                settings.redemption_limit_without_pin,
                settings.purchases_per_reward,
                pocket.title,
            )
        )
    return tuple(accounts)


def unopened_pockets(
    membership: Membership | None, inputs: CalculationInputs
) -> tuple[Pocket, ...]:
    """Achievements count from a member's first purchase: every achievements account the
    member has no pocket for yet, empty."""
    if membership is None:
        return ()
    held = {pocket.account_type_id for pocket in membership.pockets}
    return tuple(
        [
            Pocket(
                pocket_id=0,
                kind=PocketKind.ACHIEVEMENTS,
                account_type_id=settings.account_type_id,
                title=localized(settings.title, membership.language, settings.name),
                balance=0,
                held=0,
                redemption_limit_without_pin=settings.redemption_limit_without_pin,
            )
            for settings in inputs.account_types.values()
            if settings.kind == PocketKind.ACHIEVEMENTS.value
            and settings.account_type_id not in held
        ]
    )


def _coupons(
    codes: tuple[str, ...], inputs: CalculationInputs, customer_id: int | None
) -> tuple[tuple[checks.Coupon, ...], dict[str, int]]:
    """The named coupons the customer may use, and their ids by code; refuses the others."""
    if not codes:
        return (), {}
    coupons: list[checks.Coupon] = []
    violations: list[FieldViolation] = []
    for index, code in enumerate(codes):
        path = f"redemption.coupon_codes[{index}]"
        row = inputs.coupons.get(code)
        if row is None:
            violations.append(FieldViolation(path, f"no coupon {echoed(code)} in this business"))
        elif row.customer_id is not None and row.customer_id != customer_id:
            violations.append(FieldViolation(path, f"coupon {echoed(code)} is not this customer's"))
        elif row.status != "issued":
            violations.append(FieldViolation(path, f"coupon {echoed(code)} is {row.status}"))
        else:
            coupons.append(
                checks.Coupon(
                    row.coupon_id,
                    checks.CouponKind(row.kind),
                    row.value,
                    row.product_codes,
                    row.check_sum_min,
                    row.expires_at,
                    localized(row.title, "", row.name),
                )
            )
    if violations:
        raise FailedPrecondition(
            violations[0].description, reason="COUPON_NOT_USABLE", violations=tuple(violations)
        )
    return tuple(coupons), {code: inputs.coupons[code].coupon_id for code in codes}


def _certificate_ids(codes: tuple[str, ...], inputs: CalculationInputs) -> dict[str, int]:
    found: dict[str, int] = {}
    if not codes:
        return found
    violations: list[FieldViolation] = []
    for index, code in enumerate(codes):
        row = inputs.certificates.get(code)
        if row is None:
            violations.append(
                FieldViolation(
                    f"redemption.certificate_codes[{index}]",
                    f"no certificate {echoed(code)} in this business",
                )
            )
        else:
            found[code] = row.certificate_id
    if violations:
        raise FailedPrecondition(
            violations[0].description, reason="CERTIFICATE_UNKNOWN", violations=tuple(violations)
        )
    return found


# --- what applying the calculated check changes ---------------------------------------------


def sale_effects(calculation: Calculation, pending: bool) -> Effects:
    """What applying the calculated check changes: posted at once, or held while
    `pending`. For a member, settlement refuses it unless every pocket it changes holds
    what the calculation read (`Effects.expected`)."""
    membership = calculation.membership
    customer_id = None if membership is None else membership.customer_id
    effects = effects_of_sale(
        calculation.receipt, customer_id, list(calculation.coupon_codes), pending
    )
    if membership is None:
        return effects
    read: dict[PocketKey, Pocket] = {}
    for pocket in (*membership.pockets, *calculation.unopened_pockets):
        read[(membership.customer_id, pocket.account_type_id)] = pocket
    expected: list[tuple[PocketKey, int, int]] = []
    for key in sorted({change.pocket for change in effects.pockets}):
        found = read.get(key)
        expected.append((key, 0, 0) if found is None else (key, found.balance, found.held))
    return effects.expecting(tuple(expected))


def new_pockets(membership: Membership | None, effects: Effects) -> tuple[PocketKey, ...]:
    """The pockets `effects` reach that the membership, as read, does not have."""
    if membership is None:
        return ()
    customer_id = membership.customer_id
    known = {(customer_id, pocket.account_type_id) for pocket in membership.pockets}
    return tuple(sorted({change.pocket for change in effects.pockets} - known))
