"""Business administrators' API keys (stored as SHA-256 digests, like terminal keys)."""

from __future__ import annotations

import asyncpg

from purse.domain.administrators import AdministratorContext


class AdministratorStore:
    """Finds the business behind an administrator's key."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_api_key(self, key_digest: bytes) -> AdministratorContext | None:
        row = await self._pool.fetchrow(
            "SELECT k.business_id, b.currency FROM admin_api_keys k"
            "  JOIN businesses b ON b.business_id = k.business_id"
            " WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
            key_digest,
        )
        return None if row is None else AdministratorContext(row["business_id"], row["currency"])
