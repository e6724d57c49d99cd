"""Properties of the pure ledger: settlement never overdraws, holds net out, and partial
refunds add up exactly to the sale."""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from purse.domain.checks import (
    AccountKind,
    AccountSpending,
    Check,
    CheckLine,
    Customer,
    CustomerAccount,
    PointsLot,
    Redemption,
    SourceKind,
)
from purse.domain.engine import calculate
from purse.domain.program import Program, Rule, RuleKind, RuleScope, ValueKind, compile_program
from purse.domain.refunds import plan_refund
from purse.domain.transactions import (
    Balance,
    Effects,
    LedgerKind,
    LockedState,
    PocketChange,
    PocketKey,
    effects_of_confirmation,
    effects_of_release,
    effects_of_sale,
    settle,
)

customers = st.integers(1, 3)
accounts = st.sampled_from([0, 7])
changes = st.builds(
    PocketChange,
    pocket=st.tuples(customers, accounts),
    kind=st.sampled_from(LedgerKind),
    amount=st.integers(-5_000, 5_000),
    held_amount=st.integers(-2_000, 2_000),
)
effect_lists = st.lists(
    st.builds(Effects, pockets=st.lists(changes, max_size=4).map(tuple)), max_size=12
)
states = st.dictionaries(
    st.tuples(customers, accounts),
    st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)).map(
        lambda pair: Balance(max(pair), min(pair))
    ),
)


@given(states, effect_lists)
def test_settlement_never_overdraws_and_a_refusal_changes_nothing(
    start: dict[PocketKey, Balance], operations: list[Effects]
) -> None:
    state = LockedState(pockets=deepcopy(start))
    for effects in operations:
        before = deepcopy(state.pockets)
        refusal = settle(state, effects)
        if refusal is not None:
            assert state.pockets == before
        for balance in state.pockets.values():
            assert balance.held >= 0
            assert balance.available >= 0


@given(states, effect_lists)
def test_what_settles_is_exactly_the_sum_of_the_accepted_changes(
    start: dict[PocketKey, Balance], operations: list[Effects]
) -> None:
    state = LockedState(pockets=deepcopy(start))
    expected = {key: [value.balance, value.held] for key, value in start.items()}
    for effects in operations:
        if settle(state, effects) is None:
            for change in effects.pockets:
                entry = expected.setdefault(change.pocket, [0, 0])
                entry[0] += change.amount
                entry[1] += change.held_amount
    assert {key: [value.balance, value.held] for key, value in state.pockets.items()} == {
        key: value for key, value in expected.items() if key in state.pockets
    }


moment = datetime(2026, 3, 2, 12, 0)
program = compile_program(
    Program(
        currency="UAH",
        rules=(Rule(1, "5%", RuleKind.ACCRUAL, RuleScope.LINE, ValueKind.PERCENT, 500),),
        points_redemption_limit_without_pin=None,
    )
)


@st.composite
def sales(draw: st.DrawFn) -> tuple[object, dict[int, int]]:
    count = draw(st.integers(1, 5))
    lines = []
    for position in range(1, count + 1):
        price = draw(st.integers(1, 50_000))
        quantity = draw(st.integers(1, 5)) * 1000
        lines.append(
            CheckLine(position, f"P{position % 2}", price, quantity, price * quantity // 1000)
        )
    customer = Customer(
        category_id=1,
        points_lots=(PointsLot(0, draw(st.integers(0, 200_000))),),
        accounts=(
            CustomerAccount(7, AccountKind.MONEY, draw(st.integers(0, 100_000)), ("P1",)),
            CustomerAccount(
                9,
                AccountKind.ACHIEVEMENTS,
                draw(st.integers(0, 5)),
                ("P0",),
                purchases_per_reward=draw(st.integers(1, 4)),
            ),
        ),
    )
    probe = calculate(
        Check("UAH", tuple(lines)), program, customer, moment=moment, point_of_sale_id=1
    )
    points = draw(st.integers(0, probe.points_redeemable_max))
    receipt = calculate(
        Check("UAH", tuple(lines)),
        program,
        customer,
        Redemption(points=points, accounts=(AccountSpending(7),)),
        moment=moment,
        point_of_sale_id=1,
    )
    return receipt, {line.position: line.quantity for line in lines}


@settings(max_examples=60, deadline=None)
@given(sales())
def test_holding_then_confirming_ends_where_completing_at_once_does(
    sale: tuple[object, dict[int, int]],
) -> None:
    receipt, _ = sale
    start: dict[PocketKey, Balance] = {
        (1, 0): Balance(1_000_000, 0),
        (1, 7): Balance(1_000_000, 0),
        (1, 9): Balance(1_000_000, 0),
    }
    at_once = LockedState(pockets=deepcopy(start))
    assert settle(at_once, effects_of_sale(receipt, 1, (), pending=False)) is None  # type: ignore[arg-type]
    held = LockedState(pockets=deepcopy(start))
    assert settle(held, effects_of_sale(receipt, 1, (), pending=True)) is None  # type: ignore[arg-type]
    assert all(value.balance == start[key].balance for key, value in held.pockets.items())
    assert settle(held, effects_of_confirmation(receipt, 1, ())) is None  # type: ignore[arg-type]
    assert held.pockets == at_once.pockets
    released = LockedState(pockets=deepcopy(start))
    settle(released, effects_of_sale(receipt, 1, (), pending=True))  # type: ignore[arg-type]
    assert settle(released, effects_of_release(receipt, 1, ())) is None  # type: ignore[arg-type]
    assert released.pockets == start


@settings(max_examples=60, deadline=None)
@given(sales(), st.data())
def test_partial_refunds_add_up_exactly_to_the_sale_and_never_more(
    sale: tuple[object, dict[int, int]], data: st.DataObject
) -> None:
    receipt, quantities = sale
    refunded: dict[int, int] = {}
    totals = {"money": 0, "returned": 0, "recovered": 0}
    accounts: dict[int, int] = {}
    purchases: dict[int, int] = {}
    while any(refunded.get(p, 0) < q for p, q in quantities.items()):
        position = data.draw(
            st.sampled_from([p for p, q in quantities.items() if refunded.get(p, 0) < q])
        )
        left = quantities[position] - refunded.get(position, 0)
        quantity = data.draw(st.integers(1, left))
        plan = plan_refund(receipt, quantities, refunded, [(position, quantity)])  # type: ignore[arg-type]
        refunded[position] = refunded.get(position, 0) + quantity
        totals["money"] += plan.refunded_minor_units
        totals["returned"] += plan.points_returned
        totals["recovered"] += plan.points_to_recover
        for account, amount in plan.accounts_returned.items():
            accounts[account] = accounts.get(account, 0) + amount
        for account, amount in plan.purchases_to_recover.items():
            purchases[account] = purchases.get(account, 0) + amount
    paid: dict[int, int] = {}
    for payment in receipt.payments:  # type: ignore[attr-defined]
        if payment.source_kind is SourceKind.ACCOUNT:
            paid[payment.source_id] = paid.get(payment.source_id, 0) + payment.debit
    assert {k: v for k, v in accounts.items() if v} == {k: v for k, v in paid.items() if v}
    counted = {p.account_id: p.purchases for p in receipt.achievements}  # type: ignore[attr-defined]
    assert {k: v for k, v in purchases.items() if v} == {k: v for k, v in counted.items() if v}
    assert totals == {
        "money": receipt.to_pay,  # type: ignore[attr-defined]
        "returned": receipt.points_redeemed,  # type: ignore[attr-defined]
        "recovered": receipt.points_accrued,  # type: ignore[attr-defined]
    }
