"""`purse audit`: every pocket recomputed from its append-only ledger (invariant I4), and
every row that names a row that does not exist.

A pocket's balance must equal the sum of its entries' amounts and its held part the sum
of their held amounts; no pocket may be overdrawn; no lot may hold more than its pocket.
One set-based query over all pockets, business by business in the output.

The rows a sale writes carry no foreign keys (checking them cost a tenth of PostgreSQL's
time per check; migration 0014): a ledger entry or points lot of a pocket, a pocket of a
membership, a transaction of a terminal, business and customer are checked here instead,
each kind of orphan a named finding with its count and its lowest id, per business.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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


class Finding(Enum):
    """A kind of row that names a row that does not exist (what a foreign key refused)."""

    LEDGER_ENTRY_OF_UNKNOWN_POCKET = "ledger_entry_of_unknown_pocket"
    POINTS_LOT_OF_UNKNOWN_POCKET = "points_lot_of_unknown_pocket"
    POCKET_OF_UNKNOWN_MEMBERSHIP = "pocket_of_unknown_membership"
    TRANSACTION_OF_UNKNOWN_TERMINAL = "transaction_of_unknown_terminal"
    TRANSACTION_OF_UNKNOWN_BUSINESS = "transaction_of_unknown_business"
    TRANSACTION_OF_UNKNOWN_CUSTOMER = "transaction_of_unknown_customer"


# Per finding: what the rows are, and the statement that finds them (their business, and
# their own id as `row_id`) among the rows of `$1`, or of every business when it is NULL.
_orphans: dict[Finding, tuple[str, str]] = {
    Finding.LEDGER_ENTRY_OF_UNKNOWN_POCKET: (
        "ledger entries of pockets that do not exist (first entry {row_id})",
        "SELECT e.business_id, e.entry_id AS row_id FROM ledger_entries e"
        " WHERE NOT EXISTS (SELECT 1 FROM pockets p"
        "                    WHERE p.business_id = e.business_id AND p.pocket_id = e.pocket_id)",
    ),
    Finding.POINTS_LOT_OF_UNKNOWN_POCKET: (
        "points lots of pockets that do not exist (first lot {row_id})",
        "SELECT l.business_id, l.lot_id AS row_id FROM points_lots l"
        " WHERE NOT EXISTS (SELECT 1 FROM pockets p"
        "                    WHERE p.business_id = l.business_id AND p.pocket_id = l.pocket_id)",
    ),
    Finding.POCKET_OF_UNKNOWN_MEMBERSHIP: (
        "pockets of customers who are not members (first pocket {row_id})",
        "SELECT p.business_id, p.pocket_id AS row_id FROM pockets p"
        " WHERE NOT EXISTS (SELECT 1 FROM memberships m"
        "                    WHERE m.business_id = p.business_id"
        "                      AND m.customer_id = p.customer_id)",
    ),
    Finding.TRANSACTION_OF_UNKNOWN_TERMINAL: (
        "transactions of terminals that do not exist (first transaction {row_id})",
        "SELECT t.business_id, t.transaction_id AS row_id FROM transactions t"
        " WHERE NOT EXISTS (SELECT 1 FROM terminals k"
        "                    WHERE k.business_id = t.business_id"
        "                      AND k.terminal_id = t.terminal_id)",
    ),
    Finding.TRANSACTION_OF_UNKNOWN_BUSINESS: (
        "transactions of a business that does not exist (first transaction {row_id})",
        "SELECT t.business_id, t.transaction_id AS row_id FROM transactions t"
        " WHERE NOT EXISTS (SELECT 1 FROM businesses b WHERE b.business_id = t.business_id)",
    ),
    Finding.TRANSACTION_OF_UNKNOWN_CUSTOMER: (
        "transactions of customers who are not members (first transaction {row_id})",
        "SELECT t.business_id, t.transaction_id AS row_id FROM transactions t"
        " WHERE t.customer_id IS NOT NULL"
        "   AND NOT EXISTS (SELECT 1 FROM memberships m"
        "                    WHERE m.business_id = t.business_id"
        "                      AND m.customer_id = t.customer_id)",
    ),
}


def _orphans_statement() -> str:
    """One statement for every finding: per business, how many rows and the lowest id."""
    parts = [
        f"SELECT '{finding.value}' AS finding, business_id, count(*) AS rows, min(row_id)"
        f"  FROM ({query}) AS found"
        "  WHERE $1::bigint IS NULL OR business_id = $1"
        "  GROUP BY business_id"
        for finding, (_, query) in _orphans.items()
    ]
    return "\nUNION ALL\n".join(parts) + "\nORDER BY business_id, finding"


_orphans_found = _orphans_statement()


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


@dataclass(frozen=True, slots=True)
class Orphans:
    """Rows of one business that name what does not exist, of one kind."""

    finding: Finding
    business_id: int
    rows: int
    first_id: int

    def describe(self) -> str:
        what = _orphans[self.finding][0].format(row_id=self.first_id)
        return f"business {self.business_id}: {self.rows} {what} [{self.finding.value}]"


@dataclass(frozen=True, slots=True)
class AuditReport:
    pockets_checked: int
    discrepancies: list[Discrepancy]
    orphans: list[Orphans]

    @property
    def clean(self) -> bool:
        return not (self.discrepancies or self.orphans)

    def orphaned_rows(self) -> int:
        return sum(orphans.rows for orphans in self.orphans)


async def audit(connection: asyncpg.Connection, business_id: int | None = None) -> AuditReport:
    """What is wrong with one business or all, in one consistent snapshot."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        checked = await connection.fetchval(
            "SELECT count(*) FROM pockets WHERE $1::bigint IS NULL OR business_id = $1",
            business_id,
        )
        rows = await connection.fetch(_audit, business_id)
        orphans = await connection.fetch(_orphans_found, business_id)
    return AuditReport(
        int(checked),
        [Discrepancy(*row) for row in rows],
        [Orphans(Finding(row[0]), row[1], row[2], row[3]) for row in orphans],
    )
