"""Migrations and the schema's own guarantees, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

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
    # The operator is above businesses: its keys belong to the instance.
    global_tables = {
        "businesses",
        "customers",
        "instance_secrets",
        "operator_api_keys",
        "schema_migrations",
    }
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


@pytest.fixture
async def empty_database_url(infrastructure: Settings) -> AsyncIterator[str]:
    """A database of this test's own on the session's server, dropped afterwards."""
    name = f"purse_migration_{secrets.token_hex(6)}"
    server = await asyncpg.connect(infrastructure.database_url)
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(infrastructure.database_url)._replace(path=f"/{name}"))
        await server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await server.close()


async def customer_before_0007(
    connection: asyncpg.Connection, phone: str, given: str, family: str, language: str
) -> int:
    """A customer as the schema before 0007 kept one: names and language on the shared row."""
    customer_id: int = await connection.fetchval(
        "INSERT INTO customers (phone, given_name, family_name, language)"
        " VALUES ($1, $2, $3, $4) RETURNING customer_id",
        phone,
        given,
        family,
        language,
    )
    return customer_id


async def member_before_0007(connection: asyncpg.Connection, customer_id: int) -> int:
    """A business of its own with a default category, and the customer's membership in it."""
    business_id: int = await connection.fetchval(
        "WITH business AS ("
        "  INSERT INTO businesses (name, currency, currency_exponent)"
        "  VALUES ('Migrated', 'UAH', 2) RETURNING business_id"
        "), category AS ("
        "  INSERT INTO customer_categories (business_id, name, is_default)"
        "  SELECT business_id, 'New customers', true FROM business RETURNING *"
        ") INSERT INTO memberships (business_id, customer_id, category_id, access_type)"
        "  SELECT business_id, $1, category_id, 'full' FROM category RETURNING business_id",
        customer_id,
    )
    return business_id


async def personal_data_of(
    connection: asyncpg.Connection, customer_id: int
) -> list[tuple[str, ...]]:
    rows = await connection.fetch(
        "SELECT given_name, family_name, language FROM memberships"
        " WHERE customer_id = $1 ORDER BY business_id",
        customer_id,
    )
    return [tuple(row) for row in rows]


async def test_migration_0007_copies_names_and_language_to_every_membership_of_the_customer(
    empty_database_url: str,
) -> None:
    applied = await database.migrate(empty_database_url, through=6)
    assert [database.migration_number(version) for version in applied] == [1, 2, 3, 4, 5, 6]
    connection = await asyncpg.connect(empty_database_url)
    try:
        named = await customer_before_0007(connection, "+380991230001", "Olena", "Kosach", "uk")
        unnamed = await customer_before_0007(connection, "+380991230002", "", "", "")
        for customer_id in (named, named, unnamed):
            await member_before_0007(connection, customer_id)
        assert await database.migrate(empty_database_url, through=7) == [
            "0007_personal_data_per_business"
        ]
        assert await personal_data_of(connection, named) == [("Olena", "Kosach", "uk")] * 2
        assert await personal_data_of(connection, unnamed) == [("", "", "")]
        columns = await connection.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'customers'"
        )
        assert {row["column_name"] for row in columns} == {"customer_id", "phone", "created_at"}
    finally:
        await connection.close()


async def test_migration_0007_fits_what_the_shared_row_took_unchecked_to_the_new_limits(
    empty_database_url: str,
) -> None:
    await database.migrate(empty_database_url, through=6)
    connection = await asyncpg.connect(empty_database_url)
    try:
        customer_id = await customer_before_0007(
            connection, "+380991230003", "x" * 250, "Kosach", "uk_UA"
        )
        await member_before_0007(connection, customer_id)
        await database.migrate(empty_database_url, through=7)
        assert await personal_data_of(connection, customer_id) == [("x" * 200, "Kosach", "")]
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "UPDATE memberships SET language = 'not a tag' WHERE customer_id = $1",
                customer_id,
            )
    finally:
        await connection.close()
