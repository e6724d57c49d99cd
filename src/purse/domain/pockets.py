"""Pockets and holds: what a customer can spend now.

A points pocket's balance includes every lot of special (expiring) points; the part of
the balance in no lot never expires. A lot whose `expires_at` has come is not spendable
(the sweeper writes it off later). Held amounts belong to pending redemptions, which take
points soonest-to-expire first, so holds are subtracted from the lots in that order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from purse.domain.checks import PointsLot

# The id of the never-expiring part of the points, which is not a stored lot.
permanent_lot_id = 0


def spendable_lots(
    balance: int,
    held: int,
    lots: Iterable[tuple[int, int, datetime]],
    moment: datetime,
) -> tuple[PointsLot, ...]:
    """The spendable points as lots, soonest-to-expire first, never-expiring last.

    `lots` are (lot id, remaining, expires at); the result sums to at most balance − held.
    """
    stored = list(lots)
    live = sorted((lot for lot in stored if lot[2] > moment), key=lambda lot: (lot[2], lot[0]))
    permanent = max(balance - sum(remaining for _, remaining, _ in stored), 0)
    entries: list[tuple[int, int, datetime | None]] = [*live, (permanent_lot_id, permanent, None)]
    to_hold = held
    spendable = []
    for lot_id, amount, expires_at in entries:
        taken = min(amount, to_hold)
        to_hold -= taken
        if amount > taken:
            spendable.append(PointsLot(lot_id, amount - taken, expires_at))
    return tuple(spendable)
