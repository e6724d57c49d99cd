"""Saved segments and news items through the API, over gRPC and over HTTP/JSON: a segment
selects in the customer list as its filter does until it is archived, an item is listed as
published within its window and a bulk news notification is dry-run only about such an
item, versions guard every update, and bad input is refused naming each wrong field by its
path in the request while nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
import httpx
from admin_support import assert_refused, audit_mark, error_field, refused
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from support import Tenant, bearer, make_business_through_api
from test_customer_list_api import customer_with_sales, loyal_but_away
from test_http_json import headers, http, reason_of, violations_of  # noqa: F401  (the fixture)

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import bulk_actions_pb2 as bulk
from purse.admin.v1 import customers_pb2 as lists
from purse.admin.v1 import news_pb2 as news
from purse.admin.v1 import segments_pb2 as segments
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

_rpc = "/purse.admin.v1.AdminService/"


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _audited(pool: asyncpg.Pool, business_id: int, after: int) -> list[tuple[str, str]]:
    """(resource, action) of the business's audit entries after entry `after`."""
    rows = await pool.fetch(
        "SELECT resource, action FROM audit_log WHERE business_id = $1 AND entry_id > $2"
        " ORDER BY entry_id",
        business_id,
        after,
    )
    return [(row["resource"], row["action"]) for row in rows]


async def test_a_saved_segment_selects_as_its_filter_does_until_it_is_archived(
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    pool: asyncpg.Pool,
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    chosen = await customer_with_sales(channel, terminal_stub, business, 6, 200_00)
    other = await customer_with_sales(channel, terminal_stub, business, 1, 0)
    mark = await audit_mark(pool, business.business_id)

    created = (
        await stub.CreateSavedSegment(
            segments.CreateSavedSegmentRequest(
                segment=segments.SavedSegment(name="Loyal but away", filter=loyal_but_away)
            ),
            metadata=key,
        )
    ).segment
    segment_id = created.segment_id
    listed = await stub.ListCustomers(
        admin.ListCustomersRequest(segment_id=segment_id), metadata=key
    )
    counted = await stub.CountCustomers(
        admin.CountCustomersRequest(segment_id=segment_id), metadata=key
    )
    both = await refused(
        stub.CountCustomers(
            admin.CountCustomersRequest(segment_id=segment_id, filter=loyal_but_away), metadata=key
        )
    )

    assert (created.filter, created.version, created.HasField("create_time")) == (
        loyal_but_away,
        1,
        True,
    )
    assert ([row.customer_id for row in listed.rows], counted.count) == ([chosen], 1)
    assert_refused(both, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "filter")
    renamed = segments.SavedSegment(
        segment_id=segment_id,
        name="Loyal, away, and the other one",
        filter=loyal_but_away,
        scope=lists.CustomerListScope(customer_ids=[other]),
    )
    updated = (
        await stub.UpdateSavedSegment(
            segments.UpdateSavedSegmentRequest(segment=renamed, expected_version=1), metadata=key
        )
    ).segment
    stale = await refused(
        stub.UpdateSavedSegment(
            segments.UpdateSavedSegmentRequest(segment=renamed, expected_version=1), metadata=key
        )
    )
    narrowed = await stub.CountCustomers(
        admin.CountCustomersRequest(segment_id=segment_id), metadata=key
    )
    assert (updated.version, list(updated.scope.customer_ids), narrowed.count) == (2, [other], 0)
    assert_refused(stale, grpc.StatusCode.ABORTED, "VERSION_MISMATCH")
    archived = (
        await stub.ArchiveSavedSegment(
            segments.ArchiveSavedSegmentRequest(segment_id=segment_id, expected_version=2),
            metadata=key,
        )
    ).segment
    gone = await refused(
        stub.ListCustomers(admin.ListCustomersRequest(segment_id=segment_id), metadata=key)
    )
    live = await stub.ListSavedSegments(segments.ListSavedSegmentsRequest(), metadata=key)
    kept = await stub.GetSavedSegment(
        segments.GetSavedSegmentRequest(segment_id=segment_id), metadata=key
    )
    assert archived.HasField("archive_time") and kept.segment == archived
    assert_refused(gone, grpc.StatusCode.NOT_FOUND, "SEGMENT_NOT_FOUND")
    assert list(live.segments) == []
    assert await _audited(pool, business.business_id, mark) == [
        ("saved_segments", "create"),
        ("saved_segments", "update"),
        ("saved_segments", "archive"),
    ]


async def test_a_wrong_segment_is_refused_naming_its_path_and_nothing_is_stored(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    mark = await audit_mark(pool, business.business_id)
    wrong = lists.Filter(all=list(loyal_but_away.all))
    wrong.all[1].condition.value.CopyFrom(lists.FilterValue(text="a month ago"))

    async def create(segment: segments.SavedSegment) -> grpc.aio.AioRpcError:
        request = segments.CreateSavedSegmentRequest(segment=segment)
        return await refused(stub.CreateSavedSegment(request, metadata=key))

    wrong_value = await create(segments.SavedSegment(name="Away", filter=wrong))
    empty_group = await create(
        segments.SavedSegment(name="Away", filter=lists.Filter(any=[lists.Filter()]))
    )
    nothing = await create(segments.SavedSegment())

    assert_refused(
        wrong_value,
        grpc.StatusCode.INVALID_ARGUMENT,
        "FILTER_INVALID",
        "segment.filter.all[1].condition.value",
    )
    assert_refused(
        empty_group, grpc.StatusCode.INVALID_ARGUMENT, "FILTER_INVALID", "segment.filter.any[0]"
    )
    assert_refused(
        nothing,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "segment.name",
        "segment.filter",
    )
    assert await _audited(pool, business.business_id, mark) == []
    await stub.CreateSavedSegment(
        segments.CreateSavedSegmentRequest(
            segment=segments.SavedSegment(name="Away", filter=loyal_but_away)
        ),
        metadata=key,
    )
    taken = await create(segments.SavedSegment(name="Away", filter=loyal_but_away))
    assert_refused(taken, grpc.StatusCode.ALREADY_EXISTS, "NAME_TAKEN", "segment.name")
    everything = await stub.ListSavedSegments(
        segments.ListSavedSegmentsRequest(show_archived=True), metadata=key
    )
    assert [each.name for each in everything.segments] == ["Away"]


async def test_segments_are_served_over_http_json_as_over_grpc(
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    chosen = await customer_with_sales(channel, terminal_stub, business, 6, 200_00)
    await customer_with_sales(channel, terminal_stub, business, 6, 200_00)
    key = headers(business.administrator_api_key)
    body = {
        "segment": {
            "name": "One away",
            "filter": json_format.MessageToDict(loyal_but_away),
            "scope": {"customerIds": [str(chosen)]},
        }
    }

    created = await http.post(_rpc + "CreateSavedSegment", json=body, headers=key)
    segment_id = created.json()["segment"]["segmentId"]
    counted = await http.post(_rpc + "CountCustomers", json={"segmentId": segment_id}, headers=key)
    echoed_value = {"integer": "5"}
    body["segment"]["filter"]["all"][0]["condition"]["value"] = {"text": "five"}  # type: ignore[index]
    bad = await http.post(_rpc + "CreateSavedSegment", json=body, headers=key)
    listed = await http.post(_rpc + "ListSavedSegments", json={}, headers=key)

    assert created.status_code == 200, created.text
    assert created.json()["segment"]["filter"]["all"][0]["condition"]["value"] == echoed_value
    assert counted.json() == {"count": "1"}
    assert (bad.status_code, reason_of(bad)) == (400, "FILTER_INVALID")
    assert list(violations_of(bad)) == ["segment.filter.all[0].condition.value"]
    assert [each["segmentId"] for each in listed.json()["segments"]] == [segment_id]


def _news_item(start: datetime, end: datetime | None, *point_of_sale_ids: int) -> news.NewsItem:
    item = news.NewsItem(
        title={"en": "Cherry latte", "uk": "Вишневе лате"},
        text={"en": "Back for spring, at every till.", "uk": "Повернулося на весну."},
        image_url="https://cdn.example.com/news/cherry.png",
        point_of_sale_ids=point_of_sale_ids,
        publication_start_time=_stamp(start),
    )
    if end is not None:
        item.publication_end_time.CopyFrom(_stamp(end))
    return item


async def test_a_news_item_is_published_within_its_window_until_it_is_archived(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    now = datetime.now(UTC).replace(microsecond=0)
    week = timedelta(days=7)

    created = (
        await stub.CreateNewsItem(
            news.CreateNewsItemRequest(
                news_item=_news_item(now - week, now + week, business.point_of_sale_id)
            ),
            metadata=key,
        )
    ).news_item
    later = (
        await stub.CreateNewsItem(
            news.CreateNewsItemRequest(news_item=_news_item(now + week, None)), metadata=key
        )
    ).news_item
    published = await stub.ListNewsItems(
        news.ListNewsItemsRequest(published_now=True), metadata=key
    )
    everything = await stub.ListNewsItems(news.ListNewsItemsRequest(), metadata=key)
    got = await stub.GetNewsItem(
        news.GetNewsItemRequest(news_item_id=created.news_item_id), metadata=key
    )

    assert [each.news_item_id for each in published.news_items] == [created.news_item_id]
    assert list(everything.news_items) == [created, later] and got.news_item == created
    assert (list(created.point_of_sale_ids), created.version) == ([business.point_of_sale_id], 1)
    changed = news.NewsItem()
    changed.CopyFrom(created)
    changed.ClearField("publication_end_time")
    changed.title["pl"] = "Wiśniowe latte"
    updated = (
        await stub.UpdateNewsItem(
            news.UpdateNewsItemRequest(news_item=changed, expected_version=1), metadata=key
        )
    ).news_item
    stale = await refused(
        stub.UpdateNewsItem(
            news.UpdateNewsItemRequest(news_item=changed, expected_version=1), metadata=key
        )
    )
    assert (updated.version, updated.HasField("publication_end_time")) == (2, False)
    assert updated.title["pl"] == "Wiśniowe latte"
    assert_refused(stale, grpc.StatusCode.ABORTED, "VERSION_MISMATCH")
    archived = (
        await stub.ArchiveNewsItem(
            news.ArchiveNewsItemRequest(news_item_id=created.news_item_id, expected_version=2),
            metadata=key,
        )
    ).news_item
    after = await stub.ListNewsItems(news.ListNewsItemsRequest(published_now=True), metadata=key)
    late = await refused(
        stub.UpdateNewsItem(
            news.UpdateNewsItemRequest(news_item=changed, expected_version=3), metadata=key
        )
    )
    assert archived.HasField("archive_time") and list(after.news_items) == []
    assert_refused(late, grpc.StatusCode.FAILED_PRECONDITION, "ARCHIVED")


async def test_a_wrong_news_item_is_refused_naming_every_wrong_field_and_nothing_changes(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    stranger = await make_business_through_api(channel, pool)
    mark = await audit_mark(pool, business.business_id)
    now = datetime.now(UTC)

    async def create(item: news.NewsItem) -> grpc.aio.AioRpcError:
        request = news.CreateNewsItemRequest(news_item=item)
        return await refused(stub.CreateNewsItem(request, metadata=key))

    wrong = _news_item(now, now - timedelta(hours=1), business.point_of_sale_id, 0)
    wrong.title.clear()
    wrong.text["en"] = "  "
    wrong.image_url = "http://cdn.example.com/news/cherry.png"
    every_wrong_field = await create(wrong)
    out_of_range = await create(_news_item(datetime(1999, 12, 31, tzinfo=UTC), None))
    theirs = await create(
        _news_item(now, None, business.point_of_sale_id, stranger.point_of_sale_id)
    )

    assert_refused(
        every_wrong_field,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "news_item.title",
        "news_item.text['en']",
        "news_item.image_url",
        "news_item.point_of_sale_ids[1]",
        "news_item.publication_end_time",
    )
    assert_refused(
        out_of_range,
        grpc.StatusCode.INVALID_ARGUMENT,
        "TIMESTAMP_OUT_OF_RANGE",
        "news_item.publication_start_time",
    )
    assert_refused(theirs, grpc.StatusCode.NOT_FOUND, "POINT_OF_SALE_NOT_FOUND")
    assert error_field(theirs) == "news_item.point_of_sale_ids[1]"
    assert await _audited(pool, business.business_id, mark) == []
    listed = await stub.ListNewsItems(news.ListNewsItemsRequest(show_archived=True), metadata=key)
    assert list(listed.news_items) == []


async def test_news_items_are_served_over_http_json_as_over_grpc(
    business: Tenant,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    key = headers(business.administrator_api_key)
    now = datetime.now(UTC)
    item = {
        "title": {"en": "Cherry latte"},
        "text": {"en": "Back for spring."},
        "pointOfSaleIds": [str(business.point_of_sale_id)],
        "publicationStartTime": _rfc3339(now - timedelta(hours=1)),
    }

    created = await http.post(_rpc + "CreateNewsItem", json={"newsItem": item}, headers=key)
    published = await http.post(_rpc + "ListNewsItems", json={"publishedNow": True}, headers=key)
    bad = await http.post(
        _rpc + "CreateNewsItem",
        json={"newsItem": {**item, "imageUrl": "javascript:alert(1)"}},
        headers=key,
    )
    unlisted = await http.post(_rpc + "ListNewsItems", json={"showArchived": True}, headers=key)

    assert created.status_code == 200, created.text
    news_item_id = created.json()["newsItem"]["newsItemId"]
    assert [each["newsItemId"] for each in published.json()["newsItems"]] == [news_item_id]
    assert (bad.status_code, reason_of(bad)) == (400, "INVALID_ARGUMENT")
    assert list(violations_of(bad)) == ["news_item.image_url"]
    assert [each["newsItemId"] for each in unlisted.json()["newsItems"]] == [news_item_id]


async def test_a_bulk_news_notification_is_dry_run_only_about_an_item_published_now(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    stranger = bearer((await make_business_through_api(channel, pool)).administrator_api_key)
    now = datetime.now(UTC)

    async def created(start: datetime, owner: tuple[tuple[str, str]]) -> int:
        request = news.CreateNewsItemRequest(news_item=_news_item(start, None))
        return int((await stub.CreateNewsItem(request, metadata=owner)).news_item.news_item_id)

    def dry_run(news_item_id: int) -> admin.DryRunBulkActionRequest:
        action = bulk.BulkAction(send_news=bulk.SendNewsAction(news_item_id=news_item_id))
        return admin.DryRunBulkActionRequest(action=action)

    current = await created(now - timedelta(hours=1), key)
    later = await created(now + timedelta(days=1), key)
    theirs = await created(now - timedelta(hours=1), stranger)
    drafted = await stub.DryRunBulkAction(dry_run(current), metadata=key)
    refusals = [
        await refused(stub.DryRunBulkAction(dry_run(news_item_id), metadata=key))
        for news_item_id in (later, theirs)
    ]

    assert drafted.operation.state == bulk.OPERATION_STATE_DRAFT
    assert drafted.operation.action.send_news.news_item_id == current
    for refusal in refusals:
        assert_refused(refusal, grpc.StatusCode.NOT_FOUND, "NEWS_ITEM_NOT_FOUND")
