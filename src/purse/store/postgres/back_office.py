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
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from purse.domain.administrators import Actor, operator_actor
from purse.service import ports
from purse.service.ports import Row, Table, UniqueConflict

if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
else:  # generic only in the type stubs
    Connection = asyncpg.pool.PoolConnectionProxy

_identifier = re.compile(r"[a-z_]{1,63}")


def _column_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    assert names and all(_identifier.fullmatch(name) for name in names), names
    return names


def document(table: Table, row: Row | None) -> dict[str, Any] | None:
    """A row as the audit log keeps it: secrets left out, bytes as hex."""
    if row is None:
        return None
    kept: dict[str, Any] = {}
    for name, value in dict(row).items():
        if name in table.secret_columns:
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            kept[name] = bytes(value).hex()
        elif isinstance(value, datetime):
            kept[name] = value.isoformat()
        else:
            kept[name] = value
    return kept


class Writing:
    """One open back-office transaction of one business."""

    def __init__(self, connection: Connection, actor: Actor) -> None:
        self.connection = connection
        self.actor = actor

    async def locked(self, table: Table, key: object) -> Row | None:
        """The row of this business with this key, locked until the commit."""
        return _dict(
            await self.connection.fetchrow(
                f"SELECT * FROM {table.name} WHERE business_id = $1 AND {table.key} = $2"
                " FOR UPDATE",
                self.actor.business_id,
                key,
            )
        )

    async def inserted(self, table: Table, values: Mapping[str, object]) -> Row:
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
        return dict(row)

    async def updated(self, table: Table, key: object, values: Mapping[str, object]) -> Row:
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
        return dict(row)

    async def archived(self, table: Table, key: object) -> Row:
        """Archive a row locked before (now, by the database's clock); version grows."""
        row = await self.connection.fetchrow(
            f"UPDATE {table.name} SET archived_at = now(), version = version + 1"
            f" WHERE business_id = $1 AND {table.key} = $2 RETURNING *",
            self.actor.business_id,
            key,
        )
        assert row is not None, "archive a row locked in this transaction"
        return dict(row)

    async def record(
        self,
        action: str,
        table: Table,
        resource_id: object,
        before: Row | None,
        after: Row | None,
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


BUSINESSES = Table("businesses", "business_id")


def _dict(row: asyncpg.Record | None) -> Row | None:
    return None if row is None else dict(row)


def connection_of(writing: ports.Writing) -> Connection:
    """The connection of a `Writing` this module opened (resource stores run their own
    statements in the same transaction)."""
    assert isinstance(writing, Writing)
    return writing.connection


class BackOfficeWrites:
    """Opens back-office transactions on the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def writing(self, actor: Actor) -> AsyncIterator[Writing]:
        async with self._pool.acquire() as connection, connection.transaction():
            yield Writing(connection, actor)

    @asynccontextmanager
    async def founding(self, values: Mapping[str, object]) -> AsyncIterator[Writing]:
        """A new business row, and a Writing of the operator in that business: whatever
        else the block writes commits with the business, or nothing does."""
        names = _column_names(values)
        placeholders = ", ".join(f"${index}" for index in range(1, len(names) + 1))
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                f"INSERT INTO businesses ({', '.join(names)}) VALUES ({placeholders}) RETURNING *",
                *values.values(),
            )
            assert row is not None
            writing = Writing(connection, operator_actor(row["business_id"]))
            await writing.record("create", BUSINESSES, row["business_id"], None, dict(row))
            yield writing


class BackOfficeReads:
    """Rows of one business by key, and keyset pages of them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def row(self, table: Table, business_id: int, key: object) -> Row | None:
        return _dict(
            await self._pool.fetchrow(
                f"SELECT * FROM {table.name} WHERE business_id = $1 AND {table.key} = $2",
                business_id,
                key,
            )
        )

    async def page(
        self,
        table: Table,
        business_id: int,
        after_key: int | str,
        limit: int,
        show_archived: bool,
        equal: Mapping[str, object] | None = None,
    ) -> Sequence[Row]:
        """Rows in key order after `after_key`, at most `limit` + 1 (the extra one tells
        whether another page follows); archived rows only when asked; only rows whose
        columns have the values `equal` names (a list within a parent)."""
        archived = "" if show_archived else f" AND {table.archived_column} IS NULL"
        equal = equal or {}
        names = _column_names(equal) if equal else []
        within = "".join(f" AND {name} = ${index}" for index, name in enumerate(names, 4))
        rows = await self._pool.fetch(
            f"SELECT * FROM {table.name} WHERE business_id = $1 AND {table.key} > $2{archived}"
            f"{within} ORDER BY {table.key} LIMIT $3",
            business_id,
            after_key,
            limit + 1,
            *equal.values(),
        )
        return [dict(row) for row in rows]
