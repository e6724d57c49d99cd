"""Terminal lookups for authentication; every query returns a full TerminalContext."""

from __future__ import annotations

import asyncpg

from purse.domain.terminals import NoticeChannel, TerminalContext, TerminalKind

_context_columns = """
    t.business_id, b.name AS business_name, t.point_of_sale_id,
    s.name AS point_of_sale_name, t.terminal_id, t.name AS terminal_name, t.kind,
    t.enabled, s.program_id, p.name AS program_name, b.currency, b.currency_exponent,
    b.phone_prefix, s.time_zone, p.enrols_unknown_phones, p.default_access_type,
    p.notice_channel,
    substr(sha256(convert_to(t.password_hash, 'UTF8')), 1, 8) AS credential_stamp
"""
_context_joins = """
    FROM terminals t
    JOIN businesses b ON b.business_id = t.business_id
    JOIN points_of_sale s
      ON s.business_id = t.business_id AND s.point_of_sale_id = t.point_of_sale_id
    JOIN loyalty_programs p ON p.business_id = s.business_id AND p.program_id = s.program_id
"""
# An archived terminal is not found: its password, tokens and keys stop working.
_live = "t.archived_at IS NULL"


def _context(row: asyncpg.Record) -> TerminalContext:
    return TerminalContext(
        business_id=row["business_id"],
        business_name=row["business_name"],
        point_of_sale_id=row["point_of_sale_id"],
        point_of_sale_name=row["point_of_sale_name"],
        terminal_id=row["terminal_id"],
        terminal_name=row["terminal_name"],
        kind=TerminalKind(row["kind"]),
        enabled=row["enabled"],
        program_id=row["program_id"],
        program_name=row["program_name"],
        currency=row["currency"],
        currency_exponent=row["currency_exponent"],
        phone_prefix=row["phone_prefix"],
        time_zone=row["time_zone"],
        enrols_unknown_phones=row["enrols_unknown_phones"],
        default_access_type=row["default_access_type"],
        credential_stamp=bytes(row["credential_stamp"]),
        notice_channel=NoticeChannel(row["notice_channel"]),
    )


class TerminalStore:
    """Reads terminals; never returns a password hash except to sign-in."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def for_sign_in(self, login: str) -> tuple[TerminalContext, str] | None:
        row = await self._pool.fetchrow(
            f"SELECT {_context_columns}, t.password_hash {_context_joins}"
            f" WHERE t.login = $1 AND {_live}",
            login,
        )
        return None if row is None else (_context(row), row["password_hash"])

    async def by_id(self, business_id: int, terminal_id: int) -> TerminalContext | None:
        row = await self._pool.fetchrow(
            f"SELECT {_context_columns} {_context_joins}"
            f" WHERE t.business_id = $1 AND t.terminal_id = $2 AND {_live}",
            business_id,
            terminal_id,
        )
        return None if row is None else _context(row)

    async def by_api_key(self, key_digest: bytes) -> TerminalContext | None:
        row = await self._pool.fetchrow(
            f"SELECT {_context_columns} {_context_joins}"
            " JOIN terminal_api_keys k"
            "   ON k.business_id = t.business_id AND k.terminal_id = t.terminal_id"
            f" WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND {_live}",
            key_digest,
        )
        return None if row is None else _context(row)
