"""Administrators and their credentials, and the operator's keys.

Reads resolve a credential to an `AdministratorContext` (with the role and a stamp of the
password hash, so a new password makes older tokens stale); archived administrators and
revoked keys resolve to nothing. Keys are stored as SHA-256 digests, passwords as scrypt
hashes; neither ever leaves this module except the hash, to sign-in.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from purse.domain.administrators import AdministratorContext, Role
from purse.service.ports import Row, Writing
from purse.store.postgres.back_office import connection_of

_context_columns = """
    a.business_id, b.currency, a.administrator_id, a.login, a.role,
    substr(sha256(convert_to(a.password_hash, 'UTF8')), 1, 8) AS credential_stamp
"""


def _context(row: asyncpg.Record) -> AdministratorContext:
    return AdministratorContext(
        business_id=row["business_id"],
        currency=row["currency"],
        administrator_id=row["administrator_id"],
        login=row["login"],
        role=Role(row["role"]),
        credential_stamp=bytes(row["credential_stamp"]),
    )


class AdministratorStore:
    """Finds administrators by credential; writes keys inside a back-office Writing."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_api_key(self, key_digest: bytes) -> AdministratorContext | None:
        row = await self._pool.fetchrow(
            f"SELECT {_context_columns} FROM admin_api_keys k"
            "  JOIN administrators a"
            "    ON a.business_id = k.business_id AND a.administrator_id = k.administrator_id"
            "  JOIN businesses b ON b.business_id = a.business_id"
            " WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND a.archived_at IS NULL",
            key_digest,
        )
        return None if row is None else _context(row)

    async def by_id(self, business_id: int, administrator_id: int) -> AdministratorContext | None:
        row = await self._pool.fetchrow(
            f"SELECT {_context_columns} FROM administrators a"
            "  JOIN businesses b ON b.business_id = a.business_id"
            " WHERE a.business_id = $1 AND a.administrator_id = $2 AND a.archived_at IS NULL",
            business_id,
            administrator_id,
        )
        return None if row is None else _context(row)

    async def for_sign_in(self, login: str) -> tuple[AdministratorContext, str] | None:
        row = await self._pool.fetchrow(
            f"SELECT {_context_columns}, a.password_hash FROM administrators a"
            "  JOIN businesses b ON b.business_id = a.business_id"
            " WHERE a.login = $1 AND a.archived_at IS NULL",
            login,
        )
        return None if row is None else (_context(row), row["password_hash"])

    async def password_hash(self, business_id: int, administrator_id: int) -> str | None:
        value = await self._pool.fetchval(
            "SELECT password_hash FROM administrators"
            " WHERE business_id = $1 AND administrator_id = $2",
            business_id,
            administrator_id,
        )
        return value if isinstance(value, str) else None

    async def owners_left(self, writing: Writing, administrator_id: int) -> int:
        """Active owners other than this administrator (locked until the commit)."""
        count = await connection_of(writing).fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM administrators"
            "  WHERE business_id = $1 AND role = 'owner' AND archived_at IS NULL"
            "    AND administrator_id <> $2 FOR UPDATE) owners",
            writing.actor.business_id,
            administrator_id,
        )
        return int(count)

    async def add_key(
        self, writing: Writing, administrator_id: int, name: str, key_digest: bytes
    ) -> Row:
        row = await connection_of(writing).fetchrow(
            "INSERT INTO admin_api_keys (business_id, administrator_id, name, key_hash)"
            " VALUES ($1, $2, $3, $4) RETURNING *",
            writing.actor.business_id,
            administrator_id,
            name,
            key_digest,
        )
        assert row is not None
        return dict(row)

    async def revoke_key(self, writing: Writing, api_key_id: int) -> tuple[Row, Row] | None:
        """(before, after) of revoking a live key; None when there is no such live key."""
        connection = connection_of(writing)
        before = await connection.fetchrow(
            "SELECT * FROM admin_api_keys WHERE business_id = $1 AND api_key_id = $2"
            " AND revoked_at IS NULL FOR UPDATE",
            writing.actor.business_id,
            api_key_id,
        )
        if before is None:
            return None
        after = await connection.fetchrow(
            "UPDATE admin_api_keys SET revoked_at = now()"
            " WHERE business_id = $1 AND api_key_id = $2 RETURNING *",
            writing.actor.business_id,
            api_key_id,
        )
        assert after is not None
        return dict(before), dict(after)

    async def revoke_keys_of(self, writing: Writing, administrator_id: int) -> None:
        await connection_of(writing).execute(
            "UPDATE admin_api_keys SET revoked_at = now()"
            " WHERE business_id = $1 AND administrator_id = $2 AND revoked_at IS NULL",
            writing.actor.business_id,
            administrator_id,
        )

    async def keys(
        self,
        business_id: int,
        administrator_id: int,
        after_key: int,
        limit: int,
        show_revoked: bool,
    ) -> Sequence[Row]:
        rows = await self._pool.fetch(
            "SELECT * FROM admin_api_keys WHERE business_id = $1 AND api_key_id > $2"
            "   AND ($3 = 0 OR administrator_id = $3) AND ($4 OR revoked_at IS NULL)"
            " ORDER BY api_key_id LIMIT $5",
            business_id,
            after_key,
            administrator_id,
            show_revoked,
            limit + 1,
        )
        return [dict(row) for row in rows]

    async def key(self, business_id: int, api_key_id: int) -> Row | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM admin_api_keys WHERE business_id = $1 AND api_key_id = $2",
            business_id,
            api_key_id,
        )
        return None if row is None else dict(row)

    async def audit_entries(
        self, business_id: int, resource: str, resource_id: str, before_entry: int, limit: int
    ) -> Sequence[Row]:
        """Newest first, before `before_entry` (0: from the newest)."""
        rows = await self._pool.fetch(
            "SELECT * FROM audit_log WHERE business_id = $1"
            "   AND ($2 = '' OR resource = $2) AND ($3 = '' OR resource_id = $3)"
            "   AND ($4 = 0 OR entry_id < $4)"
            " ORDER BY entry_id DESC LIMIT $5",
            business_id,
            resource,
            resource_id,
            before_entry,
            limit + 1,
        )
        return [dict(row) for row in rows]


class OperatorKeyStore:
    """The operator's API keys (digests), on the server's machine only."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, name: str, key_digest: bytes) -> int:
        value = await self._pool.fetchval(
            "INSERT INTO operator_api_keys (name, key_hash) VALUES ($1, $2) RETURNING api_key_id",
            name,
            key_digest,
        )
        assert isinstance(value, int)
        return value

    async def revoke(self, api_key_id: int) -> None:
        await self._pool.execute(
            "UPDATE operator_api_keys SET revoked_at = now()"
            " WHERE api_key_id = $1 AND revoked_at IS NULL",
            api_key_id,
        )

    async def known(self, key_digest: bytes) -> bool:
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM operator_api_keys"
                " WHERE key_hash = $1 AND revoked_at IS NULL)",
                key_digest,
            )
        )
