"""Migrations and the schema's own guarantees, on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from support import Tenant

from purse.config import Settings
from purse.domain.customers import AccessType
from purse.store.postgres import database
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.provisioning import Provisioning


async def test_migrating_again_applies_nothing(infrastructure: Settings) -> None:
    assert await database.migrate(infrastructure.database_url) == []


async def test_concurrent_migrations_wait_for_each_other(infrastructure: Settings) -> None:
    results = await asyncio.gather(
        *(database.migrate(infrastructure.database_url) for _ in range(4))
    )
    assert results == [[], [], [], []]


async def test_the_instance_secret_is_created_once_and_kept(pool: asyncpg.Pool) -> None:
    first = await database.load_instance_secret(pool)
    assert len(first) == database.instance_secret_bytes
    assert await database.load_instance_secret(pool) == first


async def test_every_primary_key_starts_with_business_id(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "SELECT c.conrelid::regclass::text AS table_name,"
        "       (SELECT attname FROM pg_attribute"
        "         WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) AS first_column"
        "  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'p' AND n.nspname = 'public'"
    )
    global_tables = {"businesses", "customers", "instance_secrets", "schema_migrations"}
    keyed = {row["table_name"]: row["first_column"] for row in rows}
    assert set(keyed) > {"memberships", "pockets", "ledger_entries", "transactions"}
    for table, column in keyed.items():
        if table not in global_tables:
            assert column == "business_id", table


async def test_a_pocket_can_never_go_below_zero(pool: asyncpg.Pool, business: Tenant) -> None:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, "+380991110001", AccessType.FULL
    )
    provisioning = Provisioning(pool)
    await provisioning.adjust_pocket(business.business_id, customer_id, 0, 500)
    with pytest.raises(asyncpg.CheckViolationError):
        await provisioning.adjust_pocket(business.business_id, customer_id, 0, -501)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "UPDATE pockets SET held = 600 WHERE business_id = $1 AND customer_id = $2",
            business.business_id,
            customer_id,
        )
    balance = await pool.fetchval(
        "SELECT balance FROM pockets WHERE business_id = $1 AND customer_id = $2",
        business.business_id,
        customer_id,
    )
    assert balance == 500
