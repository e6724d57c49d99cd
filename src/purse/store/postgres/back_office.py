"""Writes of the back office: one database transaction per change, with its audit entry.

`BackOfficeWrites.writing(actor)` opens a transaction and hands out a `Writing`: lock a
row (`locked`), insert (`inserted`), update (`updated`, which raises the row's version by
one), and `record` what changed in the append-only audit log — all on the same
connection, so the change and its audit entry commit together or not at all. Table and
column names come from `Table` constants in the code, never from input; values always
travel as parameters.

A unique constraint a write breaks surfaces as `UniqueConflict` naming the constraint:
the use case, not the store, says which field that was and refuses the request.
Columns a `Table` marks secret (password and key hashes) never reach the audit log.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from purse.domain.administrators import Actor
from purse.service.ports import UniqueConflict

_identifier = re.compile(r"[a-z_]{1,63}")


@dataclass(frozen=True, slots=True)
class Table:
    """A table the back office writes: its name, the key after business_id, its secrets."""

    name: str
    key: str
    secret_columns: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        assert _identifier.fullmatch(self.name) and _identifier.fullmatch(self.key)


def _column_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    assert names and all(_identifier.fullmatch(name) for name in names), names
    return names


def document(table: Table, row: asyncpg.Record | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A row as the audit log keeps it: secrets left out, bytes as hex."""
    if row is None:
        return None
    kept: dict[str, Any] = {}
    for name, value in dict(row).items():
        if name in table.secret_columns:
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            value = bytes(value).hex()
        elif isinstance(value, datetime):
            value = value.isoformat()
        kept[name] = value
    return kept


class Writing:
    """One open back-office transaction of one business."""

    def __init__(self, connection: asyncpg.Connection, actor: Actor) -> None:
        self.connection = connection
        self.actor = actor

    async def locked(self, table: Table, key: object) -> asyncpg.Record | None:
        """The row of this business with this key, locked until the commit."""
        return await self.connection.fetchrow(
            f"SELECT * FROM {table.name} WHERE business_id = $1 AND {table.key} = $2 FOR UPDATE",
            self.actor.business_id,
            key,
        )

    async def inserted(self, table: Table, values: Mapping[str, object]) -> asyncpg.Record:
        """Insert a row of this business; UniqueConflict when a unique key is taken."""
        names = _column_names(values)
        placeholders = ", ".join(f"${index}" for index in range(2, len(names) + 2))
        try:
            row = await self.connection.fetchrow(
                f"INSERT INTO {table.name} (business_id, {', '.join(names)})"
                f" VALUES ($1, {placeholders}) RETURNING *",
                self.actor.business_id,
                *values.values(),
            )
        except asyncpg.UniqueViolationError as error:
            raise UniqueConflict(error.constraint_name or "") from error
        assert row is not None
        return row

    async def updated(
        self, table: Table, key: object, values: Mapping[str, object]
    ) -> asyncpg.Record:
        """Update a row locked before; its version grows by one."""
        names = _column_names(values)
        assignments = ", ".join(f"{name} = ${index}" for index, name in enumerate(names, 3))
        try:
            row = await self.connection.fetchrow(
                f"UPDATE {table.name} SET {assignments}, version = version + 1"
                f" WHERE business_id = $1 AND {table.key} = $2 RETURNING *",
                self.actor.business_id,
                key,
                *values.values(),
            )
        except asyncpg.UniqueViolationError as error:
            raise UniqueConflict(error.constraint_name or "") from error
        assert row is not None, "update a row locked in this transaction"
        return row

    async def record(
        self,
        action: str,
        table: Table,
        resource_id: object,
        before: asyncpg.Record | Mapping[str, Any] | None,
        after: asyncpg.Record | Mapping[str, Any] | None,
    ) -> None:
        """Append who changed what, from what to what, in this transaction."""
        await self.connection.execute(
            "INSERT INTO audit_log (business_id, administrator_id, actor, action, resource,"
            "                       resource_id, before, after)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            self.actor.business_id,
            self.actor.administrator_id,
            self.actor.name,
            action,
            table.name,
            str(resource_id),
            document(table, before),
            document(table, after),
        )


class BackOfficeWrites:
    """Opens back-office transactions on the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def writing(self, actor: Actor) -> AsyncIterator[Writing]:
        async with self._pool.acquire() as connection, connection.transaction():
            yield Writing(connection, actor)


async def page_of(
    pool: asyncpg.Pool,
    table: Table,
    business_id: int,
    after_key: int,
    limit: int,
    show_archived: bool,
) -> Sequence[asyncpg.Record]:
    """Rows of a business in key order after `after_key`, at most `limit` (+1 to tell
    whether another page follows); archived rows only when asked."""
    archived = "" if show_archived else " AND archived_at IS NULL"
    return await pool.fetch(
        f"SELECT * FROM {table.name} WHERE business_id = $1 AND {table.key} > $2{archived}"
        f" ORDER BY {table.key} LIMIT $3",
        business_id,
        after_key,
        limit + 1,
    )
