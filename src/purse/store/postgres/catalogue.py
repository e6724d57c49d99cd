"""Reading a business's setup: customer categories and account types in one round trip,
goods and goods categories by keyset pages (the primary key's order: product code, and
the unique (business, code) of active categories), so a page costs the same deep in a
list. Archived account types, goods and goods categories are no longer offered."""

from __future__ import annotations

import json

import asyncpg

from purse.domain.catalogue import (
    AccountType,
    Catalogue,
    CustomerCategory,
    Goods,
    GoodsCategory,
)
from purse.domain.customers import PocketKind


class CatalogueStore:
    """Business-scoped reads of setup data."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def catalogue(self, business_id: int) -> Catalogue:
        row = await self._pool.fetchrow(
            "SELECT"
            " ARRAY(SELECT ROW(category_id, name, title::text, is_default) FROM customer_categories"
            "        WHERE business_id = $1 ORDER BY category_id) AS categories,"
            " ARRAY(SELECT ROW(account_type_id, kind, name, title::text, product_codes,"
            "                  redemption_limit_without_pin, purchases_per_reward)"
            "        FROM account_types"
            "        WHERE business_id = $1 AND archived_at IS NULL"
            "        ORDER BY account_type_id) AS account_types",
            business_id,
        )
        assert row is not None
        return Catalogue(
            customer_categories=tuple(
                CustomerCategory(category_id, name, json.loads(title), is_default)
                for category_id, name, title, is_default in row["categories"]
            ),
            account_types=tuple(
                AccountType(
                    type_id,
                    PocketKind(kind),
                    name,
                    json.loads(title),
                    tuple(codes),
                    limit,
                    per_reward,
                )
                for type_id, kind, name, title, codes, limit, per_reward in row["account_types"]
            ),
        )

    async def goods_page(
        self, business_id: int, after: str | None, limit: int, goods_category_code: str | None
    ) -> list[Goods]:
        """Goods by product code after `after`, of one category when a code is given."""
        rows = await self._pool.fetch(
            "SELECT g.product_code, g.title, g.price_minor_units, coalesce(k.code, '') AS code"
            "  FROM goods g"
            "  LEFT JOIN goods_categories k"
            "    ON k.business_id = g.business_id AND k.goods_category_id = g.goods_category_id"
            " WHERE g.business_id = $1 AND g.archived_at IS NULL"
            "   AND ($2::text IS NULL OR g.product_code > $2)"
            "   AND ($4::text IS NULL OR k.code = $4)"
            " ORDER BY g.product_code LIMIT $3",
            business_id,
            after,
            limit,
            goods_category_code,
        )
        return [Goods(*row) for row in rows]

    async def goods_categories_page(
        self, business_id: int, after: str | None, limit: int
    ) -> list[GoodsCategory]:
        """Goods categories by code after `after`."""
        rows = await self._pool.fetch(
            "SELECT code, name FROM goods_categories"
            " WHERE business_id = $1 AND archived_at IS NULL AND ($2::text IS NULL OR code > $2)"
            " ORDER BY code LIMIT $3",
            business_id,
            after,
            limit,
        )
        return [GoodsCategory(*row) for row in rows]
