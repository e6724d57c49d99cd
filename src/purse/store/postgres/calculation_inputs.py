"""Everything a check calculation reads besides the membership, in one round trip:
the program's rules version, the customer's live points lots, the business's active
account types, the coupons (each expiring when it or its series does) and the active
certificates the cashier named, the catalogue's goods
categories of the check's products, and which of the category codes the lines name
the catalogue knows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from purse.domain.calculation import (
    AccountTypeRow,
    CalculationInputs,
    CertificateRow,
    CouponRow,
    LotRow,
)

_inputs_query = """
SELECT
  (SELECT rules_version FROM loyalty_programs
    WHERE business_id = $1 AND program_id = $2) AS rules_version,
  ARRAY(SELECT ROW(p.customer_id, l.lot_id, l.remaining, l.expires_at)
          FROM points_lots l
          JOIN pockets p ON p.business_id = l.business_id AND p.pocket_id = l.pocket_id
         WHERE l.business_id = $1 AND p.customer_id = ANY($3::bigint[])
           AND p.account_type_id = 0 AND l.remaining > 0
         ORDER BY l.expires_at, l.lot_id) AS lots,
  ARRAY(SELECT ROW(t.account_type_id, t.kind, t.product_codes,
                   t.redemption_limit_without_pin, t.purchases_per_reward, t.name,
                   t.title::text)
          FROM account_types t WHERE t.business_id = $1 AND t.archived_at IS NULL
         ORDER BY t.account_type_id) AS account_types,
  ARRAY(SELECT ROW(c.coupon_id, c.code, c.customer_id, c.status,
                   least(c.expires_at, s.valid_until), s.kind,
                   s.value, s.product_codes, s.check_sum_min_minor_units, s.name,
                   s.title::text)
          FROM coupons c
          JOIN coupon_series s ON s.business_id = c.business_id AND s.series_id = c.series_id
         WHERE c.business_id = $1 AND c.code = ANY($4::text[])) AS coupons,
  ARRAY(SELECT ROW(certificate_id, code, balance_minor_units - held_minor_units, expires_at)
          FROM certificates
         WHERE business_id = $1 AND code = ANY($5::text[]) AND archived_at IS NULL
       ) AS certificates,
  ARRAY(SELECT ROW(g.product_code, k.code)
          FROM goods g
          JOIN goods_categories k
            ON k.business_id = g.business_id AND k.goods_category_id = g.goods_category_id
         WHERE g.business_id = $1 AND g.product_code = ANY($6::text[])) AS goods_categories,
  ARRAY(SELECT code FROM goods_categories
         WHERE business_id = $1 AND code = ANY($7::text[])) AS known_goods_categories
"""


class CalculationInputStore:
    """One query per check, scoped by business."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def inputs(
        self,
        business_id: int,
        program_id: int,
        customer_ids: Sequence[int],
        coupon_codes: Sequence[str],
        certificate_codes: Sequence[str],
        uncategorised_product_codes: Sequence[str],
        goods_category_codes: Sequence[str] = (),
    ) -> CalculationInputs:
        """The inputs of one check, or of many at once (a stream message)."""
        row = await self._pool.fetchrow(
            _inputs_query,
            business_id,
            program_id,
            list(customer_ids),
            list(coupon_codes),
            list(certificate_codes),
            list(uncategorised_product_codes),
            list(goods_category_codes),
        )
        assert row is not None
        return CalculationInputs(
            rules_version=row["rules_version"],
            lots_by_customer=_lots_by_customer(row["lots"]),
            account_types={values[0]: _account_type(values) for values in row["account_types"]},
            coupons={values[1]: _coupon(values) for values in row["coupons"]},
            certificates={values[1]: CertificateRow(*values) for values in row["certificates"]},
            goods_categories=dict(row["goods_categories"]),
            known_goods_categories=frozenset(row["known_goods_categories"]),
        )


def _lots_by_customer(rows: Sequence[Any]) -> dict[int, tuple[LotRow, ...]]:
    lots: dict[int, list[LotRow]] = {}
    for customer_id, *values in rows:
        lots.setdefault(customer_id, []).append(LotRow(*values))
    return {customer_id: tuple(found) for customer_id, found in lots.items()}


def _account_type(values: Sequence[Any]) -> AccountTypeRow:
    account_type_id, kind, codes, limit, per_reward, name, title = values
    return AccountTypeRow(
        account_type_id, kind, tuple(codes), limit, per_reward, name, json.loads(title)
    )


def _coupon(values: Sequence[Any]) -> CouponRow:
    # The title comes as text: jsonb inside an anonymous record skips the jsonb codec.
    coupon_id, code, customer_id, status, expires_at, kind, value = values[:7]
    codes, minimum, name, title = values[7:]
    return CouponRow(
        coupon_id,
        code,
        customer_id,
        status,
        expires_at,
        kind,
        value,
        tuple(codes),
        minimum,
        name,
        json.loads(title),
    )
