"""Creating businesses and their setup: programs, categories, points of sale, terminals,
API keys, account types, goods. Used by `purse demo`, the tests, and (later) the control
panel. Secrets arrive already hashed; this module never sees a plain password or key.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from purse.domain.customers import PocketKind
from purse.domain.terminals import TerminalKind


class Provisioning:
    """One statement per call; every id returned is the new row's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _id(self, sql: str, *arguments: object) -> int:
        value = await self._pool.fetchval(sql, *arguments)
        assert isinstance(value, int)
        return value

    async def business(
        self,
        name: str,
        currency: str,
        currency_exponent: int,
        phone_prefix: str = "",
        time_zone: str = "UTC",
        default_category: str = "New customers",
        default_category_title: dict[str, str] | None = None,
    ) -> int:
        """A business with its default customer category."""
        return await self._id(
            "WITH business AS ("
            "  INSERT INTO businesses (name, currency, currency_exponent, phone_prefix, time_zone)"
            "  VALUES ($1, $2, $3, $4, $5) RETURNING business_id"
            "), category AS ("
            "  INSERT INTO customer_categories (business_id, name, title, is_default)"
            "  SELECT business_id, $6, $7, true FROM business"
            ") SELECT business_id FROM business",
            name,
            currency,
            currency_exponent,
            phone_prefix,
            time_zone,
            default_category,
            default_category_title or {"en": default_category},
        )

    async def program(
        self,
        business_id: int,
        name: str,
        enrols_unknown_phones: bool = True,
        default_access_type: str = "full",
    ) -> int:
        return await self._id(
            "INSERT INTO loyalty_programs"
            " (business_id, name, enrols_unknown_phones, default_access_type)"
            " VALUES ($1, $2, $3, $4) RETURNING program_id",
            business_id,
            name,
            enrols_unknown_phones,
            default_access_type,
        )

    async def category(self, business_id: int, name: str, title: dict[str, str]) -> int:
        return await self._id(
            "INSERT INTO customer_categories (business_id, name, title)"
            " VALUES ($1, $2, $3) RETURNING category_id",
            business_id,
            name,
            title,
        )

    async def point_of_sale(
        self, business_id: int, program_id: int, name: str, time_zone: str = "UTC"
    ) -> int:
        return await self._id(
            "INSERT INTO points_of_sale (business_id, program_id, name, time_zone)"
            " VALUES ($1, $2, $3, $4) RETURNING point_of_sale_id",
            business_id,
            program_id,
            name,
            time_zone,
        )

    async def terminal(
        self,
        business_id: int,
        point_of_sale_id: int,
        name: str,
        kind: TerminalKind,
        login: str,
        password_hash: str,
    ) -> int:
        return await self._id(
            "INSERT INTO terminals"
            " (business_id, point_of_sale_id, name, kind, login, password_hash)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING terminal_id",
            business_id,
            point_of_sale_id,
            name,
            kind.value,
            login,
            password_hash,
        )

    async def set_terminal_enabled(self, business_id: int, terminal_id: int, enabled: bool) -> None:
        await self._pool.execute(
            "UPDATE terminals SET enabled = $3 WHERE business_id = $1 AND terminal_id = $2",
            business_id,
            terminal_id,
            enabled,
        )

    async def api_key(
        self, business_id: int, terminal_id: int, key_digest: bytes, name: str
    ) -> int:
        return await self._id(
            "INSERT INTO terminal_api_keys (business_id, terminal_id, key_hash, name)"
            " VALUES ($1, $2, $3, $4) RETURNING api_key_id",
            business_id,
            terminal_id,
            key_digest,
            name,
        )

    async def account_type(
        self,
        business_id: int,
        kind: PocketKind,
        name: str,
        title: dict[str, str],
        product_codes: Sequence[str] = (),
        redemption_limit_without_pin: int = 0,
    ) -> int:
        assert kind is not PocketKind.POINTS
        return await self._id(
            "INSERT INTO account_types"
            " (business_id, kind, name, title, product_codes, redemption_limit_without_pin)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING account_type_id",
            business_id,
            kind.value,
            name,
            title,
            list(product_codes),
            redemption_limit_without_pin,
        )

    async def goods_category(self, business_id: int, code: str, name: str) -> int:
        return await self._id(
            "INSERT INTO goods_categories (business_id, code, name)"
            " VALUES ($1, $2, $3) RETURNING goods_category_id",
            business_id,
            code,
            name,
        )

    async def goods(
        self,
        business_id: int,
        items: Sequence[tuple[str, str, int, int | None]],
    ) -> None:
        """(product code, title, price in minor units, goods category id) rows, in one go."""
        await self._pool.execute(
            "INSERT INTO goods (business_id, product_code, title, price_minor_units,"
            "                   goods_category_id)"
            " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[])",
            business_id,
            [item[0] for item in items],
            [item[1] for item in items],
            [item[2] for item in items],
            [item[3] for item in items],
        )

    async def adjust_pocket(
        self, business_id: int, customer_id: int, account_type_id: int, amount: int
    ) -> None:
        """Credit (or, negative, debit) a pocket with an `adjust` ledger entry, creating it."""
        await self._pool.execute(
            "WITH pocket AS ("
            "  INSERT INTO pockets (business_id, customer_id, account_type_id, balance)"
            "  VALUES ($1, $2, $3, $4)"
            "  ON CONFLICT (business_id, customer_id, account_type_id)"
            "  DO UPDATE SET balance = pockets.balance + EXCLUDED.balance, updated_at = now()"
            "  RETURNING pocket_id"
            ") INSERT INTO ledger_entries (business_id, pocket_id, kind, amount)"
            "  SELECT $1, pocket_id, 'adjust', $4 FROM pocket",
            business_id,
            customer_id,
            account_type_id,
            amount,
        )
