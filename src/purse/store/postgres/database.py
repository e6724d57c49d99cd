"""Connection pool and migrations.

`migrate()` applies the numbered SQL files in `migrations/` in order, each once, under an
advisory lock so that several processes starting together do not race, and creates the
instance signing secret on first run (shared by every process and host through the
database, so tokens signed by one verify on another). Given the receipt codec, it then
converts receipts stored as documents before 0013 to bytes (`receipts.convert_documents`).
"""

from __future__ import annotations

import importlib.resources
import logging
import secrets
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from purse.domain.transactions import SaleReceipt
from purse.store.postgres import receipts

_logger = logging.getLogger(__name__)
_migration_lock_key = 0x70757273  # "purs"
# The migration after which sales store their receipts as bytes.
receipt_bytes_migration = 13
instance_secret_bytes = 32


def _json_text(value: Any) -> str:
    # orjson: several times faster, and documents are written on hot paths (a sale's lot
    # reservations, refusals, audit entries).
    return orjson.dumps(value).decode()


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=_json_text, decoder=orjson.loads, schema="pg_catalog"
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Purse keeps no session state (no SET, LISTEN, advisory or cursor outliving a call),
    so a released connection needs no `RESET ALL; UNLISTEN *; …` — a round trip per query
    that cost a fifth of the server's CPU under load."""


async def create_pool(
    url: str,
    connections_min: int,
    connections_max: int,
    statement_timeout_ms: int,
    connect_timeout_seconds: float,
) -> asyncpg.Pool:
    """A pool with every option set explicitly (no library defaults)."""
    pool = await asyncpg.create_pool(
        url,
        min_size=connections_min,
        max_size=connections_max,
        timeout=connect_timeout_seconds,
        command_timeout=statement_timeout_ms / 1000 + 1,
        max_inactive_connection_lifetime=300.0,
        max_queries=1_000_000,
        statement_cache_size=256,
        init=_init_connection,
        reset=_keep_session,
        server_settings={
            "application_name": "purse",
            "statement_timeout": str(statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(statement_timeout_ms * 4),
        },
    )
    assert pool is not None
    return pool


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) for every migration, in order."""
    folder = importlib.resources.files("purse.store.postgres") / "migrations"
    entries = sorted(
        (entry.name, entry) for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), entry.read_text("utf-8")) for name, entry in entries]


def migration_number(version: str) -> int:
    """`0007_personal_data_per_business` -> 7."""
    return int(version.partition("_")[0])


async def migrate(
    url: str,
    through: int | None = None,
    encode_receipt: Callable[[SaleReceipt], bytes] | None = None,
) -> list[str]:
    """Apply what is missing; returns the versions applied now. `through` stops after the
    migration of that number: tests build an older schema with it to migrate data on.
    With `encode_receipt` (the composition root's receipt codec), receipts still stored
    as documents are converted afterwards, in chunks, each its own transaction (without
    it they stay readable as documents)."""
    connection: asyncpg.Connection = await asyncpg.connect(url)
    try:
        applied = await _apply_migrations(connection, through)
        if encode_receipt is not None and (through is None or through >= receipt_bytes_migration):
            converted = await receipts.convert_documents(connection, encode_receipt)
            if converted:
                _logger.info("converted %d receipts stored as documents to bytes", converted)
        return applied
    finally:
        await connection.close()


async def _apply_migrations(connection: asyncpg.Connection, through: int | None) -> list[str]:
    """The SQL migrations missing, in one transaction under the advisory lock."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _migration_lock_key)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            row["version"]
            for row in await connection.fetch("SELECT version FROM schema_migrations")
        }
        applied = []
        for version, sql in migration_files():
            if version in done:
                continue
            if through is not None and migration_number(version) > through:
                break
            await connection.execute(sql)
            await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
        await connection.execute(
            "INSERT INTO instance_secrets (name, value) VALUES ('signing', $1)"
            " ON CONFLICT (name) DO NOTHING",
            secrets.token_bytes(instance_secret_bytes),
        )
    return applied


async def load_instance_secret(pool: asyncpg.Pool) -> bytes:
    value: Any = await pool.fetchval("SELECT value FROM instance_secrets WHERE name = 'signing'")
    if not isinstance(value, bytes):
        raise RuntimeError("the database has no instance secret: run `purse migrate`")
    return value
