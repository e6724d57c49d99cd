"""The customer's card: what the membership row does not say (lots, coupons, consent),
the ledger, and profile and card changes inside a back-office Writing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from purse.domain.identifiers import IdentifierKind
from purse.service.ports import Row, Writing
from purse.store.postgres.back_office import connection_of
from purse.store.postgres.customers import ATTACH_IDENTIFIER, DETACH_IDENTIFIER

coupons_on_card_max = 100

_extras = """
SELECT m.personal_data_consent, m.created_at, m.profile_version,
       ARRAY(SELECT ROW(l.lot_id, l.remaining, l.expires_at)
               FROM points_lots l
               JOIN pockets p ON p.business_id = l.business_id AND p.pocket_id = l.pocket_id
              WHERE p.business_id = m.business_id AND p.customer_id = m.customer_id
                AND p.account_type_id = 0 AND l.remaining > 0 AND l.expires_at > now()
              ORDER BY l.expires_at, l.lot_id) AS lots,
       ARRAY(SELECT ROW(c.coupon_id, c.code, c.series_id, s.name, c.status, c.issued_at,
                        c.expires_at)
               FROM coupons c
               JOIN coupon_series s ON s.business_id = c.business_id AND s.series_id = c.series_id
              WHERE c.business_id = m.business_id AND c.customer_id = m.customer_id
                AND c.status IN ('issued', 'reserved')
              ORDER BY c.coupon_id DESC LIMIT $3) AS coupons
  FROM memberships m
 WHERE m.business_id = $1 AND m.customer_id = $2
"""


class CustomerCardStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def extras(self, business_id: int, customer_id: int) -> Row | None:
        row = await self._pool.fetchrow(_extras, business_id, customer_id, coupons_on_card_max)
        return None if row is None else dict(row)

    async def ledger(
        self, business_id: int, customer_id: int, before_entry: int, limit: int
    ) -> Sequence[Row]:
        """Entries of the customer's pockets, newest first, before `before_entry` (0: all)."""
        rows = await self._pool.fetch(
            "SELECT e.entry_id, p.account_type_id, e.kind, e.amount, e.held_amount,"
            "       e.transaction_id, e.expires_at, e.created_at"
            "  FROM ledger_entries e"
            "  JOIN pockets p ON p.business_id = e.business_id AND p.pocket_id = e.pocket_id"
            " WHERE e.business_id = $1 AND p.customer_id = $2 AND ($3 = 0 OR e.entry_id < $3)"
            " ORDER BY e.entry_id DESC LIMIT $4",
            business_id,
            customer_id,
            before_entry,
            limit + 1,
        )
        return [dict(row) for row in rows]

    async def locked_profile(self, writing: Writing, customer_id: int) -> Row | None:
        row = await connection_of(writing).fetchrow(
            "SELECT customer_id, category_id, access_type, given_name, family_name, language,"
            "       personal_data_consent, profile_version"
            "  FROM memberships WHERE business_id = $1 AND customer_id = $2 FOR UPDATE",
            writing.actor.business_id,
            customer_id,
        )
        return None if row is None else dict(row)

    async def live_category(self, writing: Writing, category_id: int) -> bool:
        return bool(
            await connection_of(writing).fetchval(
                "SELECT EXISTS (SELECT 1 FROM customer_categories WHERE business_id = $1"
                " AND category_id = $2 AND archived_at IS NULL)",
                writing.actor.business_id,
                category_id,
            )
        )

    async def update_profile(self, writing: Writing, customer_id: int, profile: Row) -> Row:
        row = await connection_of(writing).fetchrow(
            "UPDATE memberships SET category_id = $3, access_type = $4, given_name = $5,"
            "       family_name = $6, language = $7, personal_data_consent = $8,"
            "       profile_version = profile_version + 1"
            " WHERE business_id = $1 AND customer_id = $2"
            " RETURNING customer_id, category_id, access_type, given_name, family_name,"
            "           language, personal_data_consent, profile_version",
            writing.actor.business_id,
            customer_id,
            profile["category_id"],
            profile["access_type"],
            profile["given_name"],
            profile["family_name"],
            profile["language"],
            profile["personal_data_consent"],
        )
        assert row is not None, "update a profile locked in this transaction"
        return dict(row)

    async def add_card(
        self, writing: Writing, customer_id: int, kind: IdentifierKind, value: str
    ) -> int | None:
        """The customer holding the card now (another one: taken), None if not a member."""
        row: Any = await connection_of(writing).fetchrow(
            ATTACH_IDENTIFIER,
            writing.actor.business_id,
            customer_id,
            kind.value,
            value,
        )
        return None if row["member"] is None else int(row["holder"])

    async def remove_card(
        self, writing: Writing, customer_id: int, kind: IdentifierKind, value: str
    ) -> bool:
        status = await connection_of(writing).execute(
            DETACH_IDENTIFIER,
            writing.actor.business_id,
            customer_id,
            kind.value,
            value,
        )
        return str(status).endswith(" 1")
