"""The catalogue's validation, pure: every wrong field named by its path, a price list
checked whole, and every catalogue RPC declaring the access it needs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.admin.v1 import catalogue_pb2
from purse.api.grpc.admin.calls import access_of
from purse.api.grpc.admin.servicer import AdminServicer
from purse.domain.administrators import Access
from purse.domain.catalogue_setup import (
    AccountTypeDraft,
    CertificateDraft,
    CouponSeriesDraft,
    GoodsDraft,
    goods_per_upsert_max,
    unknown_category_violations,
    validate_account_type,
    validate_certificate,
    validate_coupon_series,
    validate_price_list,
)
from purse.domain.checks import CouponKind, price_max_minor_units
from purse.domain.customers import PocketKind
from purse.domain.setup import Fields

codes = st.from_regex(r"[A-Za-z0-9._:/-]{1,64}", fullmatch=True)
goods = st.builds(
    GoodsDraft,
    codes,
    st.text(min_size=1, max_size=200).filter(str.strip),
    st.integers(0, price_max_minor_units),
    st.one_of(st.just(""), codes),
)


def paths(validate: object, *arguments: object) -> list[str]:
    fields = Fields()
    validate(fields, *arguments)  # type: ignore[operator]
    return [violation.field for violation in fields.violations]


@given(st.lists(goods, min_size=1, max_size=50, unique_by=lambda draft: draft.product_code))
def test_a_price_list_of_valid_goods_with_distinct_codes_passes(items: list[GoodsDraft]) -> None:
    assert paths(validate_price_list, items) == []


@given(
    st.lists(goods, min_size=1, max_size=30, unique_by=lambda draft: draft.product_code),
    st.data(),
)
def test_a_wrong_price_is_named_by_its_index(items: list[GoodsDraft], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    price = data.draw(st.one_of(st.integers(max_value=-1), st.integers(price_max_minor_units + 1)))
    wrong = [*items]
    draft = wrong[index]
    wrong[index] = GoodsDraft(draft.product_code, draft.title, price, draft.goods_category_code)
    assert paths(validate_price_list, wrong) == [f"goods[{index}].price_minor_units"]


@given(st.lists(goods, min_size=2, max_size=30, unique_by=lambda draft: draft.product_code))
def test_a_repeated_product_code_is_named_where_it_repeats(items: list[GoodsDraft]) -> None:
    last = len(items) - 1
    repeated = items[last]
    items[last] = GoodsDraft(items[0].product_code, repeated.title, repeated.price_minor_units, "")
    assert paths(validate_price_list, items) == [f"goods[{last}].product_code"]


def test_a_price_list_too_long_or_empty_is_refused_naming_goods_alone() -> None:
    one = GoodsDraft("A", "A", 1, "")
    assert paths(validate_price_list, [one] * (goods_per_upsert_max + 1)) == ["goods"]
    assert paths(validate_price_list, []) == ["goods"]


def test_unknown_category_codes_are_named_by_index() -> None:
    items = [
        GoodsDraft("A", "A", 1, "tea"),
        GoodsDraft("B", "B", 1, ""),
        GoodsDraft("C", "C", 1, "cake"),
    ]
    violations = unknown_category_violations(items, {"tea"})
    assert [violation.field for violation in violations] == ["goods[2].goods_category_code"]


def account(kind: PocketKind | None, **changes: object) -> AccountTypeDraft:
    fields: dict[str, object] = {
        "kind": kind,
        "name": "Card",
        "title": {"en": "Card"},
        "description": {},
        "product_codes": ("A95",),
        "redemption_limit_without_pin": None,
        "purchases_per_reward": 0,
    }
    return AccountTypeDraft(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("draft", "wrong"),
    [
        (account(PocketKind.MONEY), []),
        (account(PocketKind.POINTS), ["a.kind"]),
        (account(None), ["a.kind"]),
        (account(PocketKind.PRODUCTS, product_codes=()), ["a.product_codes"]),
        (account(PocketKind.MONEY, product_codes=("A", "A")), ["a.product_codes[1]"]),
        (account(PocketKind.ACHIEVEMENTS), ["a.purchases_per_reward"]),
        (account(PocketKind.ACHIEVEMENTS, purchases_per_reward=7), []),
        (account(PocketKind.MONEY, purchases_per_reward=7), ["a.purchases_per_reward"]),
        (account(PocketKind.MONEY, redemption_limit_without_pin=0), []),
        (
            account(PocketKind.MONEY, redemption_limit_without_pin=-1),
            ["a.redemption_limit_without_pin"],
        ),
    ],
)
def test_account_types_are_validated_field_by_field(
    draft: AccountTypeDraft, wrong: list[str]
) -> None:
    assert paths(validate_account_type, "a", draft) == wrong


def series(kind: CouponKind | None, value: int, codes: tuple[str, ...] = ()) -> CouponSeriesDraft:
    return CouponSeriesDraft("S", {}, {}, kind, value, codes, 0, None, None, 0)


@pytest.mark.parametrize(
    ("draft", "wrong"),
    [
        (series(CouponKind.PERCENT, 10_000), []),
        (series(CouponKind.PERCENT, 10_001), ["s.value"]),
        (series(CouponKind.FIXED, 0), ["s.value"]),
        (series(CouponKind.FREE_PRODUCT, 1000), ["s.product_codes"]),
        (series(CouponKind.FREE_PRODUCT, 1000, ("LATTE",)), []),
        (series(None, 5), ["s.kind"]),
    ],
)
def test_coupon_series_are_validated_field_by_field(
    draft: CouponSeriesDraft, wrong: list[str]
) -> None:
    assert paths(validate_coupon_series, "s", draft) == wrong


def test_a_certificate_is_created_holding_something_and_may_be_emptied_later() -> None:
    empty = CertificateDraft("G-1", 0, None)
    assert paths(validate_certificate, "c", empty) == ["c.balance_minor_units"]
    assert paths(validate_certificate, "c", empty, False) == []


def test_every_catalogue_rpc_declares_reads_or_changes() -> None:
    methods = catalogue_pb2.DESCRIPTOR.message_types_by_name
    names = {name.removesuffix("Request") for name in methods if name.endswith("Request")}
    assert len(names) == 26
    for name in names:
        reads = name.startswith(("Get", "List"))
        assert access_of(getattr(AdminServicer, name)) is (
            Access.READ if reads else Access.CHANGE
        ), name
