"""Bulk actions through the API, one action at a time, on a running server: category and
access type changes a till sees at once, coupons refused up front past the series' cap
and issued once each within it, a message only to those who can get it, a cancelled
draft that never runs, bad input refused by its path with nothing frozen, and the same
calls over HTTP/JSON."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
import httpx
from admin_support import assert_refused, back_office, enrol, new_series, refused
from support import Tenant, bearer
from test_http_json import headers, http  # noqa: F401  (the fixture)

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import bulk_actions_pb2 as bulk
from purse.admin.v1 import customers_pb2 as lists
from purse.admin.v1 import news_pb2 as news_pb
from purse.admin.v1 import segments_pb2 as segments_pb
from purse.admin.v1 import setup_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as terminal_pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub

operation_seconds_max = 30.0


async def _members(channel: grpc.aio.Channel, business: Tenant, count: int) -> list[int]:
    memberships = await asyncio.gather(*(enrol(channel, business) for _ in range(count)))
    return [membership.customer_id for membership in memberships]


def _the(customer_ids: list[int]) -> bulk.BulkSelection:
    return bulk.BulkSelection(scope=lists.CustomerListScope(customer_ids=customer_ids))


async def _run(
    stub: AdminServiceAsyncStub,
    key: tuple[tuple[str, str]],
    request: admin.DryRunBulkActionRequest,
) -> bulk.Operation:
    """Dry-run, start, and wait for the operation to finish."""
    dry_run = await stub.DryRunBulkAction(request, metadata=key)
    operation_id = dry_run.operation.operation_id
    await stub.StartBulkAction(
        admin.StartBulkActionRequest(operation_id=operation_id, token=dry_run.token),
        metadata=key,
    )
    deadline = time.monotonic() + operation_seconds_max
    while time.monotonic() < deadline:
        answer = await stub.GetOperation(
            admin.GetOperationRequest(operation_id=operation_id), metadata=key
        )
        if answer.operation.state == bulk.OPERATION_STATE_SUCCEEDED:
            return answer.operation
        await asyncio.sleep(0.05)
    raise AssertionError(f"operation {operation_id} did not finish")


async def _identified(
    channel: grpc.aio.Channel, business: Tenant, customer_id: int, pool: asyncpg.Pool
) -> common_pb2.Membership:
    phone = await pool.fetchval("SELECT phone FROM customers WHERE customer_id = $1", customer_id)
    answer = await TerminalServiceStub(channel).IdentifyCustomer(
        terminal_pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
        metadata=bearer(business.cash_desk.api_key),
    )
    membership: common_pb2.Membership = answer.membership
    return membership


async def test_a_category_and_an_access_type_change_reach_the_till_at_once(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    chosen, other = await _members(channel, business, 3), await _members(channel, business, 1)
    for member in [*chosen, *other]:
        await _identified(channel, business, member, pool)  # cached by the till now
    category = await stub.CreateCustomerCategory(
        admin.CreateCustomerCategoryRequest(category=admin.CustomerCategory(name="Gold")),
        metadata=key,
    )
    gold = category.category.category_id
    changed = await _run(
        stub,
        key,
        admin.DryRunBulkActionRequest(
            action=bulk.BulkAction(change_category=bulk.CategoryChangeAction(category_id=gold)),
            selection=_the(chosen),
        ),
    )
    assert (changed.total, changed.done) == (3, 3)
    limited = await _run(
        stub,
        key,
        admin.DryRunBulkActionRequest(
            action=bulk.BulkAction(
                change_access_type=bulk.AccessTypeChangeAction(
                    access_type=common_pb2.ACCESS_TYPE_LIMITED
                )
            ),
            selection=_the(chosen),
        ),
    )
    assert limited.done == 3
    for member in chosen:
        seen = await _identified(channel, business, member, pool)
        assert (seen.category_id, seen.access_type) == (gold, common_pb2.ACCESS_TYPE_LIMITED)
    untouched = await _identified(channel, business, other[0], pool)
    assert untouched.category_id != gold
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE business_id = $1 AND action = 'update_customer'"
        " AND (after ->> 'bulk_operation_id')::bigint IN ($2, $3)",
        business.business_id,
        changed.operation_id,
        limited.operation_id,
    )
    assert audited == 6


async def test_coupons_past_the_series_cap_are_refused_up_front_and_issued_once_within_it(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    members = await _members(channel, business, 4)
    series = await new_series(channel, business, coupons_max=3)
    terminal = await back_office(channel, business)
    request = admin.DryRunBulkActionRequest(
        action=bulk.BulkAction(
            issue_coupons=lists.CouponIssueOperation(series_id=series.series_id),
            message=bulk.BulkMessage(
                channel=setup_pb2.NOTICE_CHANNEL_SMS, template="{name}, your code: {coupon}"
            ),
        ),
        selection=_the(members),
        terminal_id=terminal.terminal_id,
    )
    too_many = await refused(stub.DryRunBulkAction(request, metadata=key))
    assert_refused(too_many, grpc.StatusCode.FAILED_PRECONDITION, "COUPON_SERIES_EXHAUSTED")
    request.selection.CopyFrom(_the(members[:3]))
    issued = await _run(stub, key, request)
    assert (issued.done, issued.failed) == (3, 0)
    coupons = await pool.fetch(
        "SELECT customer_id, code FROM coupons WHERE business_id = $1 AND series_id = $2",
        business.business_id,
        series.series_id,
    )
    assert sorted(row["customer_id"] for row in coupons) == sorted(members[:3])
    bodies = await pool.fetch(
        "SELECT customer_id, body FROM outbox_messages WHERE business_id = $1 AND purpose = 'bulk'",
        business.business_id,
    )
    codes = {row["customer_id"]: row["code"] for row in coupons}
    assert {row["customer_id"]: row["body"] for row in bodies} == {
        member: f", your code: {codes[member]}" for member in members[:3]
    }


async def test_a_message_goes_only_to_those_who_confirmed_participation(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    members = await _members(channel, business, 4)
    await pool.execute(
        "UPDATE memberships SET participation_confirmed = true"
        " WHERE business_id = $1 AND customer_id = ANY($2::bigint[])",
        business.business_id,
        members[:2],
    )
    request = admin.DryRunBulkActionRequest(
        action=bulk.BulkAction(
            send_message=bulk.SendMessageAction(),
            message=bulk.BulkMessage(
                channel=setup_pb2.NOTICE_CHANNEL_SMS, template="Привіт, {name}! {balance}"
            ),
        ),
        selection=_the(members),
    )
    dry_run = await stub.DryRunBulkAction(request, metadata=key)
    figures = dry_run.operation.estimate
    assert (figures.messages_sms, figures.messages_rejected, figures.sms_segments) == (2, 2, 2)
    sent = await _run(stub, key, request)
    assert (sent.done, sent.rejected) == (2, 2)
    states = await pool.fetch(
        "SELECT customer_id, status, reason FROM outbox_messages WHERE business_id = $1"
        " AND purpose = 'bulk' AND bulk_operation_id = $2",
        business.business_id,
        sent.operation_id,
    )
    assert {row["customer_id"]: (row["status"], row["reason"]) for row in states} == {
        **dict.fromkeys(members[:2], ("pending", "")),
        **dict.fromkeys(members[2:], ("rejected", "PARTICIPATION_NOT_CONFIRMED")),
    }


async def test_a_cancelled_draft_never_runs_and_cannot_be_started(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    members = await _members(channel, business, 2)
    dry_run = await stub.DryRunBulkAction(
        admin.DryRunBulkActionRequest(
            action=bulk.BulkAction(
                change_access_type=bulk.AccessTypeChangeAction(
                    access_type=common_pb2.ACCESS_TYPE_BLACKLISTED
                )
            ),
            selection=_the(members),
        ),
        metadata=key,
    )
    operation_id = dry_run.operation.operation_id
    cancelled = await stub.CancelOperation(
        admin.CancelOperationRequest(operation_id=operation_id), metadata=key
    )
    assert cancelled.operation.state == bulk.OPERATION_STATE_CANCELLED
    late = await refused(
        stub.StartBulkAction(
            admin.StartBulkActionRequest(operation_id=operation_id, token=dry_run.token),
            metadata=key,
        )
    )
    assert_refused(late, grpc.StatusCode.FAILED_PRECONDITION, "BULK_OPERATION_NOT_DRAFT")
    access = await pool.fetch(
        "SELECT access_type FROM memberships WHERE business_id = $1"
        " AND customer_id = ANY($2::bigint[])",
        business.business_id,
        members,
    )
    assert {row["access_type"] for row in access} == {"full"}
    listed = await stub.ListOperations(admin.ListOperationsRequest(), metadata=key)
    assert [each.operation_id for each in listed.operations][:1] == [operation_id]


async def test_bad_input_is_refused_by_its_path_and_freezes_nothing(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    credit = bulk.BulkAction(credit_points=lists.PointsCreditOperation(points_hundredths=100))
    cases = [
        (admin.DryRunBulkActionRequest(), "action"),
        (admin.DryRunBulkActionRequest(action=credit), "terminal_id"),
        (
            admin.DryRunBulkActionRequest(
                action=bulk.BulkAction(credit_points=lists.PointsCreditOperation()),
                terminal_id=1,
            ),
            "action.credit_points.points_hundredths",
        ),
        (
            admin.DryRunBulkActionRequest(
                action=bulk.BulkAction(
                    send_message=bulk.SendMessageAction(),
                    message=bulk.BulkMessage(
                        channel=setup_pb2.NOTICE_CHANNEL_SMS, template="Hi {surname}"
                    ),
                )
            ),
            "action.message.template",
        ),
        (
            admin.DryRunBulkActionRequest(
                action=bulk.BulkAction(
                    send_message=bulk.SendMessageAction(),
                    message=bulk.BulkMessage(template="Hi"),
                )
            ),
            "action.message.channel",
        ),
        (
            admin.DryRunBulkActionRequest(
                action=bulk.BulkAction(
                    send_message=bulk.SendMessageAction(),
                    message=bulk.BulkMessage(channel=setup_pb2.NOTICE_CHANNEL_SMS, template="Hi"),
                ),
                selection=bulk.BulkSelection(
                    filter=lists.Filter(
                        condition=lists.Condition(
                            column=lists.CUSTOMER_COLUMN_SALES_COUNT,
                            operator=lists.FILTER_OPERATOR_MORE_THAN,
                            value=lists.FilterValue(text="five"),
                        )
                    )
                ),
            ),
            "selection.filter.condition.value",
        ),
    ]
    for request, path in cases:
        error = await refused(stub.DryRunBulkAction(request, metadata=key))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, error.details())
        assert path in (error.details() or ""), (path, error.details())
    unknown = await refused(
        stub.GetOperation(admin.GetOperationRequest(operation_id=2**40), metadata=key)
    )
    assert_refused(unknown, grpc.StatusCode.NOT_FOUND, "BULK_OPERATION_NOT_FOUND")
    frozen = await pool.fetchval(
        "SELECT count(*) FROM bulk_operations WHERE business_id = $1", business.business_id
    )
    assert frozen == 0


async def test_a_bulk_action_runs_over_http_json(
    http: httpx.AsyncClient,  # noqa: F811
    channel: grpc.aio.Channel,
    business: Tenant,
) -> None:
    members = await _members(channel, business, 2)
    service = "/purse.admin.v1.AdminService"
    credential = headers(business.administrator_api_key)
    dry_run = await http.post(
        f"{service}/DryRunBulkAction",
        json={
            "action": {
                "sendMessage": {},
                "message": {"channel": "NOTICE_CHANNEL_SMART", "template": "Hello {name}"},
            },
            "selection": {"scope": {"customerIds": [str(each) for each in members]}},
        },
        headers=credential,
    )
    assert dry_run.status_code == 200, dry_run.text
    answer = dry_run.json()
    assert answer["operation"]["state"] == "OPERATION_STATE_DRAFT"
    assert answer["operation"]["selection"]["scope"]["customerIds"] == [
        str(each) for each in members
    ]
    started = await http.post(
        f"{service}/StartBulkAction",
        json={"operationId": answer["operation"]["operationId"], "token": answer["token"]},
        headers=credential,
    )
    assert started.status_code == 200, started.text
    wrong = await http.post(
        f"{service}/DryRunBulkAction",
        json={"action": {"creditPoints": {"pointsHundredths": "0"}}, "terminalId": "1"},
        headers=credential,
    )
    assert wrong.status_code == 400
    assert "action.credit_points.points_hundredths" in wrong.text


async def test_a_saved_segment_selects_the_members_and_cannot_be_mixed_with_a_filter(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    members = await _members(channel, business, 3)
    saved = await stub.CreateSavedSegment(
        segments_pb.CreateSavedSegmentRequest(
            segment=segments_pb.SavedSegment(
                name="Two of them",
                filter=lists.Filter(
                    condition=lists.Condition(
                        column=lists.CUSTOMER_COLUMN_CUSTOMER_ID,
                        operator=lists.FILTER_OPERATOR_IN,
                        value=lists.FilterValue(integers=lists.IntegerList(values=members[:2])),
                    )
                ),
            )
        ),
        metadata=key,
    )
    action = bulk.BulkAction(
        change_access_type=bulk.AccessTypeChangeAction(access_type=common_pb2.ACCESS_TYPE_NONE)
    )
    by_segment = bulk.BulkSelection(segment_id=saved.segment.segment_id)
    dry_run = await stub.DryRunBulkAction(
        admin.DryRunBulkActionRequest(action=action, selection=by_segment), metadata=key
    )
    assert dry_run.operation.total == 2
    assert dry_run.operation.selection.segment_id == saved.segment.segment_id
    by_segment.scope.customer_ids.append(members[2])
    mixed = await refused(
        stub.DryRunBulkAction(
            admin.DryRunBulkActionRequest(action=action, selection=by_segment), metadata=key
        )
    )
    assert_refused(mixed, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "selection.scope")
    unknown = await refused(
        stub.DryRunBulkAction(
            admin.DryRunBulkActionRequest(
                action=action, selection=bulk.BulkSelection(segment_id=2**40)
            ),
            metadata=key,
        )
    )
    assert_refused(unknown, grpc.StatusCode.NOT_FOUND, "SEGMENT_NOT_FOUND")


async def test_a_news_notification_is_pushed_in_each_member_s_language(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    with_app, without_app = await _members(channel, business, 2)
    await pool.execute(
        "UPDATE memberships SET participation_confirmed = true,"
        " language = CASE WHEN customer_id = $2 THEN 'uk' ELSE 'en' END"
        " WHERE business_id = $1 AND customer_id = ANY($3::bigint[])",
        business.business_id,
        with_app,
        [with_app, without_app],
    )
    await pool.execute(
        "INSERT INTO device_tokens (business_id, token, customer_id, platform)"
        " VALUES ($1, $2, $3, 'android')",
        business.business_id,
        f"token-{with_app}",
        with_app,
    )
    item = news_pb.NewsItem(
        title={"en": "Cherry latte", "uk": "Вишневе лате"},
        text={"en": "Back for spring.", "uk": "Повернулося на весну."},
    )
    item.publication_start_time.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    created = await stub.CreateNewsItem(news_pb.CreateNewsItemRequest(news_item=item), metadata=key)
    sent = await _run(
        stub,
        key,
        admin.DryRunBulkActionRequest(
            action=bulk.BulkAction(
                send_news=bulk.SendNewsAction(news_item_id=created.news_item.news_item_id)
            ),
            selection=_the([with_app, without_app]),
        ),
    )
    assert (sent.estimate.messages_push, sent.estimate.messages_rejected) == (1, 1)
    assert (sent.done, sent.rejected) == (1, 1)
    pushed = await pool.fetch(
        "SELECT customer_id, channel, status, reason, body FROM outbox_messages"
        " WHERE business_id = $1 AND bulk_operation_id = $2",
        business.business_id,
        sent.operation_id,
    )
    assert {row["customer_id"]: tuple(row.values())[1:] for row in pushed} == {
        with_app: ("push", "pending", "", "Вишневе лате\nПовернулося на весну."),
        without_app: ("push", "rejected", "NO_DEVICE", "Cherry latte\nBack for spring."),
    }
