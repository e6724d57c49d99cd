"""Settling one batch of operations against the rows it locked, and what the batch then
writes — pure.

The batch writer (`purse.store.postgres.batches`) claims and locks, in one statement,
every row a batch touches. What it read goes into a `Settlement`, which decides the
operations one by one, in order (`purse.domain.transactions.settle`), and reports after
each the customer's balances and membership statistics as they stand right after it;
it also adds up the applied sales by customer and point of sale, for the statistics the
store keeps per point of sale.
The operations that applied then go into `Writes`, which adds up what the write
statement changes: pocket deltas and ledger entries, points taken from and given back to
lots (and new lots of special points), certificate deltas, coupon statuses and coupons
issued. This module knows no SQL: the store turns `Writes`' columns into the statement's
arrays.

Contract:

* Locked rows come as the store read them, any sequence indexable by position; each
  parameter of `Settlement` names its columns.
* A refused operation changes nothing; its neighbours are unaffected.
* Statistics saturate at `statistics_sum_max` rather than overflow a bigint; an offline
  upload of an older sale never moves the last visit back; an operation of a customer
  without a membership counts nothing (pockets need one).
* Lots are taken soonest-to-expire first (ties by lot id), from the live lots the batch
  locked and the lots its own operations create, each new lot inserted with what is
  left of it.
* This module is compiled with mypyc (setup.py) and has the same results as plain Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Final

from purse.domain.records import Record
from purse.domain.transactions import (
    Balance,
    CouponGrant,
    Effects,
    LockedState,
    PocketKey,
    Refusal,
    settle,
    take_from_lots,
)

# Statistics saturate rather than overflow a bigint (checks are bounded far below it).
statistics_sum_max: Final = 2**63 - 1


class Statistics(Record):
    """Membership statistics deltas, applied when the operation is; `visit_time` is when
    the sale happened (an offline upload's sale time), None: when it is written."""

    __slots__ = ("confirmed", "customer_id", "sales", "sales_sum", "visit_time")
    _fields: ClassVar[tuple[str, ...]] = (
        "customer_id", "sales", "sales_sum", "confirmed", "visit_time",
    )  # fmt: skip

    def __init__(
        self,
        customer_id: int,
        sales: int = 0,
        sales_sum: int = 0,
        confirmed: bool = False,
        visit_time: datetime | None = None,
    ) -> None:
        self.customer_id: Final = customer_id
        self.sales: Final = sales
        self.sales_sum: Final = sales_sum
        self.confirmed: Final = confirmed
        self.visit_time: Final = visit_time


class MembershipTotals(Record):
    """A membership's statistics as they stand right after one operation."""

    __slots__ = ("last_visit", "participation_confirmed", "sales_count", "sales_sum")
    _fields: ClassVar[tuple[str, ...]] = (
        "sales_count", "sales_sum", "last_visit", "participation_confirmed",
    )  # fmt: skip

    def __init__(
        self,
        sales_count: int,
        sales_sum: int,
        last_visit: datetime | None,
        participation_confirmed: bool,
    ) -> None:
        self.sales_count: Final = sales_count
        self.sales_sum: Final = sales_sum
        self.last_visit: Final = last_visit
        self.participation_confirmed: Final = participation_confirmed


class PointOfSaleVisits:
    """A batch's applied sales of one customer at one point of sale, added up."""

    __slots__ = ("first_visit", "last_visit", "sales", "sales_sum")

    def __init__(
        self, sales: int, sales_sum: int, first_visit: datetime, last_visit: datetime
    ) -> None:
        self.sales = sales
        self.sales_sum = sales_sum
        self.first_visit = first_visit
        self.last_visit = last_visit


class Settled:
    """What settlement made of one operation: `refusal` None when it applied; the
    customer's locked pockets (balances as settled so far, and their ids) and statistics
    right after it."""

    __slots__ = ("balances", "pocket_ids", "refusal", "totals")

    def __init__(
        self,
        refusal: Refusal | None,
        balances: dict[PocketKey, Balance],
        pocket_ids: dict[PocketKey, int],
        totals: MembershipTotals | None,
    ) -> None:
        self.refusal = refusal
        self.balances = balances
        self.pocket_ids = pocket_ids
        self.totals = totals


class Settlement:
    """The rows a batch locked, settled operation by operation in the order given.

    `pockets`: (customer id, account type id, pocket id, balance, held);
    `certificates`: (certificate id, balance, held); `coupons`: (coupon id, status);
    `lots`: (customer id, lot id, remaining, expires at, live);
    `memberships`: (customer id, sales count, sales sum, last visit, participation
    confirmed); `now`: the database's clock, the visit time of a sale that names none.
    """

    __slots__ = (
        "_by_point_of_sale", "_earliest_visits", "_keys_by_customer", "_now", "_totals",
        "changed", "expiries", "lots", "pocket_ids", "state",
    )  # fmt: skip

    def __init__(
        self,
        pockets: Sequence[Any],
        certificates: Sequence[Any],
        coupons: Sequence[Any],
        lots: Sequence[Any],
        memberships: Sequence[Any],
        now: datetime,
    ) -> None:
        self.state = LockedState()
        # Every locked pocket's id by key, and the keys by customer.
        self.pocket_ids: dict[PocketKey, int] = {}
        self._keys_by_customer: dict[int, list[PocketKey]] = {}
        for row in pockets:
            customer_id: int = row[0]
            key: PocketKey = (customer_id, row[1])
            self.state.pockets[key] = Balance(row[3], row[4])
            self.pocket_ids[key] = row[2]
            keys = self._keys_by_customer.get(customer_id)
            if keys is None:
                self._keys_by_customer[customer_id] = [key]
            else:
                keys.append(key)
        for row in certificates:
            self.state.certificates[row[0]] = Balance(row[1], row[2])
        for row in coupons:
            self.state.coupons[row[0]] = row[1]
        self.lots, self.expiries = _live_lots(lots)
        self._now = now
        self._totals: dict[int, MembershipTotals] = {}
        for row in memberships:
            self._totals[row[0]] = MembershipTotals(row[1], row[2], row[3], row[4])
        # Customers whose statistics an applied operation changed.
        self.changed: set[int] = set()
        # The earliest visit of the batch's applied sales, by customer: the store keeps
        # the earlier of it and the first visit it holds.
        self._earliest_visits: dict[int, datetime] = {}
        # The applied sales by (customer id, point of sale id): the store adds them to
        # the statistics it keeps per point of sale.
        self._by_point_of_sale: dict[tuple[int, int], PointOfSaleVisits] = {}

    def settle(
        self,
        effects: Effects,
        statistics: Statistics | None,
        customer_id: int | None,
        decide: bool = True,
        point_of_sale_id: int = 0,
    ) -> Settled:
        """Apply `effects` unless settlement refuses them, and `statistics` with them (the
        sales counted at `point_of_sale_id` too, unless it is 0: not known); without
        `decide` (a sale stored as rejected already) only the statistics."""
        refusal = settle(self.state, effects) if decide else None
        if refusal is None and statistics is not None:
            self._count(statistics, point_of_sale_id)
        return self.after(customer_id, refusal)

    def after(self, customer_id: int | None, refusal: Refusal | None = None) -> Settled:
        """The customer's pockets and statistics as they stand now."""
        if customer_id is None:
            return Settled(refusal, {}, {}, None)
        balances: dict[PocketKey, Balance] = {}
        pocket_ids: dict[PocketKey, int] = {}
        # Balances are immutable: settlement replaces them, so they are shared, not copied.
        pockets = self.state.pockets
        for key in self._keys_by_customer.get(customer_id, []):
            balances[key] = pockets[key]
            pocket_ids[key] = self.pocket_ids[key]
        return Settled(refusal, balances, pocket_ids, self._totals.get(customer_id))

    def _count(self, statistics: Statistics, point_of_sale_id: int) -> None:
        customer_id = statistics.customer_id
        before = self._totals.get(customer_id)
        if before is None:  # no membership: nothing to count (pockets need one)
            return
        last_visit = before.last_visit
        if statistics.sales:
            visit = statistics.visit_time or self._now
            last_visit = visit if last_visit is None else max(last_visit, visit)
            earliest = self._earliest_visits.get(customer_id)
            if earliest is None or visit < earliest:
                self._earliest_visits[customer_id] = visit
            if point_of_sale_id:
                self._count_at(customer_id, point_of_sale_id, statistics, visit)
        self._totals[customer_id] = MembershipTotals(
            before.sales_count + statistics.sales,
            min(before.sales_sum + statistics.sales_sum, statistics_sum_max),
            last_visit,
            before.participation_confirmed or statistics.confirmed,
        )
        self.changed.add(customer_id)

    def _count_at(
        self, customer_id: int, point_of_sale_id: int, statistics: Statistics, visit: datetime
    ) -> None:
        key = (customer_id, point_of_sale_id)
        visits = self._by_point_of_sale.get(key)
        if visits is None:
            self._by_point_of_sale[key] = PointOfSaleVisits(
                statistics.sales, min(statistics.sales_sum, statistics_sum_max), visit, visit
            )
            return
        visits.sales += statistics.sales
        visits.sales_sum = min(visits.sales_sum + statistics.sales_sum, statistics_sum_max)
        visits.first_visit = min(visits.first_visit, visit)
        visits.last_visit = max(visits.last_visit, visit)

    def point_of_sale_columns(
        self,
    ) -> tuple[list[int], list[int], list[int], list[int], list[datetime], list[datetime]]:
        """The applied sales added up by customer and point of sale, in that order:
        (customer ids, point of sale ids, sales, sales sums, earliest and latest visits)."""
        keys = sorted(self._by_point_of_sale)
        visits = [self._by_point_of_sale[key] for key in keys]
        return (
            [key[0] for key in keys],
            [key[1] for key in keys],
            [each.sales for each in visits],
            [each.sales_sum for each in visits],
            [each.first_visit for each in visits],
            [each.last_visit for each in visits],
        )

    def statistics_columns(
        self,
    ) -> tuple[
        list[int], list[int], list[int], list[datetime | None], list[bool], list[datetime | None]
    ]:
        """The changed memberships' statistics by customer id: (customer ids, sales counts,
        sales sums, last visits, participation confirmed, earliest visits of this batch's
        sales (None without a sale))."""
        customer_ids = sorted(self.changed)
        totals = [self._totals[customer_id] for customer_id in customer_ids]
        earliest = self._earliest_visits
        return (
            customer_ids,
            [each.sales_count for each in totals],
            [each.sales_sum for each in totals],
            [each.last_visit for each in totals],
            [each.participation_confirmed for each in totals],
            [earliest.get(customer_id) for customer_id in customer_ids],
        )


def _live_lots(
    rows: Sequence[Any],
) -> tuple[dict[int, list[tuple[int, int]]], dict[int, datetime]]:
    """The live lots by customer, soonest-to-expire first, to take from; and every locked
    lot's expiry. Lots locked only to be given points back (a released hold's, perhaps
    expired) are not among the live ones."""
    ordered = sorted(rows, key=_expiry_order)
    lots: dict[int, list[tuple[int, int]]] = {}
    expiries: dict[int, datetime] = {}
    for row in ordered:
        customer_id: int = row[0]
        lot_id: int = row[1]
        remaining: int = row[2]
        expiries[lot_id] = row[3]
        if row[4] and remaining > 0:
            found = lots.get(customer_id)
            if found is None:
                lots[customer_id] = [(lot_id, remaining)]
            else:
                found.append((lot_id, remaining))
    return lots, expiries


def _expiry_order(row: Any) -> tuple[datetime, int]:
    return row[3], row[1]


class Writes:
    """What the write statement changes for the operations that applied, gathered in the
    order they settled.

    `lot_ids` are ids drawn for the points lots administrators' operations may create.
    """

    __slots__ = (
        "_expiries", "_lot_ids", "_lots", "_pocket_ids", "certificate_deltas", "coupon_rows",
        "coupons_issued", "ledger_amounts", "ledger_expiries", "ledger_held_amounts",
        "ledger_kinds", "ledger_pocket_ids", "ledger_transaction_ids", "lot_takes",
        "lots_taken", "new_lots", "pocket_deltas",
    )  # fmt: skip

    def __init__(self, settlement: Settlement, lot_ids: Sequence[int] = ()) -> None:
        self._pocket_ids = settlement.pocket_ids
        self._lots = settlement.lots
        self._expiries = settlement.expiries
        self._lot_ids = list(lot_ids)
        self._lot_ids.reverse()  # taken from the end, first id first
        # pocket id -> [amount, held]
        self.pocket_deltas: dict[int, list[int]] = {}
        # The ledger entries, as columns.
        self.ledger_pocket_ids: list[int] = []
        self.ledger_transaction_ids: list[int] = []
        self.ledger_kinds: list[str] = []
        self.ledger_amounts: list[int] = []
        self.ledger_held_amounts: list[int] = []
        self.ledger_expiries: list[datetime | None] = []
        # lot id -> points taken (less points given back)
        self.lot_takes: dict[int, int] = {}
        # lot id -> (pocket id, points, expires at) of the lots created here
        self.new_lots: dict[int, tuple[int, int, datetime]] = {}
        self.coupons_issued: list[CouponGrant] = []
        # certificate id -> [amount, held]
        self.certificate_deltas: dict[int, list[int]] = {}
        # (coupon id, status, transaction id)
        self.coupon_rows: list[tuple[int, str, int]] = []
        # (transaction id, {lot id as text: points}) of new sales that took from lots
        self.lots_taken: list[tuple[int, dict[str, int]]] = []

    def add(
        self,
        effects: Effects,
        transaction_id: int,
        customer_id: int | None,
        new_sale: bool = False,
    ) -> None:
        """Add what an applied operation changes."""
        for change in effects.pockets:
            pocket_id = self._pocket_ids[change.pocket]
            delta = self.pocket_deltas.get(pocket_id)
            if delta is None:
                self.pocket_deltas[pocket_id] = [change.amount, change.held_amount]
            else:
                delta[0] += change.amount
                delta[1] += change.held_amount
            self.ledger_pocket_ids.append(pocket_id)
            self.ledger_transaction_ids.append(transaction_id)
            # The member's own value: `.value` is a property run as Python, several times
            # slower, and this runs for every ledger entry.
            self.ledger_kinds.append(change.kind._value_)
            self.ledger_amounts.append(change.amount)
            self.ledger_held_amounts.append(change.held_amount)
            self.ledger_expiries.append(change.expires_at)
            if change.expires_at is not None and customer_id is not None:
                self._new_lot(customer_id, pocket_id, change.amount, change.expires_at)
        for certificate in effects.certificates:
            certificate_delta = self.certificate_deltas.get(certificate.certificate_id)
            if certificate_delta is None:
                self.certificate_deltas[certificate.certificate_id] = [
                    certificate.amount,
                    certificate.held_amount,
                ]
            else:
                certificate_delta[0] += certificate.amount
                certificate_delta[1] += certificate.held_amount
        for coupon in effects.coupons:
            self.coupon_rows.append((coupon.coupon_id, coupon.status, transaction_id))
        self.coupons_issued.extend(effects.coupons_issued)
        if customer_id is None:
            return
        taken = self._take_lots(customer_id, effects.points_spent + effects.points_reserved)
        # A new sale remembers which lots it took from (a hold, even none: it is not from
        # before holds took lots); releasing or refunding gives the points back there.
        if new_sale and (taken or effects.points_reserved):
            self.lots_taken.append((transaction_id, {str(lot): n for lot, n in taken}))
        for lot_id, amount in effects.lots_returned:
            self._return_to_lot(customer_id, lot_id, amount)

    def _new_lot(self, customer_id: int, pocket_id: int, points: int, expires_at: datetime) -> None:
        """A lot of special points, live at once: what the batch takes from it later is
        left out of what it is inserted with."""
        lot_id = self._lot_ids.pop()
        self.new_lots[lot_id] = (pocket_id, points, expires_at)
        self._expiries[lot_id] = expires_at
        lots = [*self._lots.get(customer_id, []), (lot_id, points)]
        lots.sort(key=self._lot_order)
        self._lots[customer_id] = lots

    def _lot_order(self, lot: tuple[int, int]) -> tuple[datetime, int]:
        return self._expiries[lot[0]], lot[0]

    def _take_lots(self, customer_id: int, points: int) -> list[tuple[int, int]]:
        if not points:
            return []
        lots = self._lots.get(customer_id)
        if lots is None:
            return []
        taken = take_from_lots(lots, points)
        for lot_id, amount in taken:
            self.lot_takes[lot_id] = self.lot_takes.get(lot_id, 0) + amount
        remaining = dict(taken)
        left_over: list[tuple[int, int]] = []
        for lot_id, left in lots:
            after = left - remaining.get(lot_id, 0)
            if after > 0:
                left_over.append((lot_id, after))
        self._lots[customer_id] = left_over
        return taken

    def _return_to_lot(self, customer_id: int, lot_id: int, points: int) -> None:
        self.lot_takes[lot_id] = self.lot_takes.get(lot_id, 0) - points
        lots = self._lots.get(customer_id)
        if lots is not None:  # a live lot: what comes back can be taken again in this batch
            self._lots[customer_id] = [
                (each, left + points if each == lot_id else left) for each, left in lots
            ]

    def pocket_columns(self) -> tuple[list[int], list[int], list[int]]:
        """(pocket ids, amounts, held amounts), by pocket id."""
        return _delta_columns(self.pocket_deltas)

    def lot_columns(self) -> tuple[list[int], list[int]]:
        """(lot ids, points taken) of the locked lots, by lot id (new lots are inserted
        with what is left of them: `new_lot_columns`)."""
        ids = sorted(lot_id for lot_id in self.lot_takes if lot_id not in self.new_lots)
        return ids, [self.lot_takes[lot_id] for lot_id in ids]

    def certificate_columns(self) -> tuple[list[int], list[int], list[int]]:
        """(certificate ids, amounts, held amounts), by certificate id."""
        return _delta_columns(self.certificate_deltas)

    def coupon_columns(self) -> tuple[list[int], list[str], list[int]]:
        """(coupon ids, statuses, transaction ids), in order."""
        rows = sorted(self.coupon_rows)
        return [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]

    def new_lot_columns(self) -> tuple[list[int], list[int], list[int], list[datetime]]:
        """(lot ids, pocket ids, points left, expires at) of the lots created here."""
        ids = sorted(self.new_lots)
        return (
            ids,
            [self.new_lots[lot_id][0] for lot_id in ids],
            [self.new_lots[lot_id][1] - self.lot_takes.get(lot_id, 0) for lot_id in ids],
            [self.new_lots[lot_id][2] for lot_id in ids],
        )


def _delta_columns(deltas: dict[int, list[int]]) -> tuple[list[int], list[int], list[int]]:
    """(ids, amounts, held amounts) of [amount, held] deltas by id, by id."""
    ids = sorted(deltas)
    return ids, [deltas[each][0] for each in ids], [deltas[each][1] for each in ids]
