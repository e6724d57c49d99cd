"""What programs, points of sale and terminals need beyond plain rows, run inside a
`Writing`: how many live things still use one (counted while the used row is locked, so
none is added meanwhile), and revoking terminals' API keys."""

from __future__ import annotations

from purse.service.ports import Row, Writing
from purse.store.postgres.back_office import connection_of

_points_of_sale_running = (
    "SELECT count(*) FROM points_of_sale"
    " WHERE business_id = $1 AND program_id = $2 AND archived_at IS NULL"
)
_terminals_at = (
    "SELECT count(*) FROM terminals"
    " WHERE business_id = $1 AND point_of_sale_id = $2 AND archived_at IS NULL"
)


class SetupStore:
    async def points_of_sale_running(self, writing: Writing, program_id: int) -> int:
        """How many live points of sale of the business run the program."""
        return await _count(writing, _points_of_sale_running, program_id)

    async def terminals_at(self, writing: Writing, point_of_sale_id: int) -> int:
        """How many live terminals of the business are at the point of sale."""
        return await _count(writing, _terminals_at, point_of_sale_id)

    async def revoked_key(self, writing: Writing, api_key_id: int) -> Row:
        """Revoke a terminal API key locked in this transaction (now, by the database's
        clock); its row as it is now."""
        row = await connection_of(writing).fetchrow(
            "UPDATE terminal_api_keys SET revoked_at = now()"
            " WHERE business_id = $1 AND api_key_id = $2 RETURNING *",
            writing.actor.business_id,
            api_key_id,
        )
        assert row is not None, "revoke a key locked in this transaction"
        return dict(row)

    async def revoke_keys_of(self, writing: Writing, terminal_id: int) -> None:
        """Revoke every working key of a terminal (it is being archived)."""
        await connection_of(writing).execute(
            "UPDATE terminal_api_keys SET revoked_at = now()"
            " WHERE business_id = $1 AND terminal_id = $2 AND revoked_at IS NULL",
            writing.actor.business_id,
            terminal_id,
        )


async def _count(writing: Writing, sql: str, key: int) -> int:
    count = await connection_of(writing).fetchval(sql, writing.actor.business_id, key)
    return int(count)
