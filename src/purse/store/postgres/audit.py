"""`purse audit`: every pocket recomputed from its append-only ledger (invariant I4).

A pocket's balance must equal the sum of its entries' amounts and its held part the sum
of their held amounts; no pocket may be overdrawn; no lot may hold more than its pocket.
One set-based query over all pockets, business by business in the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

_audit = """
WITH sums AS (
  SELECT business_id, pocket_id, sum(amount) AS amount, sum(held_amount) AS held
    FROM ledger_entries GROUP BY business_id, pocket_id
), lots AS (
  SELECT business_id, pocket_id, sum(remaining) AS remaining
    FROM points_lots GROUP BY business_id, pocket_id
)
SELECT p.business_id, p.pocket_id, p.customer_id, p.account_type_id, p.balance, p.held,
       coalesce(s.amount, 0) AS ledger_balance, coalesce(s.held, 0) AS ledger_held,
       coalesce(l.remaining, 0) AS lots_remaining
  FROM pockets p
  LEFT JOIN sums s ON s.business_id = p.business_id AND s.pocket_id = p.pocket_id
  LEFT JOIN lots l ON l.business_id = p.business_id AND l.pocket_id = p.pocket_id
 WHERE ($1::bigint IS NULL OR p.business_id = $1)
   AND (p.balance <> coalesce(s.amount, 0) OR p.held <> coalesce(s.held, 0)
        OR p.balance - p.held < 0 OR coalesce(l.remaining, 0) > p.balance)
 ORDER BY p.business_id, p.pocket_id
"""


@dataclass(frozen=True, slots=True)
class Discrepancy:
    business_id: int
    pocket_id: int
    customer_id: int
    account_type_id: int
    balance: int
    held: int
    ledger_balance: int
    ledger_held: int
    lots_remaining: int

    def describe(self) -> str:
        return (
            f"business {self.business_id} pocket {self.pocket_id} (customer {self.customer_id},"
            f" account type {self.account_type_id}): balance {self.balance} held {self.held},"
            f" ledger says {self.ledger_balance} held {self.ledger_held},"
            f" lots hold {self.lots_remaining}"
        )


async def audit(
    connection: asyncpg.Connection, business_id: int | None = None
) -> tuple[int, list[Discrepancy]]:
    """(pockets checked, discrepancies) of one business or all, in one consistent snapshot."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        checked = await connection.fetchval(
            "SELECT count(*) FROM pockets WHERE $1::bigint IS NULL OR business_id = $1",
            business_id,
        )
        rows = await connection.fetch(_audit, business_id)
    return int(checked), [Discrepancy(*row) for row in rows]
