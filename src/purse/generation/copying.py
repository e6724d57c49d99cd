"""Generated members written by COPY: ids reserved from the tables' own sequences, rows
copied in binary through asyncpg, a chunk of members a transaction, the tables settled
afterwards.

Contract:

* `reserve_ids(connection, wanted)`: for each (table, identity column, count), the
  first id of a block of that many, taken from the column's sequence in one short
  transaction, under a lock that keeps every insert into those tables out for that
  moment; inserts after it carry on after the block. Ids a failed build leaves unused
  are a gap, as an aborted insert leaves.
* `copy_members(connection, business, count, shape, seed, now)` makes `count` members
  up (`histories`) a chunk of `chunk_members` at a time and writes each chunk's rows of
  every table in one transaction: whatever stops a build, the chunks written are whole
  (every pocket equal to its ledger). Rows go straight into the tables, constraints
  checked as for any insert; the identity columns take the reserved ids (COPY overrides
  them). Every phone must be new to Purse: a known one fails its chunk (the unique phone).
* `settle(connection, tables)` does what time would have done to a business that grew
  to that size: VACUUM (ANALYZE) of each table (planner statistics, visibility map, hint
  bits), then a CHECKPOINT, so that nothing written is left pending.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from purse.generation import histories

chunk_members: Final = 20_000
# ($1 table, $2 identity column, $3 how many) -> the first of that many ids, reserved: the
# sequence moved past them in one step.
_reserve_ids = """
WITH sequence AS (SELECT pg_get_serial_sequence($1, $2)::regclass AS name)
SELECT setval(name, coalesce(pg_sequence_last_value(name), 0) + $3) - $3 + 1 FROM sequence
"""
# Tables and their identity columns, in the order a chunk writes them.
_identities: Final = (
    ("customers", "customer_id"),
    ("pockets", "pocket_id"),
    ("transactions", "transaction_id"),
    ("ledger_entries", "entry_id"),
    ("points_lots", "lot_id"),
)
written_tables: Final = (
    "customers",
    "memberships",
    "pockets",
    "transactions",
    "ledger_entries",
    "points_lots",
    "point_of_sale_statistics",
)


async def reserve_ids(
    connection: asyncpg.Connection, wanted: Sequence[tuple[str, str, int]]
) -> list[int]:
    """The first id of each block of (table, identity column, count) wanted, reserved."""
    tables = ", ".join(table for table, _, _ in wanted)
    async with connection.transaction():
        # Only this transaction's own users of the sequences, the tables' inserts, wait.
        await connection.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
        return [
            await connection.fetchval(_reserve_ids, table, column, count)
            for table, column, count in wanted
        ]


@dataclass(frozen=True, slots=True)
class Copied:
    """What a build wrote and how long it took."""

    rows: dict[str, int]
    seconds: float


async def copy_members(
    connection: asyncpg.Connection,
    business: histories.Business,
    count: int,
    shape: histories.Shape,
    seed: int,
    now: datetime,
    progress: Callable[[int], None] = lambda written: None,
) -> Copied:
    """`count` members of `business` with their history, made up from `seed` as of `now`
    and written by COPY; `progress` hears how many are written after each chunk."""
    if not 0 <= count <= histories.members_max:
        raise ValueError(f"from 0 to {histories.members_max:,} members")
    started = time.perf_counter()
    source = random.Random(seed)
    rows = dict.fromkeys(written_tables, 0)
    for first_index in range(0, count, chunk_members):
        plans = histories.plan_members(
            source,
            first_index,
            min(chunk_members, count - first_index),
            shape,
            business.till_weights,
            now,
        )
        wanted = histories.counts(plans)
        firsts = await reserve_ids(
            connection,
            [(table, column, n) for (table, column), n in zip(_identities, wanted, strict=True)],
        )
        chunk = histories.chunk_rows(plans, business, histories.RowCounts(*firsts))
        async with connection.transaction():
            for table in written_tables:
                records = chunk.tables[table]
                if records:
                    await connection.copy_records_to_table(
                        table, columns=histories.columns[table], records=records
                    )
                rows[table] += len(records)
        progress(first_index + len(plans))
    return Copied(rows, time.perf_counter() - started)


async def settle(connection: asyncpg.Connection, tables: Sequence[str]) -> None:
    """VACUUM (ANALYZE) the tables a build wrote, then CHECKPOINT."""
    for table in tables:
        await connection.execute(f"VACUUM (ANALYZE) {table}")
    await connection.execute("CHECKPOINT")
