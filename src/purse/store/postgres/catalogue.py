"""Reading a business's customer categories and account types in one round trip."""

from __future__ import annotations

import json

import asyncpg

from purse.domain.catalogue import AccountType, Catalogue, CustomerCategory
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
            "        WHERE business_id = $1 ORDER BY account_type_id) AS account_types",
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
