"""The control panel's goods categories and goods, through a real server: versions,
pages, archive refusals saying what uses a thing, other businesses' keys not found, every
wrong field named, and a whole price list of 10,000 goods in one call that tills then
list — or, with one bad item, that changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
from admin_support import (
    admin,
    assert_refused,
    audit_entries,
    details,
    key_of_role,
    new_category,
    owner,
    percent_accrual,
    refused,
    set_rules,
)
from support import Tenant, bearer, make_business_through_api

from purse.admin.v1 import admin_service_pb2 as rules_pb
from purse.admin.v1 import catalogue_pb2 as pb
from purse.v1 import terminal_service_pb2 as terminal_pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

Code = grpc.StatusCode


def price_list(count: int, category: str = "", prefix: str = "SKU") -> list[pb.Goods]:
    return [
        pb.Goods(
            product_code=f"{prefix}-{index:05d}",
            title=f"Product {index}",
            price_minor_units=100 + index,
            goods_category_code=category,
        )
        for index in range(count)
    ]


async def test_a_goods_category_is_created_read_listed_in_pages_and_updated_by_version(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub = admin(channel)
    made = [await new_category(channel, business, code) for code in ("bakery", "dairy", "fruit")]
    assert [each.version for each in made] == [1, 1, 1]
    first = await stub.ListGoodsCategories(
        pb.ListGoodsCategoriesRequest(page_size=2), metadata=owner(business)
    )
    second = await stub.ListGoodsCategories(
        pb.ListGoodsCategoriesRequest(page_size=2, page_token=first.next_page_token),
        metadata=owner(business),
    )
    assert [each.code for each in (*first.goods_categories, *second.goods_categories)] == [
        "bakery",
        "dairy",
        "fruit",
    ]
    assert second.next_page_token == ""
    renamed = pb.GoodsCategory(
        goods_category_id=made[0].goods_category_id, code="bakery", name="Bread"
    )
    answer = await stub.UpdateGoodsCategory(
        pb.UpdateGoodsCategoryRequest(goods_category=renamed, expected_version=1),
        metadata=owner(business),
    )
    assert (answer.goods_category.name, answer.goods_category.version) == ("Bread", 2)
    stale = await refused(
        stub.UpdateGoodsCategory(
            pb.UpdateGoodsCategoryRequest(
                goods_category=pb.GoodsCategory(
                    goods_category_id=made[0].goods_category_id, code="bakery", name="Buns"
                ),
                expected_version=1,
            ),
            metadata=owner(business),
        )
    )
    assert_refused(stale, Code.ABORTED, "VERSION_MISMATCH")
    read = await stub.GetGoodsCategory(
        pb.GetGoodsCategoryRequest(goods_category_id=made[0].goods_category_id),
        metadata=owner(business),
    )
    assert (read.goods_category.name, read.goods_category.version) == ("Bread", 2)
    entries = await audit_entries(
        pool, business.business_id, "goods_categories", str(made[0].goods_category_id)
    )
    assert [entry["action"] for entry in entries] == ["create", "update"]
    assert entries[1]["before"]["name"] == "Bakery" and entries[1]["after"]["name"] == "Bread"


async def test_a_goods_category_code_is_unique_among_active_ones_and_stays_as_created(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub = admin(channel)
    made = await new_category(channel, business, "drinks")
    taken = await refused(
        stub.CreateGoodsCategory(
            pb.CreateGoodsCategoryRequest(goods_category=pb.GoodsCategory(code="drinks", name="D")),
            metadata=owner(business),
        )
    )
    assert_refused(taken, Code.ALREADY_EXISTS, "CODE_TAKEN")
    recoded = await refused(
        stub.UpdateGoodsCategory(
            pb.UpdateGoodsCategoryRequest(
                goods_category=pb.GoodsCategory(
                    goods_category_id=made.goods_category_id, code="beverages", name="Drinks"
                ),
                expected_version=1,
            ),
            metadata=owner(business),
        )
    )
    assert_refused(recoded, Code.FAILED_PRECONDITION, "FIELD_IMMUTABLE", "goods_category.code")
    await stub.ArchiveGoodsCategory(
        pb.ArchiveGoodsCategoryRequest(
            goods_category_id=made.goods_category_id, expected_version=1
        ),
        metadata=owner(business),
    )
    again = await new_category(channel, business, "drinks")
    assert again.goods_category_id != made.goods_category_id


async def test_a_goods_category_in_use_is_not_archived_and_says_by_what(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub = admin(channel)
    category = await new_category(channel, business, "coffee")
    await stub.CreateGoods(
        pb.CreateGoodsRequest(
            goods=pb.Goods(
                product_code="LATTE",
                title="Latte",
                price_minor_units=7000,
                goods_category_code="coffee",
            )
        ),
        metadata=owner(business),
    )
    archive = pb.ArchiveGoodsCategoryRequest(
        goods_category_id=category.goods_category_id, expected_version=1
    )
    used = await refused(stub.ArchiveGoodsCategory(archive, metadata=owner(business)))
    assert_refused(used, Code.FAILED_PRECONDITION, "IN_USE")
    assert "1 active goods" in details(used)
    await stub.ArchiveGoods(
        pb.ArchiveGoodsRequest(product_code="LATTE", expected_version=1), metadata=owner(business)
    )
    await set_rules(
        channel,
        business,
        rules_pb.ProgramRules(rules=[percent_accrual(1, 1000, goods_category_codes=["coffee"])]),
    )
    selected = await refused(stub.ArchiveGoodsCategory(archive, metadata=owner(business)))
    assert_refused(selected, Code.FAILED_PRECONDITION, "IN_USE")
    assert "Test program" in details(selected)
    await set_rules(channel, business, rules_pb.ProgramRules())
    archived = await stub.ArchiveGoodsCategory(archive, metadata=owner(business))
    assert archived.goods_category.HasField("archive_time")
    listed = await stub.ListGoodsCategories(
        pb.ListGoodsCategoriesRequest(), metadata=owner(business)
    )
    assert list(listed.goods_categories) == []
    shown = await stub.ListGoodsCategories(
        pb.ListGoodsCategoriesRequest(show_archived=True), metadata=owner(business)
    )
    assert [each.code for each in shown.goods_categories] == ["coffee"]


async def test_another_business_s_goods_and_categories_are_not_found(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    other = await make_business_through_api(channel, pool)
    stub = admin(channel)
    category = await new_category(channel, other, "secret")
    await stub.UpsertGoods(pb.UpsertGoodsRequest(goods=price_list(1)), metadata=owner(other))
    missing = await refused(
        stub.GetGoodsCategory(
            pb.GetGoodsCategoryRequest(goods_category_id=category.goods_category_id),
            metadata=owner(business),
        )
    )
    assert_refused(missing, Code.NOT_FOUND, "GOODS_CATEGORY_NOT_FOUND")
    archive = await refused(
        stub.ArchiveGoodsCategory(
            pb.ArchiveGoodsCategoryRequest(
                goods_category_id=category.goods_category_id, expected_version=1
            ),
            metadata=owner(business),
        )
    )
    assert_refused(archive, Code.NOT_FOUND, "GOODS_CATEGORY_NOT_FOUND")
    product = await refused(
        stub.UpdateGoods(
            pb.UpdateGoodsRequest(
                goods=pb.Goods(product_code="SKU-00000", title="Mine", price_minor_units=1),
                expected_version=1,
            ),
            metadata=owner(business),
        )
    )
    assert_refused(product, Code.NOT_FOUND, "GOODS_NOT_FOUND")


async def test_goods_input_is_refused_naming_every_wrong_field(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub = admin(channel)
    bad = await refused(
        stub.CreateGoods(
            pb.CreateGoodsRequest(
                goods=pb.Goods(
                    product_code="has space",
                    title="",
                    price_minor_units=-1,
                    goods_category_code="nope",
                )
            ),
            metadata=owner(business),
        )
    )
    assert_refused(
        bad,
        Code.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "goods.product_code",
        "goods.title",
        "goods.price_minor_units",
    )
    unknown = await refused(
        stub.CreateGoods(
            pb.CreateGoodsRequest(
                goods=pb.Goods(
                    product_code="TEA", title="Tea", price_minor_units=1, goods_category_code="nope"
                )
            ),
            metadata=owner(business),
        )
    )
    assert_refused(
        unknown, Code.INVALID_ARGUMENT, "GOODS_CATEGORY_UNKNOWN", "goods.goods_category_code"
    )


async def test_an_analyst_reads_the_catalogue_but_may_not_change_it(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    analyst = await key_of_role(channel, business, rules_pb.ADMINISTRATOR_ROLE_ANALYST)
    stub = admin(channel)
    await stub.ListGoods(pb.ListGoodsRequest(), metadata=analyst)
    denied = await refused(
        stub.UpsertGoods(pb.UpsertGoodsRequest(goods=price_list(1)), metadata=analyst)
    )
    assert_refused(denied, Code.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")
    listed = await stub.ListGoods(pb.ListGoodsRequest(), metadata=owner(business))
    assert list(listed.goods) == []


async def test_a_price_list_of_10_000_goods_is_stored_in_one_call_and_tills_list_it(
    channel: grpc.aio.Channel,
    business: Tenant,
    pool: asyncpg.Pool,
    terminal_stub: TerminalServiceAsyncStub,
) -> None:
    stub = admin(channel)
    await new_category(channel, business, "grocery")
    goods = price_list(10_000, "grocery")
    first = await stub.UpsertGoods(pb.UpsertGoodsRequest(goods=goods), metadata=owner(business))
    assert (first.created_count, first.updated_count, first.unchanged_count) == (10_000, 0, 0)
    listed: list[terminal_pb.Goods] = []
    token = ""
    while True:
        page = await terminal_stub.ListGoods(
            terminal_pb.ListGoodsRequest(page_size=1000, page_token=token),
            metadata=bearer(business.cash_desk.api_key),
        )
        listed.extend(page.goods)
        token = page.next_page_token
        if not token:
            break
    assert len(listed) == 10_000
    assert (listed[7].product_code, listed[7].price_minor_units) == ("SKU-00007", 107)
    assert {each.goods_category_code for each in listed} == {"grocery"}
    # Again with one price changed: one update, the rest untouched (their versions stay).
    goods[3].price_minor_units = 1
    second = await stub.UpsertGoods(pb.UpsertGoodsRequest(goods=goods), metadata=owner(business))
    assert (second.created_count, second.updated_count, second.unchanged_count) == (0, 1, 9_999)
    changed = await stub.GetGoods(
        pb.GetGoodsRequest(product_code="SKU-00003"), metadata=owner(business)
    )
    kept = await stub.GetGoods(
        pb.GetGoodsRequest(product_code="SKU-00004"), metadata=owner(business)
    )
    assert (changed.goods.version, changed.goods.price_minor_units) == (2, 1)
    assert kept.goods.version == 1
    entries = await audit_entries(pool, business.business_id, "goods")
    assert [(entry["action"], entry["resource_id"]) for entry in entries] == [
        ("upsert", "price_list"),
        ("upsert", "price_list"),
    ]
    assert len(entries[0]["after"]["created"]) == 10_000
    assert entries[1]["after"] == {
        "goods_count": 10_000,
        "created_count": 0,
        "updated_count": 1,
        "created": [],
        "updated": ["SKU-00003"],
    }
    # Nothing changed: no entry.
    await stub.UpsertGoods(pb.UpsertGoodsRequest(goods=goods), metadata=owner(business))
    assert len(await audit_entries(pool, business.business_id, "goods")) == 2


async def test_one_bad_item_of_10_000_changes_nothing_and_is_named_by_its_index(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub = admin(channel)
    goods = price_list(10_000)
    goods[3].price_minor_units = -5
    goods[9_000].goods_category_code = "bad code"
    bad = await refused(
        stub.UpsertGoods(pb.UpsertGoodsRequest(goods=goods), metadata=owner(business))
    )
    assert_refused(
        bad,
        Code.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "goods[3].price_minor_units",
        "goods[9000].goods_category_code",
    )
    goods[3].price_minor_units = 5
    goods[9_000].goods_category_code = "unknown"
    unknown = await refused(
        stub.UpsertGoods(pb.UpsertGoodsRequest(goods=goods), metadata=owner(business))
    )
    assert_refused(
        unknown, Code.INVALID_ARGUMENT, "GOODS_CATEGORY_UNKNOWN", "goods[9000].goods_category_code"
    )
    goods[9_000].goods_category_code = ""
    goods[9_001].product_code = goods[2].product_code
    twice = await refused(
        stub.UpsertGoods(pb.UpsertGoodsRequest(goods=goods), metadata=owner(business))
    )
    assert_refused(twice, Code.INVALID_ARGUMENT, "INVALID_ARGUMENT", "goods[9001].product_code")
    too_many = await refused(
        stub.UpsertGoods(
            pb.UpsertGoodsRequest(goods=price_list(10_001, prefix="X")), metadata=owner(business)
        )
    )
    assert_refused(too_many, Code.INVALID_ARGUMENT, "INVALID_ARGUMENT", "goods")
    stored = await pool.fetchval(
        "SELECT count(*) FROM goods WHERE business_id = $1", business.business_id
    )
    assert stored == 0
    assert await audit_entries(pool, business.business_id, "goods") == []


async def test_a_price_list_brings_an_archived_product_back_and_tills_skip_archived_goods(
    channel: grpc.aio.Channel, business: Tenant, terminal_stub: TerminalServiceAsyncStub
) -> None:
    stub = admin(channel)
    await stub.UpsertGoods(pb.UpsertGoodsRequest(goods=price_list(2)), metadata=owner(business))
    await stub.ArchiveGoods(
        pb.ArchiveGoodsRequest(product_code="SKU-00001", expected_version=1),
        metadata=owner(business),
    )
    till = await terminal_stub.ListGoods(
        terminal_pb.ListGoodsRequest(), metadata=bearer(business.cash_desk.api_key)
    )
    assert [each.product_code for each in till.goods] == ["SKU-00000"]
    active = await stub.ListGoods(pb.ListGoodsRequest(), metadata=owner(business))
    assert [each.product_code for each in active.goods] == ["SKU-00000"]
    shown = []
    token = ""
    while True:
        page = await stub.ListGoods(
            pb.ListGoodsRequest(page_size=1, page_token=token, show_archived=True),
            metadata=owner(business),
        )
        shown.extend(page.goods)
        token = page.next_page_token
        if not token or len(shown) > 2:
            break
    assert [(each.product_code, each.HasField("archive_time")) for each in shown] == [
        ("SKU-00000", False),
        ("SKU-00001", True),
    ]
    again = await stub.UpsertGoods(
        pb.UpsertGoodsRequest(goods=price_list(2)), metadata=owner(business)
    )
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 1, 1)
    back = await stub.GetGoods(
        pb.GetGoodsRequest(product_code="SKU-00001"), metadata=owner(business)
    )
    assert not back.goods.HasField("archive_time") and back.goods.version == 3
    taken = await refused(
        stub.CreateGoods(pb.CreateGoodsRequest(goods=price_list(1)[0]), metadata=owner(business))
    )
    assert_refused(taken, Code.ALREADY_EXISTS, "CODE_TAKEN", "goods.product_code")
