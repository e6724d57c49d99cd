"""Saved segments and news items on the real tables: a segment's filter stored as its
document and read back the same, names unique among live segments, items listed and read
as published at a moment, the points of sale an item names checked as the business's,
and another business's ids NOT_FOUND by every call, changing nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from support import Tenant, make_business

from purse.domain.administrators import Actor, operator_actor
from purse.domain.errors import AlreadyExists, DomainError, NotFound
from purse.domain.news import NewsDraft
from purse.domain.segments import (
    Combination,
    Condition,
    CustomerColumn,
    Group,
    Operator,
    days_ago,
    filter_to_document,
)
from purse.service.admin.news import NewsItems
from purse.service.admin.segments import SavedSegments, SegmentDraft, SegmentSelection
from purse.store.postgres.back_office import BackOfficeReads, BackOfficeWrites
from purse.store.postgres.customer_list import ListScope
from purse.store.postgres.news import NewsStore
from purse.store.postgres.provisioning import Provisioning

now = datetime.now(UTC)
# Every kind of value a filter holds: integers, a relative and an absolute moment, words.
regulars_away = Group(
    Combination.ALL,
    (
        Condition(CustomerColumn.SALES_COUNT, Operator.MORE_THAN, 5),
        Group(
            Combination.ANY,
            (
                Condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, days_ago(30)),
                Condition(CustomerColumn.LAST_VISIT, Operator.NOT_EXISTS),
            ),
        ),
        Condition(CustomerColumn.CREATED_AT, Operator.MORE_THAN, datetime(2025, 1, 2, tzinfo=UTC)),
        Condition(CustomerColumn.ACCESS_TYPE, Operator.IN, ("full", "limited")),
        Condition(CustomerColumn.PERSONAL_DATA_CONSENT, Operator.EQUALS, True),
    ),
)


def segments(pool: asyncpg.Pool) -> SavedSegments:
    return SavedSegments(BackOfficeWrites(pool), BackOfficeReads(pool))


def news(pool: asyncpg.Pool, at: datetime = now) -> NewsItems:
    return NewsItems(BackOfficeWrites(pool), BackOfficeReads(pool), NewsStore(pool), lambda: at)


def item(start: datetime, end: datetime | None, *point_of_sale_ids: int) -> NewsDraft:
    return NewsDraft(
        {"en": "Cherry latte", "uk": "Вишневе лате"},
        {"en": "Back for spring."},
        "https://cdn.example.com/cherry.png",
        point_of_sale_ids,
        start,
        end,
    )


async def business_rows(pool: asyncpg.Pool, business_id: int) -> list[dict[str, Any]]:
    """The business's segments, news items and audit entries, as stored."""
    rows = []
    for table, key in (
        ("saved_segments", "segment_id"),
        ("news_items", "news_item_id"),
        ("audit_log", "entry_id"),
    ):
        rows += [
            dict(row)
            for row in await pool.fetch(
                f"SELECT * FROM {table} WHERE business_id = $1 ORDER BY {key}", business_id
            )
        ]
    return rows


async def test_a_segment_s_filter_is_stored_as_its_document_and_read_back_the_same(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    scope = ListScope(program_id=business.program_id, customer_ids=(11, 12))
    use_case = segments(pool)

    created = await use_case.create(
        operator_actor(business.business_id), SegmentDraft("Away regulars", regulars_away, scope)
    )

    stored = await pool.fetchval(
        "SELECT filter FROM saved_segments WHERE business_id = $1 AND segment_id = $2",
        business.business_id,
        created.segment_id,
    )
    assert stored == filter_to_document(regulars_away)
    assert await use_case.selection(business.business_id, created.segment_id) == SegmentSelection(
        regulars_away, scope
    )
    assert (await use_case.get(business.business_id, created.segment_id)) == created


async def test_a_name_is_unique_among_live_segments_and_free_again_once_archived(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    actor, use_case = operator_actor(business.business_id), segments(pool)
    draft = SegmentDraft("Lapsed", regulars_away, ListScope())
    first = await use_case.create(actor, draft)

    with pytest.raises(AlreadyExists) as taken:
        await use_case.create(actor, draft)
    archived = await use_case.archive(actor, first.segment_id, first.version)
    again = await use_case.create(actor, draft)

    assert (taken.value.reason, taken.value.metadata["field"]) == ("NAME_TAKEN", "segment.name")
    assert archived.archived_at is not None and again.segment_id != first.segment_id
    with pytest.raises(NotFound) as gone:
        await use_case.selection(business.business_id, first.segment_id)
    assert gone.value.reason == "SEGMENT_NOT_FOUND"


async def expect_not_found(call: Awaitable[object], reason: str) -> None:
    with pytest.raises(DomainError) as refused:
        await call
    assert (type(refused.value), refused.value.reason) == (NotFound, reason)


async def test_another_business_s_segment_is_not_found_and_never_changes(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    theirs = await make_business(pool)
    use_case = segments(pool)
    their_segment = await use_case.create(
        operator_actor(theirs.business_id), SegmentDraft("Theirs", regulars_away, ListScope())
    )
    before = await business_rows(pool, theirs.business_id)
    mine = operator_actor(business.business_id)
    key, version = their_segment.segment_id, their_segment.version
    renamed = SegmentDraft("Mine now", regulars_away, ListScope())

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: use_case.get(business.business_id, key),
        lambda: use_case.selection(business.business_id, key),
        lambda: use_case.update(mine, key, version, renamed),
        lambda: use_case.archive(mine, key, version),
    ]
    for call in calls:
        await expect_not_found(call(), "SEGMENT_NOT_FOUND")

    assert await business_rows(pool, theirs.business_id) == before
    page = await use_case.page(business.business_id, 0, "", show_archived=True)
    assert page.items == ()


async def test_the_published_list_holds_the_live_items_whose_window_holds_now(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    actor, use_case = operator_actor(business.business_id), news(pool)
    day = timedelta(days=1)
    current = await use_case.create(actor, item(now - day, now + day))
    await use_case.create(actor, item(now - 2 * day, now - day))
    await use_case.create(actor, item(now + day, None))
    open_ended = await use_case.create(actor, item(now - day, None, business.point_of_sale_id))
    withdrawn = await use_case.create(actor, item(now - day, None))
    await use_case.archive(actor, withdrawn.news_item_id, withdrawn.version)

    first = await use_case.published_page(business.business_id, 1, "")
    second = await use_case.published_page(business.business_id, 1, first.next_page_token)
    everything = await use_case.page(business.business_id, 0, "", show_archived=False)

    assert [each.news_item_id for each in [*first.items, *second.items]] == [
        current.news_item_id,
        open_ended.news_item_id,
    ]
    assert second.next_page_token == "" and len(everything.items) == 4
    assert open_ended.settings.point_of_sale_ids == (business.point_of_sale_id,)


async def test_a_notification_reads_an_item_only_while_it_is_live_and_published(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    actor, use_case = operator_actor(business.business_id), news(pool)
    start, end = now, now + timedelta(days=7)
    created = await use_case.create(actor, item(start, end))

    read = await use_case.published(business.business_id, created.news_item_id, start)
    for moment in (start - timedelta(seconds=1), end):
        await expect_not_found(
            use_case.published(business.business_id, created.news_item_id, moment),
            "NEWS_ITEM_NOT_FOUND",
        )
    await use_case.archive(actor, created.news_item_id, created.version)
    await expect_not_found(
        use_case.published(business.business_id, created.news_item_id, start),
        "NEWS_ITEM_NOT_FOUND",
    )

    assert read == created and read.settings.title_in("uk-UA") == "Вишневе лате"


async def test_an_item_names_only_live_points_of_sale_of_its_business(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    theirs = await make_business(pool)
    actor, use_case = operator_actor(business.business_id), news(pool)
    provisioning = Provisioning(pool)
    second_shop, third_shop = [
        await provisioning.point_of_sale(business.business_id, business.program_id, name)
        for name in ("Second shop", "Third shop")
    ]
    before = await business_rows(pool, business.business_id)

    with pytest.raises(NotFound) as refused:
        await use_case.create(
            actor, item(now, None, business.point_of_sale_id, theirs.point_of_sale_id)
        )

    assert refused.value.reason == "POINT_OF_SALE_NOT_FOUND"
    assert refused.value.metadata["field"] == "news_item.point_of_sale_ids[1]"
    assert await business_rows(pool, business.business_id) == before
    created = await use_case.create(actor, item(now, None, second_shop))
    await pool.execute(
        "UPDATE points_of_sale SET archived_at = now()"
        " WHERE business_id = $1 AND point_of_sale_id = ANY($2::bigint[])",
        business.business_id,
        [second_shop, third_shop],
    )
    # A point of sale archived since the item named it stays named; it is never added.
    kept = await use_case.update(
        actor, created.news_item_id, created.version, replace(created.settings, image_url="")
    )
    with pytest.raises(NotFound) as archived:
        await use_case.update(
            actor, kept.news_item_id, kept.version, item(now, None, second_shop, third_shop)
        )
    assert archived.value.metadata["field"] == "news_item.point_of_sale_ids[1]"
    assert kept.settings.point_of_sale_ids == (second_shop,) and kept.version == 2


async def test_another_business_s_news_item_is_not_found_and_never_changes(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    theirs = await make_business(pool)
    use_case = news(pool)
    their_item = await use_case.create(operator_actor(theirs.business_id), item(now, None))
    before = await business_rows(pool, theirs.business_id)
    mine: Actor = operator_actor(business.business_id)
    key, version = their_item.news_item_id, their_item.version

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: use_case.get(business.business_id, key),
        lambda: use_case.published(business.business_id, key, now),
        lambda: use_case.update(mine, key, version, item(now, None)),
        lambda: use_case.archive(mine, key, version),
    ]
    for call in calls:
        await expect_not_found(call(), "NEWS_ITEM_NOT_FOUND")

    assert await business_rows(pool, theirs.business_id) == before
    assert (await use_case.published_page(business.business_id, 0, "")).items == ()
