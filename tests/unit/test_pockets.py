"""Spendable points: lots soonest-to-expire first; held points are in no lot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from purse.domain.pockets import permanent_lot_id, spendable_lots

now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
day = timedelta(days=1)


def test_lots_come_soonest_expiring_first_and_the_permanent_part_last() -> None:
    lots = [(7, 300, now + 5 * day), (8, 200, now + day)]
    spendable = spendable_lots(1_000, 0, lots, now)
    assert [(lot.lot_id, lot.points) for lot in spendable] == [
        (8, 200),
        (7, 300),
        (permanent_lot_id, 500),
    ]


def test_an_expired_lot_is_not_spendable_even_before_it_is_written_off() -> None:
    spendable = spendable_lots(1_000, 0, [(7, 400, now)], now)
    assert [(lot.lot_id, lot.points) for lot in spendable] == [(permanent_lot_id, 600)]


def test_held_points_come_off_the_never_expiring_part_since_holds_took_their_lots() -> None:
    lots = [(7, 300, now + 5 * day), (8, 200, now + day)]
    spendable = spendable_lots(1_000, 350, lots, now)
    assert [(lot.lot_id, lot.points) for lot in spendable] == [
        (8, 200),
        (7, 300),
        (permanent_lot_id, 150),
    ]


def test_lots_beyond_what_can_be_spent_give_way_soonest_expiring_first() -> None:
    # A hold stored before holds took their lots: the lots still count the held points.
    lots = [(7, 300, now + 5 * day), (8, 200, now + day)]
    spendable = spendable_lots(1_000, 900, lots, now)
    assert [(lot.lot_id, lot.points) for lot in spendable] == [(7, 100)]


lot_lists = st.lists(
    st.tuples(
        st.integers(1, 10**6),
        st.integers(0, 10**6),
        st.integers(-10, 10).map(lambda days: now + days * day),
    ),
    max_size=8,
    unique_by=lambda lot: lot[0],
)


@given(lot_lists, st.integers(0, 10**7), st.integers(0, 10**7))
def test_spendable_points_never_exceed_balance_minus_held_nor_go_negative(
    lots: list[tuple[int, int, datetime]], extra: int, held: int
) -> None:
    balance = sum(remaining for _, remaining, _ in lots) + extra
    held = min(held, balance)
    spendable = spendable_lots(balance, held, lots, now)
    assert all(lot.points > 0 for lot in spendable)
    assert sum(lot.points for lot in spendable) <= balance - held
    expiries = [lot.expires_at for lot in spendable]
    dated = [moment for moment in expiries if moment is not None]
    assert dated == sorted(dated)
    assert all(moment > now for moment in dated)
    assert None not in expiries[: len(dated)]
