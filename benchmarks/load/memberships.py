"""Memberships built by COPY: a business of a million customers in seconds, each one as
enrolment would have left it.

Contract. `copy_memberships(connection, business_id, phones, access_type)` writes, in one
transaction, the rows that enrolment (`_enrol` in purse/store/postgres/customers.py, what
IdentifyCustomer of an unknown phone and RegisterCustomer run) writes for a phone new to
Purse, and nothing else:

- `customers`: the phone;
- `memberships`: the business's default customer category and the access type given;
  every other column its default (no names, language or consent, participation not
  confirmed, no statistics, profile version 1), as enrolment without a questionnaire;
- `pockets`: the points pocket (account type 0), empty.

Ids come from the tables' own identity sequences, reserved as one block each (under a lock
that keeps inserts out for that moment), so enrolments after the build carry on after
them. Rows go in with COPY (binary, through asyncpg),
straight into the tables, constraints and foreign keys checked as for any insert. Every
phone must be new to Purse and well formed: a known one fails the whole build (the unique
phone), and nothing is written.

`settle(connection)` then does what time would have done to a business that grew to that
size: VACUUM (ANALYZE) of the three tables (planner statistics, visibility map, hint
bits) and a CHECKPOINT, so that measuring starts with none of the build's writes pending.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

# (business) -> its default category, as enrolment picks it.
_default_category = (
    "SELECT category_id FROM customer_categories WHERE business_id = $1 AND is_default"
)
# ($1 table, $2 identity column, $3 how many) -> the first of that many ids, reserved: the
# sequence moved past them in one step. The caller holds a lock that keeps every insert
# into the table (the only user of the sequence) out meanwhile.
_reserve_ids = """
WITH sequence AS (SELECT pg_get_serial_sequence($1, $2)::regclass AS name)
SELECT setval(name, coalesce(pg_sequence_last_value(name), 0) + $3) - $3 + 1 FROM sequence
"""
_points_account_type_id = 0
settled_tables = ("customers", "memberships", "pockets")


@dataclass(frozen=True)
class Built:
    """What a build wrote (customer ids in the order of the phones) and how long it took."""

    customer_ids: range
    seconds: float


async def _reserve(connection: asyncpg.Connection, count: int) -> tuple[range, range]:
    """Customer and pocket ids for `count` memberships, taken from the identity sequences
    in one short transaction, so that no concurrent enrolment can draw one of them (ids
    left unused by a build that fails are a gap, as an aborted insert leaves)."""
    async with connection.transaction():
        await connection.execute("LOCK TABLE customers, pockets IN SHARE ROW EXCLUSIVE MODE")
        customers = await connection.fetchval(_reserve_ids, "customers", "customer_id", count)
        pockets = await connection.fetchval(_reserve_ids, "pockets", "pocket_id", count)
    return range(customers, customers + count), range(pockets, pockets + count)


async def copy_memberships(
    connection: asyncpg.Connection,
    business_id: int,
    phones: Sequence[str],
    access_type: str = "full",
) -> Built:
    """Enrol `phones`, all new to Purse, in the business, as enrolment would, by COPY."""
    started = time.perf_counter()
    category_id = await connection.fetchval(_default_category, business_id)
    if category_id is None:
        raise ValueError(f"business {business_id} has no default customer category")
    customer_ids, pocket_ids = await _reserve(connection, len(phones))
    async with connection.transaction():
        await connection.copy_records_to_table(
            "customers",
            columns=("customer_id", "phone"),
            records=zip(customer_ids, phones, strict=True),
        )
        await connection.copy_records_to_table(
            "memberships",
            columns=("business_id", "customer_id", "category_id", "access_type"),
            records=(
                (business_id, customer, category_id, access_type) for customer in customer_ids
            ),
        )
        await connection.copy_records_to_table(
            "pockets",
            columns=("business_id", "pocket_id", "customer_id", "account_type_id"),
            records=(
                (business_id, pocket, customer, _points_account_type_id)
                for pocket, customer in zip(pocket_ids, customer_ids, strict=True)
            ),
        )
    return Built(customer_ids, time.perf_counter() - started)


async def settle(connection: asyncpg.Connection) -> None:
    """VACUUM (ANALYZE) the tables a build wrote, then CHECKPOINT."""
    for table in settled_tables:
        await connection.execute(f"VACUUM (ANALYZE) {table}")
    await connection.execute("CHECKPOINT")
