"""Worked examples: checks a cashier would recognise, with the receipt worked out by hand.

Each example states the program, the check, the customer and what the cashier asked for,
and the expected receipt: every line (position, product, amount, discount, paid with
points, paid from accounts, to pay, points redeemed, points accrued), the totals, and
every discount, payment and accrual with its amount on each line. The arithmetic behind
each figure is in the comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest

from purse.domain.checks import (
    AccessType,
    AccountKind,
    AccountSpending,
    Check,
    CheckLine,
    Confirmation,
    Coupon,
    CouponKind,
    Customer,
    CustomerAccount,
    LotTake,
    NotApplied,
    PointsLot,
    Receipt,
    Redemption,
    SourceKind,
    check_lines_max,
    no_redemption,
)
from purse.domain.engine import calculate
from purse.domain.errors import DomainError, FailedPrecondition, InvalidArgument
from purse.domain.program import (
    AccrualBase,
    Program,
    Rule,
    RuleKind,
    RuleScope,
    Selector,
    TimeWindow,
    ValueKind,
    compile_program,
)

RULE, COUPON, POINTS, ACCOUNT = (
    SourceKind.RULE,
    SourceKind.COUPON,
    SourceKind.POINTS,
    SourceKind.ACCOUNT,
)
DISCOUNT, ACCRUAL = RuleKind.DISCOUNT, RuleKind.ACCRUAL
LINE, CHECK = RuleScope.LINE, RuleScope.CHECK
PERCENT, FIXED = ValueKind.PERCENT, ValueKind.FIXED

# Line = (position, product, amount, discount, with points, with accounts, to pay,
#         points redeemed, points accrued)
ReceiptLineValues = tuple[int, str, int, int, int, int, int, int, int]
# Effect = (source kind, source id, amount or points, per-line figures)
Effect = tuple[SourceKind, int, int, tuple[int, ...]]


@dataclass(frozen=True)
class Example:
    name: str
    program: Program
    lines: tuple[CheckLine, ...]
    customer: Customer | None
    moment: datetime
    expected_lines: tuple[ReceiptLineValues, ...]
    expected_discounts: tuple[Effect, ...] = ()
    expected_payments: tuple[Effect, ...] = ()
    expected_accruals: tuple[Effect, ...] = ()
    redemption: Redemption = no_redemption
    point_of_sale_id: int = 1
    expected_points_redeemable_max: int = 0
    expected_lots_taken: tuple[LotTake, ...] = ()
    expected_confirmations: tuple[Confirmation, ...] = ()
    expected_not_applied: tuple[tuple[SourceKind, int, str, str], ...] = ()
    extra_checks: tuple[tuple[str, object], ...] = field(default=())


def line(
    position: int, code: str, price: int, quantity: int, amount: int, category: str | None = None
) -> CheckLine:
    return CheckLine(position, code, price, quantity, amount, category)


# --- a coffee shop: morning discount, every 5th cappuccino free, 5% back ----------------------

coffee_program = Program(
    currency="UAH",
    rules=(
        Rule(1, "5% back", ACCRUAL, LINE, PERCENT, 500),
        Rule(
            2,
            "Morning coffee -10%",
            DISCOUNT,
            LINE,
            PERCENT,
            1000,
            Selector(goods_category_codes=("coffee",), time_windows=(TimeWindow(480, 660),)),
        ),
        Rule(3, "Big order -20.00", DISCOUNT, CHECK, FIXED, 2000, Selector(check_sum_min=30000)),
    ),
)

coffee_lover = Customer(
    category_id=1,
    points_lots=(PointsLot(1, 10000),),
    accounts=(CustomerAccount(31, AccountKind.ACHIEVEMENTS, 4, ("CAP",), purchases_per_reward=5),),
)

coffee_morning = Example(
    name="coffee shop: the 5th cappuccino is free and the croissants earn 5%",
    program=coffee_program,
    lines=(
        line(1, "CAP", 5500, 1000, 5500, "coffee"),  # cappuccino 55.00
        line(2, "CRO", 4500, 2000, 9000, "bakery"),  # two croissants 45.00
    ),
    customer=coffee_lover,
    moment=datetime(2025, 3, 11, 9, 15),  # Tuesday morning
    # cappuccino: 10% off 55.00 = 5.50, then free from the achievements account (49.50)
    # croissants: 5% of 90.00 paid = 4.50 points; nothing to redeem asked, up to 90.00 allowed
    expected_lines=(
        (1, "CAP", 5500, 550, 0, 4950, 0, 0, 0),
        (2, "CRO", 9000, 0, 0, 0, 9000, 0, 450),
    ),
    expected_discounts=((RULE, 2, 550, (550, 0)),),
    expected_payments=((ACCOUNT, 31, 4950, (4950, 0)),),
    expected_accruals=((RULE, 1, 450, (0, 450)),),
    expected_points_redeemable_max=9000,
    expected_not_applied=((RULE, 3, "CHECK_SUM_BELOW_MINIMUM", "check sum below 300.00"),),
    extra_checks=(("achievements", ((31, 1, 1, 0, (1, 0)),)),),
)

coffee_afternoon = Example(
    name="coffee shop: afternoon, a free-latte coupon and part of the points",
    program=coffee_program,
    lines=(
        line(1, "LAT", 6000, 2000, 12000, "coffee"),  # two lattes 60.00
        line(2, "CAKE", 8500, 1000, 8500, "bakery"),
    ),
    customer=Customer(
        category_id=1,
        points_lots=(PointsLot(1, 10000),),
        coupons=(Coupon(51, CouponKind.FREE_PRODUCT, 1000, ("LAT",), title="Free latte"),),
    ),
    moment=datetime(2025, 3, 11, 15, 0),  # no morning discount after 11:00
    redemption=Redemption(points=3000, coupon_ids=(51,)),
    # coupon: one of two lattes free = 60.00; left 60.00 + 85.00 = 145.00
    # points 30.00 split 60:85 -> 12.41 / 17.59 (12.413.. and 17.586..: the larger remainder
    # goes to the cake); paid 47.59 and 67.41; 5% back -> 2.38 and 3.37 points
    expected_lines=(
        (1, "LAT", 12000, 6000, 1241, 0, 4759, 1241, 238),
        (2, "CAKE", 8500, 0, 1759, 0, 6741, 1759, 337),
    ),
    expected_discounts=((COUPON, 51, 6000, (6000, 0)),),
    expected_payments=((POINTS, 0, 3000, (1241, 1759)),),
    expected_accruals=((RULE, 1, 575, (238, 337)),),
    expected_points_redeemable_max=10000,
    expected_lots_taken=(LotTake(1, 3000),),
    expected_confirmations=(Confirmation(POINTS, 0, 3000, 0),),  # every redemption needs a PIN
    expected_not_applied=(
        (RULE, 2, "OUTSIDE_TIME_WINDOWS", "the rule does not apply at 15:00"),
        (RULE, 3, "CHECK_SUM_BELOW_MINIMUM", "check sum below 300.00"),
    ),
)


# --- a fuel station: fleet discount per litre, a fuel card, points per litre -----------------

fuel_program = Program(
    currency="UAH",
    rules=(
        Rule(
            10,
            "0.50 points a litre",
            ACCRUAL,
            LINE,
            FIXED,
            50,
            Selector(product_codes=("A95", "DT")),
        ),
        Rule(
            11,
            "Fleet -1.50 a litre",
            DISCOUNT,
            LINE,
            FIXED,
            150,
            Selector(goods_category_codes=("fuel",), customer_category_ids=(2,)),
        ),
    ),
)

fuel_card = Example(
    name="fuel station: 40.5 l of A95, 30 l of it from the fuel card",
    program=fuel_program,
    lines=(
        line(1, "A95", 5299, 40500, 214610, "fuel"),  # 52.99 x 40.5 = 2146.095 -> 2146.10
        line(2, "COFFEE", 3500, 1000, 3500, "cafe"),
    ),
    customer=Customer(
        category_id=2,
        accounts=(
            CustomerAccount(
                41, AccountKind.PRODUCTS, 30000, ("A95",), redemption_limit_without_pin=20000
            ),
        ),
    ),
    moment=datetime(2025, 3, 14, 7, 40),
    redemption=Redemption(accounts=(AccountSpending(41),)),  # as much as the card allows
    # discount 1.50 x 40.5 = 60.75 -> 2085.35 left for 40.5 l
    # card pays 30 of 40.5 l: 2085.35 x 30 / 40.5 = 1544.703.. -> 1544.70, 10.5 l left
    # accrual 0.50 a litre on the 10.5 l paid at the till = 5.25 points; 30 l > 20 l: PIN
    expected_lines=(
        (1, "A95", 214610, 6075, 0, 154470, 54065, 0, 525),
        (2, "COFFEE", 3500, 0, 0, 0, 3500, 0, 0),
    ),
    expected_discounts=((RULE, 11, 6075, (6075, 0)),),
    expected_payments=((ACCOUNT, 41, 154470, (154470, 0)),),
    expected_accruals=((RULE, 10, 525, (525, 0)),),
    expected_confirmations=(Confirmation(ACCOUNT, 41, 30000, 20000),),
    extra_checks=(("payment_debits", ((ACCOUNT, 41, 30000, (30000, 0)),)),),
)

fuel_walk_in = Example(
    name="fuel station: a walk-in driver is not in the fleet and has no card",
    program=fuel_program,
    lines=(line(1, "DT", 5149, 20000, 102980, "fuel"),),
    customer=Customer(category_id=1),
    moment=datetime(2025, 3, 14, 7, 40),
    # 0.50 points a litre x 20 l = 10.00 points; the fleet discount is for category 2
    expected_lines=((1, "DT", 102980, 0, 0, 0, 102980, 0, 1000),),
    expected_accruals=((RULE, 10, 1000, (1000,)),),
    expected_not_applied=(
        (
            RULE,
            11,
            "CUSTOMER_CATEGORY_NOT_SELECTED",
            "customer category 1 is not among the rule's categories",
        ),
    ),
)


# --- a grocery: dairy -20%, 5.00 off big checks but not on tobacco, points with expiry -------

grocery_program = Program(
    currency="EUR",
    rules=(
        Rule(
            20,
            "Dairy -20%",
            DISCOUNT,
            LINE,
            PERCENT,
            2000,
            Selector(goods_category_codes=("dairy",)),
        ),
        Rule(21, "Milk -15%", DISCOUNT, LINE, PERCENT, 1500, Selector(product_codes=("MILK-1L",))),
        Rule(
            22,
            "5.00 off from 50.00",
            DISCOUNT,
            CHECK,
            FIXED,
            500,
            Selector(check_sum_min=5000, product_codes_excluded=("TOBACCO",)),
        ),
        Rule(
            23,
            "1% back",
            ACCRUAL,
            LINE,
            PERCENT,
            100,
            Selector(product_codes_excluded=("TOBACCO",)),
        ),
        Rule(24, "Weekend 3% back", ACCRUAL, LINE, PERCENT, 300, Selector(days_of_week=(5, 6))),
    ),
    redemption_share_max_basis_points=3000,
    points_redemption_limit_without_pin=500,
)

grocery = Example(
    name="grocery: goods-category discount, a check discount, points from the soonest lots",
    program=grocery_program,
    lines=(
        line(1, "MILK-1L", 129, 3000, 387, "dairy"),
        line(2, "CHEESE", 1899, 350, 665, "dairy"),  # 0.350 kg x 18.99 = 6.6465 -> 6.65
        line(3, "BREAD", 249, 1000, 249, "bakery"),
        line(4, "TOBACCO", 650, 2000, 1300, "tobacco"),
        line(5, "APPLES", 299, 1234, 369, "fruit"),  # 1.234 kg x 2.99 = 3.68966 -> 3.69
        line(6, "WINE", 1299, 2000, 2598, "drinks"),
    ),
    customer=Customer(
        category_id=1,
        points_lots=(
            PointsLot(4, 800, datetime(2025, 3, 1)),  # expired: not spendable
            PointsLot(3, 1000, None),
            PointsLot(2, 2000, datetime(2025, 4, 1)),
            PointsLot(1, 500, datetime(2025, 3, 20)),
        ),
    ),
    moment=datetime(2025, 3, 12, 18, 0),  # a Wednesday
    redemption=Redemption(points=1000),
    # dairy -20% beats milk -15%: 0.77 and 1.33
    # 5.00 over 3.10 + 5.32 + 2.49 + 3.69 + 25.98 (no tobacco) = 40.58: 0.38/0.66/0.31/0.45/3.20
    # points: at most 30% of 48.58 = 14.57; 10.00 split by what is left
    # 1% back on what is paid (no tobacco): 2.16 -> 0.02, 3.70 -> 0.04, 1.73 -> 0.02, ...
    expected_lines=(
        (1, "MILK-1L", 387, 115, 56, 0, 216, 56, 2),
        (2, "CHEESE", 665, 199, 96, 0, 370, 96, 4),
        (3, "BREAD", 249, 31, 45, 0, 173, 45, 2),
        (4, "TOBACCO", 1300, 0, 267, 0, 1033, 267, 0),
        (5, "APPLES", 369, 45, 67, 0, 257, 67, 3),
        (6, "WINE", 2598, 320, 469, 0, 1809, 469, 18),
    ),
    expected_discounts=(
        (RULE, 20, 210, (77, 133, 0, 0, 0, 0)),
        (RULE, 22, 500, (38, 66, 31, 0, 45, 320)),
    ),
    expected_payments=((POINTS, 0, 1000, (56, 96, 45, 267, 67, 469)),),
    expected_accruals=((RULE, 23, 29, (2, 4, 2, 0, 3, 18)),),
    expected_points_redeemable_max=1457,
    expected_lots_taken=(LotTake(1, 500), LotTake(2, 500)),
    expected_confirmations=(Confirmation(POINTS, 0, 1000, 500),),
    expected_not_applied=(
        (
            RULE,
            21,
            "OUTRANKED",
            "a more generous rule applied, or the rule was worth nothing, on every line it matches",
        ),
        (RULE, 24, "DAY_OF_WEEK_NOT_SELECTED", "the rule does not apply on Wednesday"),
    ),
)

grocery_limited = Example(
    name="grocery: a customer with limited access accrues but may not redeem",
    program=grocery_program,
    lines=(line(1, "BREAD", 249, 4000, 996, "bakery"),),
    customer=Customer(
        category_id=1, access_type=AccessType.LIMITED, points_lots=(PointsLot(1, 5000),)
    ),
    moment=datetime(2025, 3, 15, 10, 0),  # Saturday: 3% beats 1%
    # 3% of 9.96 = 0.2988 -> 0.30 points
    expected_lines=((1, "BREAD", 996, 0, 0, 0, 996, 0, 30),),
    expected_accruals=((RULE, 24, 30, (30,)),),
    expected_points_redeemable_max=0,
    expected_not_applied=(
        (RULE, 20, "NO_MATCHING_LINES", "no line matches the rule's products or goods categories"),
        (RULE, 21, "NO_MATCHING_LINES", "no line matches the rule's products or goods categories"),
        (RULE, 22, "CHECK_SUM_BELOW_MINIMUM", "check sum below 50.00"),
        (
            RULE,
            23,
            "OUTRANKED",
            "a more generous rule applied, or the rule was worth nothing, on every line it matches",
        ),
    ),
)

no_accrual = "no points accrue for this customer (not identified, or access type none)"

grocery_anonymous = Example(
    name="grocery: an unidentified customer still gets the open discounts, and no points",
    program=grocery_program,
    lines=(line(2, "YOGURT", 89, 2000, 178, "dairy"), line(1, "BREAD", 249, 1000, 249)),
    customer=None,
    moment=datetime(2025, 3, 12, 18, 0),
    # lines come back by position whatever order they were sent in
    expected_lines=(
        (1, "BREAD", 249, 0, 0, 0, 249, 0, 0),
        (2, "YOGURT", 178, 36, 0, 0, 142, 0, 0),  # 20% of 1.78 = 0.356 -> 0.36
    ),
    expected_discounts=((RULE, 20, 36, (0, 36)),),
    expected_not_applied=(
        (RULE, 21, "NO_MATCHING_LINES", "no line matches the rule's products or goods categories"),
        (RULE, 22, "CHECK_SUM_BELOW_MINIMUM", "check sum below 50.00"),
        (RULE, 23, "ACCRUAL_NOT_ALLOWED", no_accrual),
        (RULE, 24, "ACCRUAL_NOT_ALLOWED", no_accrual),
    ),
)

examples = (
    coffee_morning,
    coffee_afternoon,
    fuel_card,
    fuel_walk_in,
    grocery,
    grocery_limited,
    grocery_anonymous,
)


def run(example: Example, explain: bool = True) -> Receipt:
    return calculate(
        Check(example.program.currency, example.lines),
        compile_program(example.program),
        example.customer,
        example.redemption,
        moment=example.moment,
        point_of_sale_id=example.point_of_sale_id,
        explain=explain,
    )


@pytest.mark.parametrize("example", examples, ids=[example.name for example in examples])
def test_worked_example_gives_the_receipt_worked_out_by_hand(example: Example) -> None:
    receipt = run(example)
    assert [tuple(receipt_line) for receipt_line in receipt.lines] == list(example.expected_lines)
    assert [
        (d.source_kind, d.source_id, d.amount, d.line_amounts) for d in receipt.discounts
    ] == list(example.expected_discounts)
    assert [
        (p.source_kind, p.source_id, p.amount, p.line_amounts) for p in receipt.payments
    ] == list(example.expected_payments)
    assert [(RULE, a.rule_id, a.points, a.line_points) for a in receipt.accruals] == list(
        example.expected_accruals
    )
    assert receipt.points_redeemable_max == example.expected_points_redeemable_max
    assert receipt.lots_taken == example.expected_lots_taken
    assert receipt.confirmations == example.expected_confirmations
    assert receipt.confirmation_required == bool(example.expected_confirmations)
    assert [tuple(entry) for entry in receipt.not_applied] == list(example.expected_not_applied)
    for name, expected in example.extra_checks:
        if name == "achievements":
            assert [tuple(progress) for progress in receipt.achievements] == list(
                expected  # type: ignore[call-overload]
            )
        elif name == "payment_debits":
            assert [
                (p.source_kind, p.source_id, p.debit, p.line_debits) for p in receipt.payments
            ] == list(expected)  # type: ignore[call-overload]
    columns = list(zip(*example.expected_lines, strict=True))
    totals = [sum(values) for values in columns[2:]]
    assert [
        receipt.check_sum,
        receipt.discount_total,
        receipt.paid_with_points,
        receipt.paid_with_accounts,
        receipt.to_pay,
        receipt.points_redeemed,
        receipt.points_accrued,
    ] == totals


def test_explanations_are_only_given_when_asked_for() -> None:
    assert run(grocery, explain=False).not_applied == ()


def test_a_requested_coupon_that_cannot_apply_is_reported_and_not_used() -> None:
    customer = Customer(
        category_id=1,
        coupons=(
            Coupon(61, CouponKind.PERCENT, 1000, check_sum_min=50000),
            Coupon(62, CouponKind.FIXED, 500, ("CAKE",)),
            Coupon(63, CouponKind.FIXED, 500, expires_at=datetime(2025, 3, 1)),
        ),
    )
    example = Example(
        name="coupons",
        program=coffee_program,
        lines=(line(1, "CAP", 5500, 1000, 5500, "coffee"),),
        customer=customer,
        moment=datetime(2025, 3, 11, 15, 0),
        expected_lines=(),
        redemption=Redemption(coupon_ids=(61, 62, 63)),
    )
    receipt = run(example, explain=False)
    assert receipt.discounts == ()
    assert receipt.not_applied == (
        NotApplied(COUPON, 61, "CHECK_SUM_BELOW_MINIMUM", "check sum below 500.00"),
        NotApplied(
            COUPON, 62, "NO_MATCHING_LINES", "no line is left to pay for the coupon's products"
        ),
        NotApplied(COUPON, 63, "COUPON_EXPIRED", "the coupon has expired"),
    )


def test_accrual_on_the_amount_before_discounts_when_the_program_says_so() -> None:
    program = Program(
        currency="UAH",
        rules=(
            Rule(1, "10% back", ACCRUAL, LINE, PERCENT, 1000),
            Rule(2, "-50%", DISCOUNT, LINE, PERCENT, 5000),
        ),
    )
    lines = (line(1, "X", 10000, 1000, 10000),)
    customer = Customer(category_id=1)
    receipts = {
        base: calculate(
            Check("UAH", lines),
            compile_program(Program(currency="UAH", rules=program.rules, accrual_base=base)),
            customer,
            moment=datetime(2025, 1, 1),
            point_of_sale_id=1,
        )
        for base in AccrualBase
    }
    assert receipts[AccrualBase.LINE_AMOUNT].points_accrued == 1000  # 10% of 100.00
    assert receipts[AccrualBase.AFTER_DISCOUNTS].points_accrued == 500  # 10% of 50.00
    assert receipts[AccrualBase.PAID].points_accrued == 500


def test_a_point_worth_one_kopeck_pays_a_hundredth_of_the_money() -> None:
    program = Program(currency="UAH", point_value_minor_units_per_point=1)
    receipt = calculate(
        Check("UAH", (line(1, "X", 10000, 1000, 10000),)),
        compile_program(program),
        Customer(category_id=1, points_lots=(PointsLot(1, 1_000_000),)),
        Redemption(points=150_000),  # 1,500 points
        moment=datetime(2025, 1, 1),
        point_of_sale_id=1,
    )
    assert receipt.paid_with_points == 1500  # 15.00
    assert receipt.points_redeemable_max == 1_000_000  # 10,000 points pay the whole 100.00


# --- bad input and refusals -------------------------------------------------------------------


def bad(
    lines: tuple[CheckLine, ...] = (line(1, "X", 100, 1000, 100),),
    *,
    currency: str = "UAH",
    customer: Customer | None = None,
    redemption: Redemption = no_redemption,
) -> DomainError:
    try:
        calculate(
            Check(currency, lines),
            compile_program(Program(currency="UAH", redemption_share_max_basis_points=5000)),
            customer,
            redemption,
            moment=datetime(2025, 1, 1),
            point_of_sale_id=1,
        )
    except DomainError as error:
        return error
    raise AssertionError("the engine accepted bad input")


rich = Customer(
    category_id=1,
    points_lots=(PointsLot(1, 500),),
    accounts=(
        CustomerAccount(1, AccountKind.MONEY, 1000),
        CustomerAccount(2, AccountKind.ACHIEVEMENTS, 0, purchases_per_reward=3),
    ),
    coupons=(Coupon(5, CouponKind.FIXED, 100),),
)

refusals = [
    ("an empty check", bad(()), InvalidArgument, "EMPTY_CHECK", "check.lines"),
    (
        "a zero quantity",
        bad((line(1, "X", 100, 1000, 100), line(2, "Y", 100, 0, 0))),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "check.lines[1].quantity",
    ),
    (
        "a negative price",
        bad((line(1, "X", -100, 1000, -100),)),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "check.lines[0].price",
    ),
    (
        "an amount that disagrees with price x quantity",
        bad((line(1, "X", 1999, 1500, 2997),)),  # 29.985: 29.98 or 29.99 would do
        InvalidArgument,
        "INVALID_ARGUMENT",
        "check.lines[0].amount",
    ),
    (
        "a position named twice",
        bad((line(1, "X", 100, 1000, 100), line(1, "Y", 100, 1000, 100))),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "check.lines[1].position",
    ),
    (
        "an empty product code",
        bad((line(1, "", 100, 1000, 100),)),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "check.lines[0].product_code",
    ),
    (
        "too many lines",
        bad(tuple(line(n, "X", 100, 1000, 100) for n in range(check_lines_max + 1))),
        InvalidArgument,
        "TOO_MANY_LINES",
        "check.lines",
    ),
    (
        "an unknown currency",
        bad(currency="ABC"),
        InvalidArgument,
        "UNKNOWN_CURRENCY",
        "check.currency",
    ),
    (
        "a currency the program does not keep",
        bad(currency="USD"),
        InvalidArgument,
        "CURRENCY_MISMATCH",
        "check.currency",
    ),
    (
        "a blacklisted customer",
        bad(customer=Customer(category_id=1, access_type=AccessType.BLACKLISTED)),
        FailedPrecondition,
        "CUSTOMER_BLACKLISTED",
        None,
    ),
    (
        "redemption without a customer",
        bad(redemption=Redemption(points=1)),
        FailedPrecondition,
        "CUSTOMER_REQUIRED",
        None,
    ),
    (
        "more points than the customer has",
        bad(customer=rich, redemption=Redemption(points=501)),
        FailedPrecondition,
        "INSUFFICIENT_POINTS",
        "redemption.points",
    ),
    (
        "more points than the share cap",
        bad(customer=rich, redemption=Redemption(points=51)),  # 50% of 1.00
        FailedPrecondition,
        "REDEMPTION_ABOVE_CAP",
        "redemption.points",
    ),
    (
        "points from a customer with limited access",
        bad(
            customer=Customer(
                category_id=1, access_type=AccessType.LIMITED, points_lots=(PointsLot(1, 500),)
            ),
            redemption=Redemption(points=10),
        ),
        FailedPrecondition,
        "POINTS_REDEMPTION_NOT_ALLOWED",
        "redemption.points",
    ),
    (
        "negative points",
        bad(customer=rich, redemption=Redemption(points=-1)),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "redemption.points",
    ),
    (
        "an account that is not the customer's",
        bad(customer=rich, redemption=Redemption(accounts=(AccountSpending(9),))),
        FailedPrecondition,
        "ACCOUNT_NOT_OWNED",
        "redemption.accounts[0].account_id",
    ),
    (
        "a coupon that is not the customer's",
        bad(customer=rich, redemption=Redemption(coupon_ids=(5, 6))),
        FailedPrecondition,
        "COUPON_NOT_OWNED",
        "redemption.coupon_ids[1]",
    ),
    (
        "a coupon named twice",
        bad(customer=rich, redemption=Redemption(coupon_ids=(5, 5))),
        InvalidArgument,
        "DUPLICATE",
        "redemption.coupon_ids[1]",
    ),
    (
        "more than the account holds",
        bad(customer=rich, redemption=Redemption(accounts=(AccountSpending(1, 1001),))),
        FailedPrecondition,
        "INSUFFICIENT_BALANCE",
        "redemption.accounts[0].amount",
    ),
    (
        "more from an account than the check costs",
        bad(customer=rich, redemption=Redemption(accounts=(AccountSpending(1, 101),))),
        FailedPrecondition,
        "REDEMPTION_ABOVE_CAP",
        "redemption.accounts[0].amount",
    ),
    (
        "an achievements account asked to pay",
        bad(customer=rich, redemption=Redemption(accounts=(AccountSpending(2),))),
        InvalidArgument,
        "INVALID_ARGUMENT",
        "redemption.accounts[0].account_id",
    ),
]


@pytest.mark.parametrize(
    ("error", "kind", "reason", "field_path"),
    [refusal[1:] for refusal in refusals],
    ids=[refusal[0] for refusal in refusals],
)
def test_bad_input_is_refused_with_a_typed_error_reason_and_field_path(
    error: DomainError, kind: type[DomainError], reason: str, field_path: str | None
) -> None:
    assert type(error) is kind
    assert error.reason == reason
    if field_path is not None:
        assert isinstance(error, InvalidArgument | FailedPrecondition)
        assert field_path in [violation.field for violation in error.violations]


def test_every_bad_line_is_named_at_once() -> None:
    error = bad((line(1, "X", 0, 1000, 0), line(2, "Y", 100, -5, 0), line(3, "Z", 100, 1000, 100)))
    assert isinstance(error, InvalidArgument)
    assert [v.field for v in error.violations] == [
        "check.lines[0].price",
        "check.lines[1].quantity",
    ]


def test_unknown_product_codes_are_fine_and_uncategorised() -> None:
    receipt = calculate(
        Check("EUR", (line(1, "NEVER-SEEN", 100, 1000, 100),)),
        compile_program(grocery_program),
        None,
        moment=datetime(2025, 3, 12, 18, 0),
        point_of_sale_id=1,
    )
    assert receipt.to_pay == 100
