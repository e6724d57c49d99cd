"""Customer categories through the control panel: one default always, versions on every
update, and no archiving while customers are in one."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from support import Founded, bearer, error_reason, field_violations, found_business

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub


@pytest.fixture
async def founded(channel: grpc.aio.Channel, pool: asyncpg.Pool) -> Founded:
    return await found_business(channel, pool)


async def test_a_new_default_category_takes_the_mark_from_the_old_one(
    channel: grpc.aio.Channel, founded: Founded
) -> None:
    stub, key = AdminServiceStub(channel), bearer(founded.owner_api_key)
    created = await stub.CreateCustomerCategory(
        admin.CreateCustomerCategoryRequest(
            category=admin.CustomerCategory(
                name="Regulars", title={"en": "Regulars"}, is_default=True
            )
        ),
        metadata=key,
    )
    listed = await stub.ListCustomerCategories(admin.ListCustomerCategoriesRequest(), metadata=key)
    defaults = [each.category_id for each in listed.categories if each.is_default]
    assert defaults == [created.category.category_id]
    old = next(each for each in listed.categories if each.name == "New customers")
    assert old.version == 2
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.ArchiveCustomerCategory(
            admin.ArchiveCustomerCategoryRequest(
                category_id=created.category.category_id, expected_version=1
            ),
            metadata=key,
        )
    assert error_reason(failure.value) == "IN_USE"
    archived = await stub.ArchiveCustomerCategory(
        admin.ArchiveCustomerCategoryRequest(category_id=old.category_id, expected_version=2),
        metadata=key,
    )
    assert archived.category.HasField("archive_time")
    shown = await stub.ListCustomerCategories(admin.ListCustomerCategoriesRequest(), metadata=key)
    assert [each.name for each in shown.categories] == ["Regulars"]


async def test_a_category_update_with_a_stale_version_changes_nothing(
    channel: grpc.aio.Channel, founded: Founded
) -> None:
    stub, key = AdminServiceStub(channel), bearer(founded.owner_api_key)
    created = (
        await stub.CreateCustomerCategory(
            admin.CreateCustomerCategoryRequest(category=admin.CustomerCategory(name="Silver")),
            metadata=key,
        )
    ).category
    renamed = admin.CustomerCategory()
    renamed.CopyFrom(created)
    renamed.name = "Platinum"
    await stub.UpdateCustomerCategory(
        admin.UpdateCustomerCategoryRequest(category=renamed, expected_version=1), metadata=key
    )
    renamed.name = "Bronze"
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.UpdateCustomerCategory(
            admin.UpdateCustomerCategoryRequest(category=renamed, expected_version=1), metadata=key
        )
    assert failure.value.code() == grpc.StatusCode.ABORTED
    got = await stub.GetCustomerCategory(
        admin.GetCustomerCategoryRequest(category_id=created.category_id), metadata=key
    )
    assert (got.category.name, got.category.version) == ("Platinum", 2)


async def test_bad_category_fields_are_named_and_a_missing_version_too(
    channel: grpc.aio.Channel, founded: Founded
) -> None:
    stub, key = AdminServiceStub(channel), bearer(founded.owner_api_key)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.CreateCustomerCategory(
            admin.CreateCustomerCategoryRequest(
                category=admin.CustomerCategory(name="", title={"english!": "x"})
            ),
            metadata=key,
        )
    assert set(field_violations(failure.value)) == {"category.name", "category.title['english!']"}
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.UpdateCustomerCategory(
            admin.UpdateCustomerCategoryRequest(category=admin.CustomerCategory(name="x")),
            metadata=key,
        )
    assert "expected_version" in field_violations(failure.value)


async def test_pages_of_categories_cover_all_once_and_a_token_is_tied_to_its_list(
    channel: grpc.aio.Channel, founded: Founded
) -> None:
    stub, key = AdminServiceStub(channel), bearer(founded.owner_api_key)
    for number in range(5):
        await stub.CreateCustomerCategory(
            admin.CreateCustomerCategoryRequest(category=admin.CustomerCategory(name=f"C{number}")),
            metadata=key,
        )
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListCustomerCategories(
            admin.ListCustomerCategoriesRequest(page_size=2, page_token=token), metadata=key
        )
        seen += [each.name for each in page.categories]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["New customers", "C0", "C1", "C2", "C3", "C4"]
    first = await stub.ListCustomerCategories(
        admin.ListCustomerCategoriesRequest(page_size=2), metadata=key
    )
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.ListCustomerCategories(
            admin.ListCustomerCategoriesRequest(
                page_token=first.next_page_token, show_archived=True
            ),
            metadata=key,
        )
    assert "page_token" in field_violations(failure.value)
