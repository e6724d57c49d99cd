"""Pockets and holds: what a customer can spend now.

A points pocket's balance includes every lot of special (expiring) points; the part of
the balance in no lot never expires. A lot whose `expires_at` has come is not spendable
(the sweeper writes it off later). A pending redemption takes the points it holds out of
their lots at once (see `purse.domain.transactions`), so held points are in no lot: they
come off the never-expiring part. Should the lots still add up to more than balance −
held (a hold stored before holds took their lots), the excess comes off the lots
soonest-to-expire first, as those holds would have taken it.
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
    unheld = balance - sum(remaining for _, remaining, _ in stored) - held
    permanent = max(unheld, 0)
    # Only when lots hold more than can be spent (see the module's docstring).
    excess = max(sum(remaining for _, remaining, _ in live) + permanent - (balance - held), 0)
    spendable = []
    for lot_id, amount, expires_at in live:
        taken = min(amount, excess)
        excess -= taken
        if amount > taken:
            spendable.append(PointsLot(lot_id, amount - taken, expires_at))
    if permanent:
        spendable.append(PointsLot(permanent_lot_id, permanent, None))
    return tuple(spendable)
