"""ListGoods and ListGoodsCategories: the business's catalogue, every item exactly once
in code order across keyset pages, never another business's, tokens tied to the query."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import admin, new_category, owner
from support import Tenant, bearer, field_violations, make_business_through_api

from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def stock(channel: grpc.aio.Channel, business: Tenant, count: int, title: str) -> None:
    """`count` goods P0001…, every third a "drinks" one, the rest "food", by the owner."""
    for code in ("drinks", "food"):
        await new_category(channel, business, code)
    await admin(channel).UpsertGoods(
        catalogue.UpsertGoodsRequest(
            goods=[
                catalogue.Goods(
                    product_code=f"P{n:04d}",
                    title=f"{title} {n}",
                    price_minor_units=100 * n,
                    goods_category_code="drinks" if n % 3 == 0 else "food",
                )
                for n in range(1, count + 1)
            ]
        ),
        metadata=owner(business),
    )


async def all_pages(
    stub: TerminalServiceAsyncStub, business: Tenant, page_size: int, category: str = ""
) -> list[list[pb.Goods]]:
    pages: list[list[pb.Goods]] = []
    token = ""
    while True:
        answer = await stub.ListGoods(
            pb.ListGoodsRequest(
                page_size=page_size, page_token=token, goods_category_code=category
            ),
            metadata=bearer(business.cash_desk.api_key),
        )
        pages.append(list(answer.goods))
        token = answer.next_page_token
        if not token:
            return pages
        assert len(pages) < 100, "the pages never end"


async def test_250_goods_in_pages_of_100_come_once_each_in_product_code_order(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await stock(channel, business, 250, "Ours")
    other = await make_business_through_api(channel, pool)
    await stock(channel, other, 260, "Theirs")
    pages = await all_pages(terminal_stub, business, 100)
    assert [len(page) for page in pages] == [100, 100, 50]
    listed = [item for page in pages for item in page]
    assert [item.product_code for item in listed] == [f"P{n:04d}" for n in range(1, 251)]
    assert all(item.title.startswith("Ours ") for item in listed)
    seventh = listed[6]
    assert (seventh.price_minor_units, seventh.goods_category_code) == (700, "food")


async def test_goods_of_one_category_are_listed_alone(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    await stock(channel, business, 30, "Ours")
    pages = await all_pages(terminal_stub, business, 4, category="drinks")
    listed = [item.product_code for page in pages for item in page]
    assert listed == [f"P{n:04d}" for n in range(3, 31, 3)]
    assert await all_pages(terminal_stub, business, 0, category="Drinks") == [[]]


async def test_goods_categories_are_listed_in_code_order(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    await stock(channel, business, 1, "Ours")
    metadata = bearer(business.cash_desk.api_key)
    first = await terminal_stub.ListGoodsCategories(
        pb.ListGoodsCategoriesRequest(page_size=1), metadata=metadata
    )
    assert [(c.code, c.name) for c in first.goods_categories] == [("drinks", "Drinks")]
    second = await terminal_stub.ListGoodsCategories(
        pb.ListGoodsCategoriesRequest(page_size=1, page_token=first.next_page_token),
        metadata=metadata,
    )
    assert [(c.code, c.name) for c in second.goods_categories] == [("food", "Food")]
    assert second.next_page_token == ""


async def refused_field(stub: TerminalServiceAsyncStub, business: Tenant, **fields: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListGoods(
            pb.ListGoodsRequest(**fields),  # type: ignore[arg-type]
            metadata=bearer(business.cash_desk.api_key),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (field,) = field_violations(refused.value)
    return field


async def test_a_bad_page_token_or_size_is_refused_naming_the_field(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await stock(channel, business, 12, "Ours")
    metadata = bearer(business.cash_desk.api_key)
    first = await terminal_stub.ListGoods(
        pb.ListGoodsRequest(page_size=5, goods_category_code="food"), metadata=metadata
    )
    token = first.next_page_token
    assert token
    assert await refused_field(terminal_stub, business, page_token="not-a-token") == "page_token"
    # A token is for the query it was given for: another filter or list refuses it.
    assert await refused_field(terminal_stub, business, page_token=token) == "page_token"
    categories_token = (
        await terminal_stub.ListGoodsCategories(
            pb.ListGoodsCategoriesRequest(page_size=1), metadata=metadata
        )
    ).next_page_token
    assert (
        await refused_field(
            terminal_stub, business, page_token=categories_token, goods_category_code="food"
        )
        == "page_token"
    )
    assert await refused_field(terminal_stub, business, page_size=1_001) == "page_size"
    assert await refused_field(terminal_stub, business, page_size=-1) == "page_size"
    other = await make_business_through_api(channel, pool)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ListGoods(
            pb.ListGoodsRequest(page_token=token, goods_category_code="food"),
            metadata=bearer(other.cash_desk.api_key),
        )
    assert list(field_violations(refused.value)) == ["page_token"]
