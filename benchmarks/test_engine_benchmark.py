"""Benchmarks of `purse.domain.engine.calculate` (pytest-benchmark; not timed tests).

Targets (median, one core): a 10-line check against 8 rules for a customer with 3 accounts
and 2 coupons <= 25 us; the same with 1,000 extra rules for other products barely slower;
a 1,000-line check <= 2 ms. The figures measured are in README.md ("Performance"). Run
them with `make bench`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

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
    Redemption,
)
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
    from purse.service.terminal.calculation import Calculation

    receipt = calculate(
        check_of(10), program_of(eight_rules()), customer(), redemption_everything(),
        moment=moment, point_of_sale_id=point_of_sale_id,
    )  # fmt: skip
    calculation = Calculation(receipt, None, {}, {})
    message = benchmark(receipt_to_proto, calculation)
    assert len(message.lines) == 10 and message.adjustments
