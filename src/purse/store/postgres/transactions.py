"""Reading transactions: by id, by a terminal's check number, newest first with keyset
pagination, and the pending ones whose hold has run out. Always scoped by business."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from purse.domain.customer_operations import CustomerOperation, operation_from_document
from purse.domain.transactions import (
    RefundedAccount,
    RefundRecord,
    TransactionRecord,
    TransactionStatus,
)
from purse.service.operations import Message
from purse.store.postgres.conflicts import retried_on_conflict
from purse.store.postgres.receipts import stored_receipt

list_page_size_max = 500
sweep_retries_on_deadlock_max = 3

_select = """
SELECT t.*,
       ARRAY(SELECT ROW(r.refund_id, r.refund_number, r.result::text, r.created_at)
               FROM refunds r
              WHERE r.business_id = t.business_id AND r.transaction_id = t.transaction_id
              ORDER BY r.refund_id) AS refund_rows
  FROM transactions t
"""


# The sweeper locks in the global order every write path uses (transactions, pockets,
# lots, certificates; ids sorted): first the pockets that have expired lots...
_pockets_with_expired_lots = """
SELECT p.business_id, p.pocket_id
  FROM pockets p
 WHERE (p.business_id, p.pocket_id) IN (
         SELECT l.business_id, l.pocket_id FROM points_lots l
          WHERE l.remaining > 0 AND l.expires_at <= now()
          ORDER BY l.business_id, l.pocket_id, l.lot_id
          LIMIT $1)
 ORDER BY p.business_id, p.pocket_id
   FOR UPDATE OF p SKIP LOCKED
"""

# ... then, those pockets held, their expired lots, and the write-off.
_write_off_expired = """
WITH due AS (
  SELECT l.business_id, l.lot_id, l.pocket_id, l.remaining
    FROM points_lots l
    JOIN unnest($2::bigint[], $3::bigint[]) AS k(business_id, pocket_id)
         USING (business_id, pocket_id)
   WHERE l.remaining > 0 AND l.expires_at <= now()
   ORDER BY l.business_id, l.lot_id
   LIMIT $1
     FOR UPDATE OF l SKIP LOCKED
), per_pocket AS (
  SELECT business_id, pocket_id, sum(remaining) AS remaining FROM due
   GROUP BY business_id, pocket_id
), pockets_locked AS (
  SELECT p.business_id, p.pocket_id, p.customer_id,
         least(d.remaining, greatest(p.balance - p.held, 0)) AS amount
    FROM pockets p JOIN per_pocket d USING (business_id, pocket_id)
), lots AS (
  UPDATE points_lots l SET remaining = 0
    FROM due WHERE l.business_id = due.business_id AND l.lot_id = due.lot_id
), moved AS (
  UPDATE pockets p SET balance = p.balance - k.amount, updated_at = now()
    FROM pockets_locked k
   WHERE p.business_id = k.business_id AND p.pocket_id = k.pocket_id AND k.amount > 0
), entries AS (
  INSERT INTO ledger_entries (business_id, pocket_id, kind, amount)
  SELECT business_id, pocket_id, 'expire', -amount FROM pockets_locked WHERE amount > 0
)
SELECT (SELECT count(*) FROM due) AS lots,
       ARRAY(SELECT ROW(business_id, customer_id) FROM pockets_locked) AS customers
"""


def record_from_row(row: asyncpg.Record) -> TransactionRecord:
    return TransactionRecord(
        transaction_id=row["transaction_id"],
        check_number=row["check_number"],
        terminal_id=row["terminal_id"],
        status=TransactionStatus(row["status"]),
        customer_id=row["customer_id"],
        receipt=stored_receipt(row),
        request_digest=bytes(row["request_digest"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        confirmation_deadline=row["confirmation_deadline"],
        refusal=row["refusal"],
        refunds=tuple(_refund(values) for values in row.get("refund_rows") or ()),
        lot_reservations=_reservations(row.get("lot_reservations")),
        operation=_operation(row["operation"]),
    )


def _operation(stored: dict[str, Any] | None) -> CustomerOperation | None:
    # An administrator's operation keeps what it did beside where a check keeps its receipt.
    return None if stored is None else operation_from_document(stored)


def _reservations(stored: dict[str, int] | None) -> dict[int, int] | None:
    return None if stored is None else {int(lot_id): points for lot_id, points in stored.items()}


def _refund(values: Any) -> RefundRecord:
    refund_id, refund_number, result, created_at = values
    effects = json.loads(result)
    return RefundRecord(
        refund_id=refund_id,
        refund_number=refund_number,
        refunded_minor_units=effects["refunded_minor_units"],
        points_returned=effects["points_returned"],
        points_recovered=effects["points_recovered"],
        points_not_recovered=effects["points_not_recovered"],
        created_at=created_at,
        accounts=_refunded_accounts(effects),
    )


def _refunded_accounts(effects: dict[str, Any]) -> tuple[RefundedAccount, ...]:
    returned = effects.get("accounts_returned", {})
    recovered = effects.get("accounts_recovered", {})
    not_recovered = effects.get("accounts_not_recovered", {})
    return tuple(
        RefundedAccount(
            int(account),
            returned.get(account, 0),
            recovered.get(account, 0),
            not_recovered.get(account, 0),
        )
        for account in sorted({*returned, *recovered, *not_recovered}, key=int)
    )


class TransactionStore:
    """Business-scoped reads of transactions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_id(self, business_id: int, transaction_id: int) -> TransactionRecord | None:
        row = await self._pool.fetchrow(
            _select + " WHERE t.business_id = $1 AND t.transaction_id = $2",
            business_id,
            transaction_id,
        )
        return None if row is None else record_from_row(row)

    async def by_check_number(
        self, business_id: int, terminal_id: int, check_number: str
    ) -> TransactionRecord | None:
        row = await self._pool.fetchrow(
            _select + " WHERE t.business_id = $1 AND t.terminal_id = $2 AND t.check_number = $3",
            business_id,
            terminal_id,
            check_number,
        )
        return None if row is None else record_from_row(row)

    async def by_ids(
        self, business_id: int, transaction_ids: Sequence[int]
    ) -> list[TransactionRecord]:
        rows = await self._pool.fetch(
            _select + " WHERE t.business_id = $1 AND t.transaction_id = ANY($2::bigint[])",
            business_id,
            list(transaction_ids),
        )
        return [record_from_row(row) for row in rows]

    async def by_check_numbers(
        self, business_id: int, terminal_id: int, check_numbers: Sequence[str]
    ) -> dict[str, TransactionRecord]:
        """The transactions of a terminal among `check_numbers`, by check number."""
        rows = await self._pool.fetch(
            _select + " WHERE t.business_id = $1 AND t.terminal_id = $2"
            "   AND t.check_number = ANY($3::text[])",
            business_id,
            terminal_id,
            list(check_numbers),
        )
        return {row["check_number"]: record_from_row(row) for row in rows}

    async def page(
        self,
        business_id: int,
        limit: int,
        after: tuple[datetime, int] | None,
        customer_id: int | None,
        terminal_id: int | None,
        status: TransactionStatus | None,
        created_from: datetime | None,
        created_before: datetime | None,
    ) -> list[TransactionRecord]:
        """Newest first; `after` is the (created_at, id) of the last row of the page before."""
        assert 0 < limit <= list_page_size_max
        rows = await self._pool.fetch(
            _select + " WHERE t.business_id = $1"
            "   AND ($2::timestamptz IS NULL OR (t.created_at, t.transaction_id) < ($2, $3))"
            "   AND ($4::bigint IS NULL OR t.customer_id = $4)"
            "   AND ($5::bigint IS NULL OR t.terminal_id = $5)"
            "   AND ($6::text IS NULL OR t.status = $6)"
            "   AND ($7::timestamptz IS NULL OR t.created_at >= $7)"
            "   AND ($8::timestamptz IS NULL OR t.created_at < $8)"
            " ORDER BY t.created_at DESC, t.transaction_id DESC LIMIT $9",
            business_id,
            None if after is None else after[0],
            None if after is None else after[1],
            customer_id,
            terminal_id,
            None if status is None else status.value,
            created_from,
            created_before,
            limit,
        )
        return [record_from_row(row) for row in rows]

    async def pending_count(self) -> int:
        """Pending transactions of every business (holds waiting for a PIN), read from the
        index of pending transactions."""
        count: int = await self._pool.fetchval(
            "SELECT count(*) FROM transactions WHERE status = 'pending'"
        )
        return count

    async def overdue_holds(self, limit: int) -> list[tuple[int, int]]:
        """(business id, transaction id) of pending transactions past their deadline."""
        rows = await self._pool.fetch(
            "SELECT business_id, transaction_id FROM transactions"
            " WHERE status = 'pending' AND confirmation_deadline < now()"
            " ORDER BY confirmation_deadline LIMIT $1",
            limit,
        )
        return [(row["business_id"], row["transaction_id"]) for row in rows]

    async def add_message(self, business_id: int, transaction_id: int, message: Message) -> None:
        """One outbox message outside a batch (a resent PIN)."""
        await self._pool.execute(
            "INSERT INTO outbox_messages (business_id, customer_id, transaction_id, channel,"
            "                             purpose, phone, language, body, sealed_secret)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            business_id,
            message.customer_id,
            transaction_id,
            message.channel,
            message.purpose,
            message.phone,
            message.language,
            message.body,
            message.sealed_secret,
        )

    @retried_on_conflict(sweep_retries_on_deadlock_max)
    async def write_off_expired_lots(self, limit: int) -> tuple[int, list[tuple[int, int]]]:
        """Write off special points whose lots have expired: the pocket's balance falls by
        what is left of each lot, with an `expire` ledger entry. Points a pending sale holds
        are no longer in their lot (a released hold gives them back, and a later sweep
        takes them then); the write-off still never reaches into held points, for holds
        stored before holds took their lots. Pockets are locked before their lots, as
        refunds and batches lock them; pockets and lots another process is working on are
        skipped (a later sweep takes them), and a deadlock all the same is retried.
        Returns the lots written off and the (business, customer) pairs whose points they
        were."""
        async with self._pool.acquire() as connection, connection.transaction():
            pockets = await connection.fetch(_pockets_with_expired_lots, limit)
            if not pockets:
                return 0, []
            row = await connection.fetchrow(
                _write_off_expired,
                limit,
                [pocket["business_id"] for pocket in pockets],
                [pocket["pocket_id"] for pocket in pockets],
            )
        assert row is not None
        return row["lots"], [(business, customer) for business, customer in row["customers"]]
