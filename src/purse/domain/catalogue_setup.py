"""What administrators set in the catalogue, and its validation — pure.

Each draft is what one request sets on a goods category, a product, an account type, a
coupon series or a certificate; `validate_*` adds every wrong field to a `Fields` under
the path the request names it by (`goods[3].price_minor_units`), so one answer lists
them all and nothing partial is ever stored. A price list (`validate_price_list`) is
checked whole before anything is read: its size first (more than `goods_per_upsert_max`
is refused naming `goods` alone), then every item, then that no product code repeats.
Which goods category codes exist is the store's to say; `unknown_category_violations`
turns its answer into violations naming each item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from purse.domain.amounts import basis_points_per_whole
from purse.domain.checks import (
    CouponKind,
    check_sum_max_minor_units,
    price_max_minor_units,
    quantity_max_thousandths,
)
from purse.domain.customers import PocketKind
from purse.domain.errors import FieldViolation, echoed
from purse.domain.setup import Fields

# One UpsertGoods call: 10,000 goods is a supermarket's whole price list.
goods_per_upsert_max: Final = 10_000
# Product codes an account type or a coupon series names.
product_codes_per_setting_max: Final = 1_000
purchases_per_reward_max: Final = 1_000
# In the account's own unit: minor units, thousandths of a product, purchases.
redemption_limit_max: Final = 10**13
coupons_per_series_max: Final = 10**9
coupon_lifetime_days_max: Final = 3_660
certificate_balance_minor_units_max: Final = 10**10
# Titles of account types and coupon series: what a receipt line or a till shows.
title_characters_max: Final = 200

# The kinds a customer account type may have (points are every membership's own).
account_kinds: Final = (PocketKind.MONEY, PocketKind.PRODUCTS, PocketKind.ACHIEVEMENTS)


@dataclass(frozen=True, slots=True)
class GoodsCategoryDraft:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class GoodsDraft:
    product_code: str
    title: str
    price_minor_units: int
    # Empty: no category.
    goods_category_code: str


@dataclass(frozen=True, slots=True)
class AccountTypeDraft:
    # None: not given.
    kind: PocketKind | None
    name: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    product_codes: tuple[str, ...]
    # None: no PIN is ever needed; 0: every payment needs one.
    redemption_limit_without_pin: int | None
    purchases_per_reward: int


@dataclass(frozen=True, slots=True)
class CouponSeriesDraft:
    name: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    # None: not given.
    kind: CouponKind | None
    value: int
    product_codes: tuple[str, ...]
    check_sum_min_minor_units: int
    # None: no cap.
    coupons_max: int | None
    valid_until: datetime | None
    # 0: only `valid_until` bounds a coupon.
    coupon_lifetime_days: int


@dataclass(frozen=True, slots=True)
class CertificateDraft:
    code: str
    balance_minor_units: int
    expires_at: datetime | None


def validate_goods_category(fields: Fields, path: str, draft: GoodsCategoryDraft) -> None:
    fields.code(f"{path}.code", draft.code)
    fields.name(f"{path}.name", draft.name)


def validate_goods(fields: Fields, path: str, draft: GoodsDraft) -> None:
    fields.code(f"{path}.product_code", draft.product_code)
    fields.name(f"{path}.title", draft.title)
    _in_range(
        fields, f"{path}.price_minor_units", draft.price_minor_units, 0, price_max_minor_units
    )
    if draft.goods_category_code:
        fields.code(f"{path}.goods_category_code", draft.goods_category_code)


def validate_price_list(fields: Fields, goods: Sequence[GoodsDraft]) -> None:
    """Every item by its index, and each product code once."""
    if not goods:
        fields.wrong("goods", "at least one product")
        return
    if len(goods) > goods_per_upsert_max:
        fields.wrong("goods", f"at most {goods_per_upsert_max} products per call")
        return
    first_index: dict[str, int] = {}
    for index, draft in enumerate(goods):
        path = f"goods[{index}]"
        validate_goods(fields, path, draft)
        seen = first_index.setdefault(draft.product_code, index)
        if seen != index:
            fields.wrong(f"{path}.product_code", f"goods[{seen}] has this product code too")


def unknown_category_violations(
    goods: Sequence[GoodsDraft], known: Iterable[str]
) -> tuple[FieldViolation, ...]:
    """Items whose goods category code is not one of the business's active categories."""
    codes = frozenset(known)
    return tuple(
        FieldViolation(
            f"goods[{index}].goods_category_code",
            f"{echoed(draft.goods_category_code)} is not an active goods category of this business",
        )
        for index, draft in enumerate(goods)
        if draft.goods_category_code and draft.goods_category_code not in codes
    )


def validate_account_type(fields: Fields, path: str, draft: AccountTypeDraft) -> None:
    if draft.kind not in account_kinds:
        fields.wrong(f"{path}.kind", "money, products or achievements")
    fields.name(f"{path}.name", draft.name)
    fields.localized(f"{path}.title", draft.title, title_characters_max)
    fields.localized(f"{path}.description", draft.description)
    _product_codes(fields, f"{path}.product_codes", draft.product_codes)
    if draft.kind is PocketKind.PRODUCTS and not draft.product_codes:
        fields.wrong(f"{path}.product_codes", "a products account names its products")
    if draft.redemption_limit_without_pin is not None:
        _in_range(
            fields,
            f"{path}.redemption_limit_without_pin",
            draft.redemption_limit_without_pin,
            0,
            redemption_limit_max,
        )
    per_reward = f"{path}.purchases_per_reward"
    if draft.kind is PocketKind.ACHIEVEMENTS:
        _in_range(fields, per_reward, draft.purchases_per_reward, 1, purchases_per_reward_max)
    elif draft.purchases_per_reward:
        fields.wrong(per_reward, "only achievements accounts count purchases: 0")


def validate_coupon_series(fields: Fields, path: str, draft: CouponSeriesDraft) -> None:
    fields.name(f"{path}.name", draft.name)
    fields.localized(f"{path}.title", draft.title, title_characters_max)
    fields.localized(f"{path}.description", draft.description)
    if draft.kind is None:
        fields.wrong(f"{path}.kind", "percent, fixed or free product")
    else:
        _in_range(fields, f"{path}.value", draft.value, 1, _coupon_value_max[draft.kind])
    _product_codes(fields, f"{path}.product_codes", draft.product_codes)
    if draft.kind is CouponKind.FREE_PRODUCT and not draft.product_codes:
        fields.wrong(f"{path}.product_codes", "a free product coupon names its products")
    _in_range(
        fields,
        f"{path}.check_sum_min_minor_units",
        draft.check_sum_min_minor_units,
        0,
        check_sum_max_minor_units,
    )
    if draft.coupons_max is not None:
        _in_range(fields, f"{path}.coupons_max", draft.coupons_max, 1, coupons_per_series_max)
    _in_range(
        fields,
        f"{path}.coupon_lifetime_days",
        draft.coupon_lifetime_days,
        0,
        coupon_lifetime_days_max,
    )


_coupon_value_max: Final = {
    CouponKind.PERCENT: basis_points_per_whole,
    CouponKind.FIXED: price_max_minor_units,
    CouponKind.FREE_PRODUCT: quantity_max_thousandths,
}


def validate_certificate(
    fields: Fields, path: str, draft: CertificateDraft, created: bool = True
) -> None:
    """A new certificate holds something; an existing one may be emptied by hand."""
    fields.code(f"{path}.code", draft.code)
    _in_range(
        fields,
        f"{path}.balance_minor_units",
        draft.balance_minor_units,
        1 if created else 0,
        certificate_balance_minor_units_max,
    )


def _in_range(fields: Fields, path: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        fields.wrong(path, f"from {low:,} to {high:,}")


def _product_codes(fields: Fields, path: str, codes: Sequence[str]) -> None:
    if len(codes) > product_codes_per_setting_max:
        fields.wrong(path, f"at most {product_codes_per_setting_max} product codes")
        return
    seen: set[str] = set()
    for index, code in enumerate(codes):
        fields.code(f"{path}[{index}]", code)
        if code in seen:
            fields.wrong(f"{path}[{index}]", f"{echoed(code)} is named twice")
        seen.add(code)
