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

Ids come from the tables' own identity sequences, reserved as one block each
(`purse.generation.copying.reserve_ids`, as `purse generate` reserves them), so enrolments
after the build carry on after them. Rows go in with COPY (binary, through asyncpg),
straight into the tables, constraints and foreign keys checked as for any insert. Every
phone must be new to Purse and well formed: a known one fails the whole build (the unique
phone), and nothing is written.

`settle(connection)` then does what time would have done to a business that grew to
that size: VACUUM (ANALYZE) of the three tables (planner statistics, visibility map, hint
bits) and a CHECKPOINT, so that measuring starts with none of the build's writes pending.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from purse.generation import copying

# (business) -> its default category, as enrolment picks it.
_default_category = (
    "SELECT category_id FROM customer_categories WHERE business_id = $1 AND is_default"
)
_points_account_type_id = 0
settled_tables = ("customers", "memberships", "pockets")


@dataclass(frozen=True)
class Built:
    """What a build wrote (customer ids in the order of the phones) and how long it took."""

    customer_ids: range
    seconds: float


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
    first_customer, first_pocket = await copying.reserve_ids(
        connection,
        [("customers", "customer_id", len(phones)), ("pockets", "pocket_id", len(phones))],
    )
    customer_ids = range(first_customer, first_customer + len(phones))
    pocket_ids = range(first_pocket, first_pocket + len(phones))
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
    await copying.settle(connection, settled_tables)
