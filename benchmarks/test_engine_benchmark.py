"""Benchmarks of `purse.domain.engine.calculate` and of the pure work around it on the
check path (pytest-benchmark; not timed tests).

Targets (median, one core): a 10-line check against 8 rules for a customer with 3 accounts
and 2 coupons <= 25 us; the same with 1,000 extra rules for other products barely slower;
a 1,000-line check <= 2 ms. Around the engine, per batch of 100 such checks (as one
ProcessChecks message brings them): their calculation from what was read for them
(`purse.domain.calculation`: the engine's inputs alone, then with the engine and the
answer), their effects (`sale_effects`, `new_pockets`), and their
settlement against the rows the batch locked with what the write statement then writes
(`purse.domain.settlement`). The figures measured are in README.md ("Performance"). Run
them with `make bench`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from purse.domain.calculation import (
    AccountTypeRow,
    Calculation,
    CalculationInputs,
    CalculationRequest,
    EngineInputs,
    LotRow,
    calculated,
    engine_inputs,
    new_pockets,
    sale_effects,
)
from purse.domain.checks import (
    AccountKind,
    AccountSpending,
    Check,
    CheckLine,
    Coupon,
    CouponKind,
    Customer,
    CustomerAccount,
    PointsLot,
    Receipt,
    Redemption,
)
from purse.domain.customers import Membership, Pocket, PocketKind
from purse.domain.engine import calculate
from purse.domain.program import (
    CompiledProgram,
    Program,
    Rule,
    RuleKind,
    RuleScope,
    Selector,
    TimeWindow,
    ValueKind,
    compile_program,
)
from purse.domain.settlement import Settlement, Statistics, Writes
from purse.domain.terminals import TerminalContext, TerminalKind
from purse.domain.transactions import Effects, PocketKey, effects_of_sale

moment = datetime(2025, 3, 14, 12, 30)
point_of_sale_id = 7


def eight_rules() -> tuple[Rule, ...]:
    return (
        Rule(1, "5% back", RuleKind.ACCRUAL, RuleScope.LINE, ValueKind.PERCENT, 500),
        Rule(
            2,
            "10% back for gold",
            RuleKind.ACCRUAL,
            RuleScope.LINE,
            ValueKind.PERCENT,
            1000,
            Selector(customer_category_ids=(2,)),
        ),
        Rule(
            3,
            "Bonus 20 points over 500.00",
            RuleKind.ACCRUAL,
            RuleScope.CHECK,
            ValueKind.FIXED,
            2000,
            Selector(check_sum_min=50000),
        ),
        Rule(
            4,
            "Coffee 10% off",
            RuleKind.DISCOUNT,
            RuleScope.LINE,
            ValueKind.PERCENT,
            1000,
            Selector(goods_category_codes=("coffee",)),
        ),
        Rule(
            5,
            "Croissant 5.00 off",
            RuleKind.DISCOUNT,
            RuleScope.LINE,
            ValueKind.FIXED,
            500,
            Selector(product_codes=("P-3",)),
        ),
        Rule(
            6,
            "Happy hours 15%",
            RuleKind.DISCOUNT,
            RuleScope.LINE,
            ValueKind.PERCENT,
            1500,
            Selector(time_windows=(TimeWindow(16 * 60, 18 * 60),)),
        ),
        Rule(
            7,
            "3% off checks over 300.00",
            RuleKind.DISCOUNT,
            RuleScope.CHECK,
            ValueKind.PERCENT,
            300,
            Selector(check_sum_min=30000, product_codes_excluded=("P-9",)),
        ),
        Rule(
            8,
            "Shop 12 only",
            RuleKind.DISCOUNT,
            RuleScope.CHECK,
            ValueKind.FIXED,
            1000,
            Selector(point_of_sale_ids=(12,)),
        ),
    )


def other_rules(count: int) -> tuple[Rule, ...]:
    """Rules for products no check here contains, half discounts and half accruals."""
    return tuple(
        Rule(
            1000 + number,
            f"Promo {number}",
            RuleKind.DISCOUNT if number % 2 else RuleKind.ACCRUAL,
            RuleScope.LINE if number % 3 else RuleScope.CHECK,
            ValueKind.PERCENT,
            100 + number % 900,
            Selector(product_codes=(f"OTHER-{number}", f"OTHER-{number + 1}")),
        )
        for number in range(count)
    )


def program_of(rules: tuple[Rule, ...]) -> CompiledProgram:
    return compile_program(
        Program(currency="UAH", rules=rules, redemption_share_max_basis_points=5000)
    )


def check_of(line_count: int) -> Check:
    lines = []
    for position in range(1, line_count + 1):
        price = 1000 + (position * 737) % 9000
        quantity = 1000 * (1 + position % 3)
        lines.append(
            CheckLine(
                position=position,
                product_code=f"P-{position % 40}",
                price=price,
                quantity=quantity,
                amount=price * quantity // 1000,
                goods_category_code="coffee" if position % 2 else "bakery",
            )
        )
    return Check(currency="UAH", lines=tuple(lines))


def customer() -> Customer:
    return Customer(
        category_id=2,
        points_lots=(
            PointsLot(1, 5000, datetime(2025, 4, 1)),
            PointsLot(2, 20000, None),
            PointsLot(3, 3000, datetime(2025, 3, 20)),
        ),
        accounts=(
            CustomerAccount(11, AccountKind.MONEY, 30000, (), 50000),
            CustomerAccount(12, AccountKind.PRODUCTS, 5000, ("P-4", "P-8")),
            CustomerAccount(13, AccountKind.ACHIEVEMENTS, 5, ("P-1",), purchases_per_reward=7),
        ),
        coupons=(
            Coupon(21, CouponKind.PERCENT, 1000, ("P-2",)),
            Coupon(22, CouponKind.FIXED, 2000, (), 10000),
        ),
    )


def redemption_everything() -> Redemption:
    """The cashier uses every pocket: 30.00 points, both coupons, 50.00 from the money account
    (the achievements account rewards by itself)."""
    return Redemption(points=3000, coupon_ids=(21, 22), accounts=(AccountSpending(11, 5000),))


def redemption_points_only() -> Redemption:
    return Redemption(points=3000)


scenarios = {
    "10 lines, 8 rules, all pockets used": (10, 0, redemption_everything),
    "10 lines, 8 rules, points only": (10, 0, redemption_points_only),
    "10 lines, 8 rules, all pockets used, +1000 rules for other products": (
        10,
        1000,
        redemption_everything,
    ),
    "1000 lines, 8 rules, all pockets used": (1000, 0, redemption_everything),
}


@pytest.mark.parametrize("scenario", list(scenarios), ids=list(scenarios))
def test_calculate(benchmark: Any, scenario: str) -> None:
    line_count, extra_rules, spend = scenarios[scenario]
    program = program_of(eight_rules() + other_rules(extra_rules))
    check = check_of(line_count)
    who = customer()
    asked = spend()
    receipt = benchmark(
        calculate, check, program, who, asked, moment=moment, point_of_sale_id=point_of_sale_id
    )
    assert receipt.check_sum == (
        receipt.discount_total
        + receipt.paid_with_points
        + receipt.paid_with_accounts
        + receipt.to_pay
    )
    assert receipt.discounts and receipt.accruals and receipt.payments


def test_receipt_to_proto(benchmark: Any) -> None:
    """Building a 10-line receipt's protobuf (the response and the stored answer)."""
    from purse.api.grpc.terminal.receipts import receipt_to_proto

    receipt = calculate(
        check_of(10), program_of(eight_rules()), customer(), redemption_everything(),
        moment=moment, point_of_sale_id=point_of_sale_id,
    )  # fmt: skip
    calculation = Calculation(receipt, None, {}, {})
    message = benchmark(receipt_to_proto, calculation)
    assert len(message.lines) == 10 and message.adjustments


batch_checks = 100
# Each customer of the batch: the points pocket, the money, products and achievements
# accounts of `customer()`, by account type id.
batch_account_type_ids = (0, 11, 12, 13)


def batch_receipt() -> Receipt:
    """The 10-line check every customer of the batch buys: points redeemed from lots,
    points accrued, purchases counted on the achievements account."""
    return calculate(
        check_of(10), program_of(eight_rules()), customer(), redemption_points_only(),
        moment=moment, point_of_sale_id=point_of_sale_id,
    )  # fmt: skip


# The pockets, certificates, coupons, lots and memberships a batch locked.
LockedRows = tuple[list[Any], list[Any], list[Any], list[Any], list[Any]]


def locked_rows(customer_ids: range) -> LockedRows:
    """What the batch statement locks for these customers, as the store passes it on."""
    pockets = [
        (customer_id, account_type_id, customer_id * 10 + account_type_id % 10, 50_000, 0)
        for customer_id in customer_ids
        for account_type_id in batch_account_type_ids
    ]
    lots = [
        (customer_id, customer_id * 10 + lot, 2_000, moment + timedelta(days=lot), True)
        for customer_id in customer_ids
        for lot in (1, 2)
    ]
    memberships = [(customer_id, 3, 90_000, moment, True) for customer_id in customer_ids]
    return pockets, [], [], lots, memberships


def batch_sales(receipt: Receipt, customer_ids: range) -> list[tuple[Effects, Statistics, int]]:
    sales = []
    for customer_id in customer_ids:
        effects = effects_of_sale(receipt, customer_id, (), pending=False)
        expected = tuple(
            ((customer_id, account_type_id), 50_000, 0)
            for account_type_id in sorted({change.pocket[1] for change in effects.pockets})
        )
        effects = Effects(
            effects.pockets, effects.certificates, effects.coupons, effects.points_spent,
            expected=expected,
        )  # fmt: skip
        sales.append((effects, Statistics(customer_id, 1, receipt.check_sum), customer_id))
    return sales


def settle_batch(
    rows: LockedRows, sales: list[tuple[Effects, Statistics, int]]
) -> tuple[Settlement, Writes]:
    settlement = Settlement(*rows, now=moment)
    writes = Writes(settlement)
    for transaction_id, (effects, statistics, customer_id) in enumerate(sales, 1):
        if settlement.settle(effects, statistics, customer_id).refusal is None:
            writes.add(effects, transaction_id, customer_id, new_sale=True)
    settlement.statistics_columns()
    writes.pocket_columns()
    writes.lot_columns()
    return settlement, writes


def test_settling_a_batch(benchmark: Any) -> None:
    customer_ids = range(1, batch_checks + 1)
    rows = locked_rows(customer_ids)
    sales = batch_sales(batch_receipt(), customer_ids)
    settlement, writes = benchmark(settle_batch, rows, sales)
    assert len(settlement.statistics_columns()[0]) == batch_checks
    assert len(writes.lots_taken) == batch_checks and writes.lot_takes


# --- a group of checks calculated from what was read for them ------------------------------

terminal = TerminalContext(
    business_id=1, business_name="Bakery", point_of_sale_id=point_of_sale_id,
    point_of_sale_name="Main street", terminal_id=3, terminal_name="Till 1",
    kind=TerminalKind.CASH_DESK, enabled=True, program_id=1, program_name="Bonus",
    currency="UAH", currency_exponent=2, phone_prefix="+380", time_zone="Europe/Kyiv",
    enrols_unknown_phones=True, default_access_type="full",
)  # fmt: skip
now_seconds = moment.timestamp()
# What PostgreSQL returns: aware times.
moment_read = moment.replace(tzinfo=UTC)


def member(customer_id: int) -> Membership:
    """The customer of `customer()` as read: points, money, products (achievements not yet)."""
    return Membership(
        customer_id=customer_id, phone=f"+38050{customer_id:07d}", category_id=2,
        category_title="Gold", access_type=customer().access_type, participation_confirmed=True,
        pockets=(
            Pocket(customer_id * 10, PocketKind.POINTS, 0, "", 28_000, 0),
            Pocket(customer_id * 10 + 1, PocketKind.MONEY, 11, "Wallet", 30_000, 0, 50_000),
            Pocket(customer_id * 10 + 2, PocketKind.PRODUCTS, 12, "Coffee", 5_000, 0),
        ),
        sales_count=3, sales_sum_minor_units=90_000, last_visit=moment_read, language="uk",
    )  # fmt: skip


def group_inputs(customer_ids: range) -> CalculationInputs:
    """What the group's one read returns: lots, account types, the goods categories of the
    products sent without one (every other line)."""
    return CalculationInputs(
        rules_version=1,
        lots_by_customer={
            customer_id: (
                LotRow(1, 5_000, moment_read + timedelta(days=18)),
                LotRow(3, 3_000, moment_read + timedelta(days=6)),
            )
            for customer_id in customer_ids
        },
        account_types={
            11: AccountTypeRow(11, "money", (), 50_000, 0, "Wallet", {"uk": "Гаманець"}),
            12: AccountTypeRow(12, "products", ("P-4", "P-8"), None, 0, "Coffee", {}),
            13: AccountTypeRow(13, "achievements", ("P-1",), None, 7, "7th free", {}),
        },
        coupons={},
        certificates={},
        goods_categories={f"P-{number}": "coffee" for number in range(40)},
        known_goods_categories=frozenset({"coffee", "bakery"}),
    )


def group_request() -> CalculationRequest:
    lines = tuple(
        line if line.position % 2 else CheckLine(
            line.position, line.product_code, line.price, line.quantity, line.amount
        )
        for line in check_of(10).lines
    )  # fmt: skip
    return CalculationRequest(Check("UAH", lines), points=3000)


def test_preparing_a_group_of_checks(benchmark: Any) -> None:
    """The engine's inputs for each check from what the group's read returned."""
    customer_ids = range(1, batch_checks + 1)
    inputs = group_inputs(customer_ids)
    members = [member(customer_id) for customer_id in customer_ids]
    request = group_request()

    def group() -> list[EngineInputs]:
        return [engine_inputs(terminal, request, each, inputs, now_seconds) for each in members]

    found = benchmark(group)
    assert len(found) == batch_checks and all(each.unopened for each in found)
    assert all(len(each.check.lines) == 10 for each in found)


def test_calculating_a_group_of_checks(benchmark: Any) -> None:
    """As above, then the engine, and the membership as the answer shows it."""
    customer_ids = range(1, batch_checks + 1)
    inputs = group_inputs(customer_ids)
    members = [member(customer_id) for customer_id in customer_ids]
    request = group_request()
    program = program_of(eight_rules())

    def group() -> list[Calculation]:
        return [
            calculated(terminal, request, each, inputs, program, now_seconds) for each in members
        ]

    found = benchmark(group)
    assert len(found) == batch_checks
    assert all(each.receipt.points_redeemed == 3000 for each in found)


def test_effects_of_a_group_of_sales(benchmark: Any) -> None:
    """What applying each calculated check changes, with the balances it was calculated on
    (`sale_effects`), and the pockets it opens (`new_pockets`)."""
    customer_ids = range(1, batch_checks + 1)
    inputs = group_inputs(customer_ids)
    program = program_of(eight_rules())
    calculations = [
        calculated(terminal, group_request(), member(each), inputs, program, now_seconds)
        for each in customer_ids
    ]

    def effects() -> list[tuple[Effects, tuple[PocketKey, ...]]]:
        found = []
        for calculation in calculations:
            each = sale_effects(calculation, pending=False)
            found.append((each, new_pockets(calculation.membership, each)))
        return found

    found = benchmark(effects)
    assert len(found) == batch_checks
    assert all(each.expected and each.points_spent == 3000 for each, _ in found)
    assert all(opened == ((index, 13),) for index, (_, opened) in enumerate(found, 1))
