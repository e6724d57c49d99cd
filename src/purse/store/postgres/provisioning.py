"""Creating businesses and their setup: programs, categories, points of sale, terminals,
API keys, account types, goods. Used by `purse demo`, the tests, and (later) the control
panel. Secrets arrive already hashed; this module never sees a plain password or key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from purse.domain.customers import PocketKind
from purse.domain.terminals import TerminalKind


class Provisioning:
    """One statement per call; every id returned is the new row's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _id(self, sql: str, *arguments: object) -> int:
        value = await self._pool.fetchval(sql, *arguments)
        if not isinstance(value, int):
            raise RuntimeError(f"provisioning returned no id ({sql.split(maxsplit=1)[0]} ...)")
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

    async def admin_api_key(self, business_id: int, key_digest: bytes, name: str) -> int:
        """A key of the business's keys-only owner (made on first use; it cannot sign in:
        its password hash matches nothing)."""
        return await self._id(
            "WITH made AS ("
            "  INSERT INTO administrators (business_id, login, name, role, password_hash)"
            "  VALUES ($1, 'owner-' || $1::bigint, 'Owner', 'owner', '!')"
            "  ON CONFLICT (login) DO NOTHING RETURNING administrator_id"
            "), owner AS ("
            "  SELECT administrator_id FROM made UNION ALL"
            "  SELECT administrator_id FROM administrators"
            "   WHERE business_id = $1 AND login = 'owner-' || $1::bigint"
            ") INSERT INTO admin_api_keys (business_id, administrator_id, key_hash, name)"
            "  SELECT $1, administrator_id, $2, $3 FROM owner LIMIT 1 RETURNING api_key_id",
            business_id,
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
        redemption_limit_without_pin: int | None = None,
        purchases_per_reward: int = 0,
    ) -> int:
        assert kind is not PocketKind.POINTS
        return await self._id(
            "INSERT INTO account_types (business_id, kind, name, title, product_codes,"
            "                           redemption_limit_without_pin, purchases_per_reward)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING account_type_id",
            business_id,
            kind.value,
            name,
            title,
            list(product_codes),
            redemption_limit_without_pin,
            purchases_per_reward,
        )

    async def coupon_series(
        self,
        business_id: int,
        name: str,
        kind: str,
        value: int,
        product_codes: Sequence[str] = (),
        check_sum_min_minor_units: int = 0,
        coupons_max: int | None = None,
    ) -> int:
        return await self._id(
            "INSERT INTO coupon_series (business_id, name, title, kind, value, product_codes,"
            "                           check_sum_min_minor_units, coupons_max)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING series_id",
            business_id,
            name,
            {"en": name},
            kind,
            value,
            list(product_codes),
            check_sum_min_minor_units,
            coupons_max,
        )

    async def coupon(
        self, business_id: int, series_id: int, code: str, customer_id: int | None
    ) -> int:
        """Issue one coupon of a series; the series' cap refuses one too many."""
        return await self._id(
            "WITH counted AS ("
            "  UPDATE coupon_series SET coupons_issued = coupons_issued + 1"
            "   WHERE business_id = $1 AND series_id = $2 RETURNING series_id"
            ") INSERT INTO coupons (business_id, series_id, code, customer_id)"
            "  SELECT $1, series_id, $3, $4 FROM counted RETURNING coupon_id",
            business_id,
            series_id,
            code,
            customer_id,
        )

    async def certificate(self, business_id: int, code: str, balance_minor_units: int) -> int:
        return await self._id(
            "INSERT INTO certificates (business_id, code, balance_minor_units)"
            " VALUES ($1, $2, $3) RETURNING certificate_id",
            business_id,
            code,
            balance_minor_units,
        )

    async def points_lot(
        self, business_id: int, customer_id: int, points: int, expires_at: datetime
    ) -> int:
        """Credit special (expiring) points: the balance and a lot, with a ledger entry."""
        return await self._id(
            "WITH pocket AS ("
            "  UPDATE pockets SET balance = balance + $3, updated_at = now()"
            "   WHERE business_id = $1 AND customer_id = $2 AND account_type_id = 0"
            "  RETURNING pocket_id"
            "), entry AS ("
            "  INSERT INTO ledger_entries (business_id, pocket_id, kind, amount, expires_at)"
            "  SELECT $1, pocket_id, 'adjust', $3, $4 FROM pocket"
            ") INSERT INTO points_lots (business_id, pocket_id, remaining, expires_at)"
            "  SELECT $1, pocket_id, $3, $4 FROM pocket RETURNING lot_id",
            business_id,
            customer_id,
            points,
            expires_at,
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
