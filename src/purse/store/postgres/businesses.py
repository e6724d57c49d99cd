"""What business settings need beyond their row."""

from __future__ import annotations

from purse.service.ports import Writing
from purse.store.postgres.back_office import connection_of


class BusinessStore:
    async def has_transactions(self, writing: Writing) -> bool:
        return bool(
            await connection_of(writing).fetchval(
                "SELECT EXISTS (SELECT 1 FROM transactions WHERE business_id = $1)",
                writing.actor.business_id,
            )
        )
