"""Refunds in PostgreSQL: one database transaction per refund.

Refunds are rare next to sales, so they do not go through the batch writer; each locks
its sale's row first, which serialises refunds of one sale (several partial refunds can
never add up to more than the sale) and orders them after any batch touching it. The
refund number is the idempotency key: a retry finds the stored refund, and it looks the
number up again under the sale's lock, so that retries racing the first call wait for it
and answer with what it stored (never "already refunded"). The refund leaves the sale
PARTIALLY_REFUNDED or, once every line is refunded whole, REFUNDED (a cancel: CANCELLED),
so that the status can be read and filtered on. Returned points
and account units are credited before what the sale earned (points, achievements
purchases) is taken back, and each take-back stops at what is available: the rest is
reported as not recovered. Returned points go back to the points lots the sale took
them from, so special points stay special (and expire when their lot does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from purse.domain.customers import POINTS_ACCOUNT_TYPE_ID
from purse.domain.refunds import RefundPlan
from purse.domain.transactions import LedgerKind, StoredReceipt, TransactionStatus
from purse.store.postgres.conflicts import retried_on_conflict
from purse.store.postgres.receipts import stored_receipt

# (the sale's status as locked, its stored receipt (None: not a sale), quantities
# refunded before) -> the plan; the service's planner decides, and refuses what may not
# be refunded.
Planner = Callable[[TransactionStatus, StoredReceipt | None, dict[int, int]], RefundPlan]
refund_retries_on_deadlock_max = 5


@dataclass(frozen=True, slots=True)
class StoredRefund:
    refund_id: int
    request_digest: bytes
    result: dict[str, Any]


class RefundStore:
    """Applies refunds of one business's sales."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def stored(
        self, business_id: int, terminal_id: int, refund_number: str
    ) -> StoredRefund | None:
        async with self._pool.acquire() as connection:
            return await _stored(connection, business_id, terminal_id, refund_number)

    @retried_on_conflict(refund_retries_on_deadlock_max)
    async def refund(
        self,
        business_id: int,
        transaction_id: int,
        terminal_id: int,
        refund_number: str,
        request_digest: bytes,
        planner: Planner,
        cancel: bool,
    ) -> StoredRefund | None:
        """Plan against the locked sale and its earlier refunds, apply, store; with `cancel`
        the sale becomes CANCELLED too; None when there is no such sale. A deadlock is
        retried (`conflicts`). The store decides nothing: the planner refuses."""
        async with self._pool.acquire() as connection, connection.transaction():
            sale = await connection.fetchrow(
                "SELECT status, customer_id, receipt, receipt_document, lot_reservations"
                "  FROM transactions"
                " WHERE business_id = $1 AND transaction_id = $2 FOR UPDATE",
                business_id,
                transaction_id,
            )
            if sale is None:
                return None
            # A retry that waited for the sale's lock answers with what the first stored.
            stored = await _stored(connection, business_id, terminal_id, refund_number)
            if stored is not None:
                return stored
            refunded, lots_returned = await _refunded(connection, business_id, transaction_id)
            plan = planner(TransactionStatus(sale["status"]), stored_receipt(sale), refunded)
            lots = _lots_left(sale["lot_reservations"], lots_returned)
            result = await _apply(
                connection, business_id, transaction_id, sale["customer_id"], plan, lots
            )
            refund_id = await connection.fetchval(
                "INSERT INTO refunds (business_id, transaction_id, terminal_id, refund_number,"
                "                     request_digest, result)"
                " VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (business_id, terminal_id, refund_number) DO NOTHING"
                " RETURNING refund_id",
                business_id, transaction_id, terminal_id, refund_number, request_digest, result,
            )  # fmt: skip
            if refund_id is None:
                # The same number, stored meanwhile for another sale: undo ours, read that one.
                raise RefundRaced
            await connection.execute(
                "UPDATE transactions SET status = $3,"
                "       finished_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE finished_at END"
                " WHERE business_id = $1 AND transaction_id = $2",
                business_id,
                transaction_id,
                _status_after(plan, cancel).value,
            )
            return StoredRefund(refund_id, request_digest, result)


def _status_after(plan: RefundPlan, cancel: bool) -> TransactionStatus:
    if cancel:
        return TransactionStatus.CANCELLED
    if plan.whole_sale_refunded:
        return TransactionStatus.REFUNDED
    return TransactionStatus.PARTIALLY_REFUNDED


async def _stored(
    connection: Any, business_id: int, terminal_id: int, refund_number: str
) -> StoredRefund | None:
    row = await connection.fetchrow(
        "SELECT refund_id, request_digest, result FROM refunds"
        " WHERE business_id = $1 AND terminal_id = $2 AND refund_number = $3",
        business_id,
        terminal_id,
        refund_number,
    )
    return None if row is None else StoredRefund(row[0], bytes(row[1]), row[2])


class RefundRaced(Exception):
    """The refund number was stored by a concurrent call; read that one."""


async def _refunded(
    connection: Any, business_id: int, transaction_id: int
) -> tuple[dict[int, int], dict[int, int]]:
    """What earlier refunds of the sale took: (position -> quantity, lot id -> points)."""
    rows = await connection.fetch(
        "SELECT result FROM refunds WHERE business_id = $1 AND transaction_id = $2",
        business_id,
        transaction_id,
    )
    refunded: dict[int, int] = {}
    lots: dict[int, int] = {}
    for row in rows:
        for position, quantity in row["result"]["lines"].items():
            refunded[int(position)] = refunded.get(int(position), 0) + quantity
        for lot_id, points in row["result"].get("lots_returned", {}).items():
            lots[int(lot_id)] = lots.get(int(lot_id), 0) + points
    return refunded, lots


def _lots_left(taken: dict[str, int] | None, returned: dict[int, int]) -> dict[int, int]:
    """lot id -> points the sale took from it that no refund has given back yet."""
    left = {
        int(lot_id): points - returned.get(int(lot_id), 0)
        for lot_id, points in (taken or {}).items()
    }
    return {lot_id: points for lot_id, points in left.items() if points > 0}


async def _return_to_lots(
    connection: Any, business_id: int, lots: dict[int, int], points: int
) -> dict[str, int]:
    """Give `points` back to the lots they came from, the latest-expiring first (the sale
    took the soonest first); what the lots did not supply stays everlasting. An expired
    lot gets its points back too: the sweeper writes them off."""
    if not lots or points <= 0:
        return {}
    rows = await connection.fetch(
        "SELECT lot_id, expires_at FROM points_lots"
        " WHERE business_id = $1 AND lot_id = ANY($2::bigint[]) ORDER BY lot_id FOR UPDATE",
        business_id,
        sorted(lots),
    )
    given: dict[int, int] = {}
    for row in sorted(rows, key=lambda row: (row["expires_at"], row["lot_id"]), reverse=True):
        amount = min(lots[row["lot_id"]], points - sum(given.values()))
        if amount > 0:
            given[row["lot_id"]] = amount
    if given:
        await connection.execute(
            "UPDATE points_lots l SET remaining = l.remaining + d.points"
            "  FROM unnest($2::bigint[], $3::bigint[]) AS d(lot_id, points)"
            " WHERE l.business_id = $1 AND l.lot_id = d.lot_id",
            business_id,
            list(given),
            list(given.values()),
        )
    return {str(lot_id): amount for lot_id, amount in given.items()}


async def _apply(
    connection: Any,
    business_id: int,
    transaction_id: int,
    customer_id: int | None,
    plan: RefundPlan,
    lots: dict[int, int],
) -> dict[str, Any]:
    """Pockets, then lots, then certificates: the order a batch locks them in."""
    credits = {POINTS_ACCOUNT_TYPE_ID: plan.points_returned, **plan.accounts_returned}
    wanted = {POINTS_ACCOUNT_TYPE_ID: plan.points_to_recover, **plan.purchases_to_recover}
    recovered: dict[int, int] = {}
    if customer_id is not None:
        rows = await connection.fetch(
            "SELECT account_type_id, pocket_id, balance, held FROM pockets"
            " WHERE business_id = $1 AND customer_id = $2 AND account_type_id = ANY($3::bigint[])"
            " ORDER BY pocket_id FOR UPDATE",
            business_id,
            customer_id,
            sorted({*credits, *wanted}),
        )
        pockets = {row["account_type_id"]: row for row in rows}
        changes = [(pockets[key]["pocket_id"], amount) for key, amount in credits.items() if amount]
        for key, amount in wanted.items():
            pocket = pockets.get(key)
            available = 0 if pocket is None else pocket["balance"] - pocket["held"]
            recovered[key] = min(amount, max(available + credits.get(key, 0), 0))
            if recovered[key]:
                changes.append((pockets[key]["pocket_id"], -recovered[key]))
        await _post(connection, business_id, transaction_id, changes)
    lots_given = await _return_to_lots(connection, business_id, lots, plan.points_returned)
    if plan.certificates_returned:
        returned = sorted(plan.certificates_returned.items())
        await connection.execute(
            "UPDATE certificates c SET balance_minor_units = c.balance_minor_units + d.amount"
            "  FROM unnest($2::bigint[], $3::bigint[]) AS d(certificate_id, amount)"
            " WHERE c.business_id = $1 AND c.certificate_id = d.certificate_id",
            business_id,
            [certificate_id for certificate_id, _ in returned],
            [amount for _, amount in returned],
        )
    return _result(plan, recovered, lots_given)


def _result(
    plan: RefundPlan, recovered: dict[int, int], lots_given: dict[str, int]
) -> dict[str, Any]:
    """What is stored for the refund (and answered again on a retry)."""
    points = recovered.get(POINTS_ACCOUNT_TYPE_ID, 0)
    purchases = plan.purchases_to_recover
    return {
        "lines": {str(position): quantity for position, quantity in plan.quantities.items()},
        "refunded_minor_units": plan.refunded_minor_units,
        "points_returned": plan.points_returned,
        "points_recovered": points,
        "points_not_recovered": plan.points_to_recover - points,
        "accounts_returned": {
            str(key): value for key, value in plan.accounts_returned.items() if value
        },
        "accounts_recovered": {
            str(key): recovered.get(key, 0) for key, value in purchases.items() if value
        },
        "accounts_not_recovered": {
            str(key): value - recovered.get(key, 0)
            for key, value in purchases.items()
            if value - recovered.get(key, 0)
        },
        "lots_returned": lots_given,
    }


async def _post(
    connection: Any, business_id: int, transaction_id: int, changes: list[tuple[int, int]]
) -> None:
    if not changes:
        return
    await connection.execute(
        "WITH moved AS ("
        "  UPDATE pockets p SET balance = p.balance + d.amount, updated_at = now()"
        "    FROM (SELECT pocket_id, sum(amount) AS amount"
        "            FROM unnest($3::bigint[], $4::bigint[]) AS c(pocket_id, amount)"
        "           GROUP BY pocket_id) d"
        "   WHERE p.business_id = $1 AND p.pocket_id = d.pocket_id"
        ") INSERT INTO ledger_entries (business_id, pocket_id, transaction_id, kind, amount)"
        "  SELECT $1, pocket_id, $2, $5, amount FROM unnest($3::bigint[], $4::bigint[])"
        "    AS c(pocket_id, amount)",
        business_id,
        transaction_id,
        [pocket_id for pocket_id, _ in changes],
        [amount for _, amount in changes],
        LedgerKind.REFUND.value,
    )
