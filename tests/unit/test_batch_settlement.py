"""A batch settled against the rows it locked (`purse.domain.settlement`): each operation
sees what the ones before it left, and what the batch writes adds up to what applied."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from purse.domain.settlement import (
    MembershipTotals,
    Settlement,
    Statistics,
    Writes,
    statistics_sum_max,
)
from purse.domain.transactions import (
    Balance,
    Effects,
    LedgerKind,
    PocketChange,
    Refusal,
)

now = datetime(2026, 3, 2, 12, 0)
customer_id = 5
points = (customer_id, 0)
money = (customer_id, 7)


def settlement_of(
    pockets: list[Any] | None = None,
    lots: list[Any] | None = None,
    memberships: list[Any] | None = None,
) -> Settlement:
    return Settlement(
        pockets if pockets is not None else [(customer_id, 0, 50, 1_000, 0)],
        [],
        [],
        lots or [],
        memberships or [],
        now,
    )


def test_each_operation_reports_the_balances_right_after_it_and_a_refusal_changes_nothing() -> None:
    settlement = settlement_of([(customer_id, 0, 50, 1_000, 0), (customer_id, 7, 51, 300, 0)])
    first = settlement.settle(
        Effects(pockets=(PocketChange(points, LedgerKind.REDEEM, -600),)), None, customer_id
    )
    second = settlement.settle(
        Effects(pockets=(PocketChange(points, LedgerKind.REDEEM, -600),)), None, customer_id
    )
    third = settlement.settle(
        Effects(pockets=(PocketChange(money, LedgerKind.ACCRUE, 25),)), None, customer_id
    )
    assert first.refusal is None and first.balances == {
        points: Balance(400, 0),
        money: Balance(300, 0),
    }
    assert second.refusal is Refusal.INSUFFICIENT_POINTS
    assert second.balances == first.balances
    assert third.balances == {points: Balance(400, 0), money: Balance(325, 0)}
    assert third.pocket_ids == {points: 50, money: 51}


def test_statistics_count_applied_operations_saturate_and_never_move_the_last_visit_back() -> None:
    earlier = now - timedelta(days=3)
    settlement = settlement_of(memberships=[(customer_id, 2, statistics_sum_max - 10, now, False)])
    refused = settlement.settle(
        Effects(pockets=(PocketChange(points, LedgerKind.REDEEM, -5_000),)),
        Statistics(customer_id, 1, 700),
        customer_id,
    )
    offline = settlement.settle(
        Effects(), Statistics(customer_id, 1, 700, visit_time=earlier), customer_id
    )
    confirmed = settlement.settle(Effects(), Statistics(customer_id, confirmed=True), customer_id)
    assert refused.totals == MembershipTotals(2, statistics_sum_max - 10, now, False)
    assert offline.totals == MembershipTotals(3, statistics_sum_max, now, False)
    assert confirmed.totals == MembershipTotals(3, statistics_sum_max, now, True)
    assert settlement.statistics_columns() == (
        [customer_id],
        [3],
        [statistics_sum_max],
        [now],
        [True],
        [earlier],
    )


def test_a_batch_writes_its_earliest_applied_sale_as_the_first_visit_none_without_one() -> None:
    other = customer_id + 1
    earlier, later = now - timedelta(days=2), now - timedelta(days=1)
    settlement = settlement_of(
        memberships=[(customer_id, 0, 0, None, False), (other, 4, 900, now, False)]
    )
    settlement.settle(Effects(), Statistics(customer_id, 1, 100, visit_time=later), customer_id)
    settlement.settle(Effects(), Statistics(customer_id, 1, 100, visit_time=earlier), customer_id)
    settlement.settle(Effects(), Statistics(other, confirmed=True), other)
    assert settlement.statistics_columns()[5] == [earlier, None]


def test_a_customer_without_a_membership_counts_nothing() -> None:
    settlement = settlement_of()
    settled = settlement.settle(Effects(), Statistics(customer_id, 1, 700), customer_id)
    assert settled.totals is None and settlement.statistics_columns() == ([], [], [], [], [], [])


def test_points_come_from_the_soonest_expiring_lots_and_a_new_lot_keeps_what_is_left() -> None:
    soon, later = now + timedelta(days=1), now + timedelta(days=9)
    settlement = settlement_of(
        lots=[
            (customer_id, 71, 100, later, True),
            (customer_id, 70, 100, soon, True),
            (customer_id, 72, 100, now - timedelta(days=1), False),  # expired: only returned to
        ]
    )
    writes = Writes(settlement, lot_ids=[90])
    credit = Effects(
        pockets=(PocketChange(points, LedgerKind.ACCRUE, 50, expires_at=now + timedelta(days=5)),)
    )
    spend = Effects(pockets=(PocketChange(points, LedgerKind.REDEEM, -180),), points_spent=180)
    released = Effects(lots_returned=((72, 30),))
    for transaction_id, effects in enumerate((credit, spend, released), 1):
        assert settlement.settle(effects, None, customer_id).refusal is None
        writes.add(effects, transaction_id, customer_id, new_sale=transaction_id == 2)
    assert writes.lots_taken == [(2, {"70": 100, "90": 50, "71": 30})]
    assert writes.lot_columns() == ([70, 71, 72], [100, 30, -30])
    assert writes.new_lot_columns() == ([90], [50], [0], [now + timedelta(days=5)])
    assert writes.pocket_columns() == ([50], [-130], [0])


changes = st.builds(
    PocketChange,
    pocket=st.tuples(st.just(customer_id), st.sampled_from([0, 7])),
    kind=st.sampled_from(LedgerKind),
    amount=st.integers(-500, 500),
    held_amount=st.integers(-200, 200),
)


@given(st.lists(st.lists(changes, max_size=3).map(tuple), max_size=10))
def test_what_the_batch_writes_is_what_settled(operations: list[tuple[PocketChange, ...]]) -> None:
    settlement = settlement_of([(customer_id, 0, 50, 1_000, 200), (customer_id, 7, 51, 300, 0)])
    writes = Writes(settlement)
    for transaction_id, pockets in enumerate(operations, 1):
        effects = Effects(pockets=pockets)
        if settlement.settle(effects, None, customer_id).refusal is None:
            writes.add(effects, transaction_id, customer_id)
    ids, amounts, helds = writes.pocket_columns()
    after = settlement.after(customer_id).balances
    start = {50: (1_000, 200), 51: (300, 0)}
    for key, pocket_id in ((points, 50), (money, 51)):
        entries = [i for i, each in enumerate(writes.ledger_pocket_ids) if each == pocket_id]
        amount = sum(writes.ledger_amounts[index] for index in entries)
        held = sum(writes.ledger_held_amounts[index] for index in entries)
        if pocket_id in ids:
            assert (amounts[ids.index(pocket_id)], helds[ids.index(pocket_id)]) == (amount, held)
        assert after[key] == Balance(start[pocket_id][0] + amount, start[pocket_id][1] + held)


def test_applied_sales_add_up_by_customer_and_point_of_sale_refused_and_unplaced_ones_not() -> None:
    other = customer_id + 1
    earlier, later = now - timedelta(days=2), now - timedelta(days=1)
    settlement = settlement_of(
        memberships=[(customer_id, 0, 0, None, False), (other, 0, 0, None, False)]
    )

    def sold(who: int, total: int, shop: int, at: datetime | None = None) -> None:
        settlement.settle(Effects(), Statistics(who, 1, total, visit_time=at), who, True, shop)

    sold(customer_id, 100, 3, later)
    sold(customer_id, 250, 3, earlier)
    sold(customer_id, 40, 4)  # at the batch's now
    sold(other, statistics_sum_max, 3)
    sold(other, 1, 3)
    sold(other, 700, 0)  # no point of sale known: the membership counts it alone
    settlement.settle(  # refused: counted nowhere
        Effects(pockets=(PocketChange(points, LedgerKind.REDEEM, -5_000),)),
        Statistics(customer_id, 1, 999),
        customer_id,
        True,
        3,
    )
    sold(customer_id + 9, 500, 3)  # no membership: counted nowhere

    assert settlement.point_of_sale_columns() == (
        [customer_id, customer_id, other],
        [3, 4, 3],
        [2, 1, 2],
        [350, 40, statistics_sum_max],
        [earlier, now, now],
        [later, now, now],
    )
    assert settlement.statistics_columns()[1] == [3, 3]
