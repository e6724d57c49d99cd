"""Properties of the engine that must hold for every check, program and customer."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from purse.domain.checks import (
    AccessType,
    AccountKind,
    AccountSpending,
    Certificate,
    CertificateSpending,
    Check,
    CheckLine,
    Coupon,
    CouponKind,
    Customer,
    CustomerAccount,
    Discount,
    Payment,
    PointsLot,
    Receipt,
    Redemption,
    SourceKind,
    no_redemption,
)
from purse.domain.engine import calculate
from purse.domain.errors import FailedPrecondition
from purse.domain.program import (
    AccrualBase,
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

product_codes = ("A", "B", "C", "D", "E", "F")
goods_categories = ("food", "fuel", "drinks")
moment = datetime(2025, 3, 12, 12, 0)

some_codes = st.lists(st.sampled_from(product_codes), max_size=3, unique=True).map(tuple)


@st.composite
def check_lines(draw: st.DrawFn, max_lines: int = 25) -> tuple[CheckLine, ...]:
    count = draw(st.integers(1, max_lines))
    positions = draw(st.lists(st.integers(0, 500), min_size=count, max_size=count, unique=True))
    lines = []
    for position in positions:
        price = draw(st.integers(1, 500_000))
        quantity = draw(st.integers(1, 50_000))
        exact, leftover = divmod(price * quantity, 1000)
        amount = exact + (1 if leftover and draw(st.booleans()) else 0)  # the POS rounds either way
        lines.append(
            CheckLine(
                position=position,
                product_code=draw(st.sampled_from(product_codes)),
                price=price,
                quantity=quantity,
                amount=amount,
                goods_category_code=draw(st.none() | st.sampled_from(goods_categories)),
            )
        )
    return tuple(lines)


@st.composite
def selectors(draw: st.DrawFn) -> Selector:
    return Selector(
        customer_category_ids=draw(st.lists(st.integers(1, 3), max_size=2, unique=True).map(tuple)),
        point_of_sale_ids=draw(st.sampled_from(((), (1,), (2,)))),
        product_codes=draw(some_codes),
        goods_category_codes=draw(
            st.lists(st.sampled_from(goods_categories), max_size=2, unique=True).map(tuple)
        ),
        check_sum_min=draw(st.sampled_from((0, 0, 10_000, 1_000_000))),
        days_of_week=draw(st.sampled_from(((), (2,), (5, 6)))),
        time_windows=draw(st.sampled_from(((), (TimeWindow(600, 900),), (TimeWindow(1320, 120),)))),
    )


@st.composite
def programs(draw: st.DrawFn) -> CompiledProgram:
    rules = []
    for rule_id in range(1, draw(st.integers(0, 10)) + 1):
        value_kind = draw(st.sampled_from(ValueKind))
        rules.append(
            Rule(
                rule_id=rule_id,
                title=f"rule {rule_id}",
                kind=draw(st.sampled_from(RuleKind)),
                scope=draw(st.sampled_from(RuleScope)),
                value_kind=value_kind,
                value=draw(
                    st.integers(1, 10_000)
                    if value_kind is ValueKind.PERCENT
                    else st.integers(1, 100_000)
                ),
                selector=draw(selectors()),
            )
        )
    program = Program(
        currency="UAH",
        rules=tuple(rules),
        accrual_base=draw(st.sampled_from(AccrualBase)),
        point_value_minor_units_per_point=draw(st.sampled_from((1, 50, 100, 250))),
        redemption_share_max_basis_points=draw(st.integers(0, 10_000)),
        redemption_check_sum_min=draw(st.sampled_from((0, 5_000))),
        points_redemption_limit_without_pin=draw(st.none() | st.integers(0, 10_000)),
    )
    return compile_program(program)


@st.composite
def customers(draw: st.DrawFn) -> Customer:
    lots = tuple(
        PointsLot(
            lot_id,
            draw(st.integers(0, 200_000)),
            draw(st.none() | st.integers(-5, 30).map(lambda days: moment + timedelta(days=days))),
        )
        for lot_id in range(1, draw(st.integers(0, 4)) + 1)
    )
    accounts = []
    for account_id in range(1, draw(st.integers(0, 4)) + 1):
        kind = draw(st.sampled_from(AccountKind))
        accounts.append(
            CustomerAccount(
                account_id=account_id,
                kind=kind,
                balance=draw(st.integers(0, 1_000_000)),
                product_codes=draw(some_codes),
                redemption_limit_without_pin=draw(st.none() | st.integers(0, 100_000)),
                purchases_per_reward=draw(st.integers(1, 7)),
            )
        )
    coupons = tuple(
        Coupon(
            coupon_id,
            kind := draw(st.sampled_from(CouponKind)),
            draw(st.integers(1, 10_000) if kind is CouponKind.PERCENT else st.integers(1, 100_000)),
            draw(some_codes),
            draw(st.sampled_from((0, 100_000))),
        )
        for coupon_id in range(1, draw(st.integers(0, 3)) + 1)
    )
    certificates = tuple(
        Certificate(certificate_id, draw(st.integers(0, 500_000)))
        for certificate_id in range(1, draw(st.integers(0, 2)) + 1)
    )
    return Customer(
        category_id=draw(st.integers(1, 3)),
        access_type=draw(st.sampled_from((AccessType.FULL, AccessType.LIMITED, AccessType.NONE))),
        points_lots=lots,
        accounts=tuple(accounts),
        coupons=coupons,
        certificates=certificates,
    )


def redemption_for(customer: Customer, points: int, data: st.DataObject) -> Redemption:
    """Coupons, accounts and certificates as much as allowed, in an order the test chooses."""
    accounts = [a for a in customer.accounts if a.kind is not AccountKind.ACHIEVEMENTS]
    chosen_accounts = data.draw(st.permutations(accounts))
    chosen_coupons = data.draw(st.permutations([c.coupon_id for c in customer.coupons]))
    return Redemption(
        points=points,
        coupon_ids=tuple(chosen_coupons),
        accounts=tuple(AccountSpending(a.account_id) for a in chosen_accounts),
        certificates=tuple(CertificateSpending(c.certificate_id) for c in customer.certificates),
    )


def calculate_for(
    lines: tuple[CheckLine, ...],
    program: CompiledProgram,
    customer: Customer | None,
    redemption: Redemption = no_redemption,
    point_of_sale_id: int = 1,
) -> Receipt:
    return calculate(
        Check("UAH", lines),
        program,
        customer,
        redemption,
        moment=moment,
        point_of_sale_id=point_of_sale_id,
        explain=True,
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[tuple[CheckLine, ...], CompiledProgram, Customer, Redemption]:
    lines = draw(check_lines())
    program = draw(programs())
    customer = draw(customers())
    without_points = redemption_for(customer, 0, draw(st.data()))
    most = calculate_for(lines, program, customer, without_points).points_redeemable_max
    points = draw(st.integers(0, most))
    return lines, program, customer, without_points._replace(points=points)


def assert_adds_up(receipt: Receipt) -> None:
    count = len(receipt.lines)
    for discount in receipt.discounts:
        assert len(discount.line_amounts) == count
        assert sum(discount.line_amounts) == discount.amount > 0
    for payment in receipt.payments:
        assert len(payment.line_amounts) == len(payment.line_debits) == count
        assert sum(payment.line_amounts) == payment.amount
        assert sum(payment.line_debits) == payment.debit > 0
    for accrual in receipt.accruals:
        assert sum(accrual.line_points) == accrual.points > 0
    for index, line in enumerate(receipt.lines):
        assert line.discount == sum(d.line_amounts[index] for d in receipt.discounts)
        points = [p for p in receipt.payments if p.source_kind is SourceKind.POINTS]
        assert line.paid_with_points == sum(p.line_amounts[index] for p in points)
        assert line.points_redeemed == sum(p.line_debits[index] for p in points)
        assert line.paid_with_accounts == sum(
            p.line_amounts[index]
            for p in receipt.payments
            if p.source_kind is not SourceKind.POINTS
        )
        assert line.points_accrued == sum(a.line_points[index] for a in receipt.accruals)
        assert (
            line.amount
            == line.discount + line.paid_with_points + line.paid_with_accounts + line.to_pay
        )
    assert receipt.check_sum == sum(line.amount for line in receipt.lines)
    assert receipt.discount_total == sum(line.discount for line in receipt.lines)
    assert receipt.paid_with_points == sum(line.paid_with_points for line in receipt.lines)
    assert receipt.paid_with_accounts == sum(line.paid_with_accounts for line in receipt.lines)
    assert receipt.to_pay == sum(line.to_pay for line in receipt.lines)
    assert receipt.points_redeemed == sum(line.points_redeemed for line in receipt.lines)
    assert receipt.points_accrued == sum(line.points_accrued for line in receipt.lines)
    assert sum(take.points for take in receipt.lots_taken) == receipt.points_redeemed


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_per_line_effects_sum_exactly_to_every_total(
    scenario: tuple[tuple[CheckLine, ...], CompiledProgram, Customer, Redemption],
) -> None:
    receipt = calculate_for(*scenario)
    assert_adds_up(receipt)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_nothing_in_a_receipt_is_ever_negative(
    scenario: tuple[tuple[CheckLine, ...], CompiledProgram, Customer, Redemption],
) -> None:
    receipt = calculate_for(*scenario)
    for line in receipt.lines:
        amounts = (
            line.amount, line.discount, line.paid_with_points, line.paid_with_accounts,
            line.to_pay, line.points_redeemed, line.points_accrued,
        )  # fmt: skip
        assert min(amounts) >= 0
    for discount in receipt.discounts:
        assert min(discount.line_amounts) >= 0
    for payment in receipt.payments:
        assert min(payment.line_amounts) >= 0
        assert min(payment.line_debits) >= 0
    for accrual in receipt.accruals:
        assert min(accrual.line_points) >= 0
    for progress in receipt.achievements:
        assert progress.balance_after >= 0
    assert receipt.points_redeemable_max >= 0


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_redemption_never_exceeds_the_balance_nor_the_share_cap(
    scenario: tuple[tuple[CheckLine, ...], CompiledProgram, Customer, Redemption],
) -> None:
    lines, program, customer, redemption = scenario
    receipt = calculate_for(lines, program, customer, redemption)
    spendable = {
        lot.lot_id: lot.points
        for lot in customer.points_lots
        if lot.expires_at is None or moment < lot.expires_at
    }
    assert receipt.points_redeemed == redemption.points
    assert receipt.points_redeemed <= sum(spendable.values())
    for take in receipt.lots_taken:
        assert 0 < take.points <= spendable[take.lot_id]
    after_discounts = (
        receipt.check_sum
        - receipt.discount_total
        - sum(
            p.amount
            for p in receipt.payments
            if p.source_kind is SourceKind.ACCOUNT
            and p.source_id
            in {a.account_id for a in customer.accounts if a.kind is AccountKind.ACHIEVEMENTS}
        )
    )
    share = program.program.redemption_share_max_basis_points
    assert receipt.paid_with_points * 10_000 <= after_discounts * share + 5_000
    balances = {(SourceKind.ACCOUNT, a.account_id): a.balance for a in customer.accounts}
    balances.update(
        {(SourceKind.CERTIFICATE, c.certificate_id): c.balance for c in customer.certificates}
    )
    kinds = {account.account_id: account.kind for account in customer.accounts}
    for payment in receipt.payments:
        if payment.source_kind is SourceKind.CERTIFICATE or (
            payment.source_kind is SourceKind.ACCOUNT
            and kinds[payment.source_id] is not AccountKind.ACHIEVEMENTS
        ):
            assert payment.debit <= balances[payment.source_kind, payment.source_id]


@settings(max_examples=100, deadline=None)
@given(check_lines(), programs(), customers(), st.data())
def test_asking_for_more_points_than_allowed_is_refused(
    lines: tuple[CheckLine, ...],
    program: CompiledProgram,
    customer: Customer,
    data: st.DataObject,
) -> None:
    most = calculate_for(lines, program, customer).points_redeemable_max
    points = data.draw(st.integers(most + 1, most + 100_000))
    try:
        calculate_for(lines, program, customer, Redemption(points=points))
    except FailedPrecondition as refusal:
        assert refusal.reason in {
            "INSUFFICIENT_POINTS",
            "REDEMPTION_ABOVE_CAP",
            "POINTS_REDEMPTION_NOT_ALLOWED",
            "CHECK_SUM_BELOW_MINIMUM",
        }
    else:
        raise AssertionError(f"{points} points redeemed where at most {most} are allowed")


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_restricted_accounts_never_pay_for_other_products(
    scenario: tuple[tuple[CheckLine, ...], CompiledProgram, Customer, Redemption],
) -> None:
    lines, program, customer, redemption = scenario
    receipt = calculate_for(lines, program, customer, redemption)
    accounts = {account.account_id: account for account in customer.accounts}
    coupons = {coupon.coupon_id: coupon for coupon in customer.coupons}
    restricted: list[tuple[Discount | Payment, tuple[str, ...]]] = [
        *(
            (p, accounts[p.source_id].product_codes)
            for p in receipt.payments
            if p.source_kind is SourceKind.ACCOUNT
        ),
        *(
            (d, coupons[d.source_id].product_codes)
            for d in receipt.discounts
            if d.source_kind is SourceKind.COUPON
        ),
    ]
    for effect, codes in restricted:
        if not codes:
            continue
        for receipt_line, amount in zip(receipt.lines, effect.line_amounts, strict=True):
            if amount:
                assert receipt_line.product_code in codes


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_calculation_is_deterministic_and_independent_of_line_order(
    scenario: tuple[tuple[CheckLine, ...], CompiledProgram, Customer, Redemption],
    shuffler: random.Random,
) -> None:
    lines, program, customer, redemption = scenario
    first = calculate_for(lines, program, customer, redemption)
    again = calculate_for(lines, program, customer, redemption)
    shuffled = list(lines)
    shuffler.shuffle(shuffled)
    reordered = calculate_for(tuple(shuffled), program, customer, redemption)
    fresh_program = compile_program(program.program)  # an empty memo gives the same answer
    recompiled = calculate_for(lines, fresh_program, customer, redemption)
    assert first == again == reordered == recompiled
    assert [line.position for line in first.lines] == sorted(line.position for line in lines)


@settings(max_examples=100, deadline=None)
@given(check_lines(), programs(), customers())
def test_rules_for_other_products_change_nothing(
    lines: tuple[CheckLine, ...], program: CompiledProgram, customer: Customer
) -> None:
    other_rules = tuple(
        Rule(
            1000 + number,
            f"other {number}",
            kind,
            scope,
            ValueKind.PERCENT,
            5000,
            Selector(product_codes=(f"OTHER-{number}",)),
        )
        for number, (kind, scope) in enumerate([(k, s) for k in RuleKind for s in RuleScope] * 5)
    )
    bigger = compile_program(replace(program.program, rules=program.program.rules + other_rules))
    plain = calculate_for(lines, program, customer)
    assert calculate_for(lines, bigger, customer)._replace(not_applied=()) == plain._replace(
        not_applied=()
    )


@settings(max_examples=100, deadline=None)
@given(check_lines(), programs())
def test_an_unidentified_customer_never_accrues_nor_pays_with_pockets(
    lines: tuple[CheckLine, ...], program: CompiledProgram
) -> None:
    receipt = calculate_for(lines, program, None)
    assert receipt.points_accrued == receipt.paid_with_points == receipt.paid_with_accounts == 0
    assert receipt.points_redeemable_max == 0
    assert_adds_up(receipt)
