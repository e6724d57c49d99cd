"""Issue 13's scenario end to end, against real processes: an administrator finds the
customers with more than 5 sales, no visit in the last 30 days and more than 100 points,
dry-runs and then credits them 50 special points valid 14 days with a smart message,
watches the progress, the server is SIGKILLed halfway and started again, and every one
of them is credited exactly once and messaged at most once; a till identifying one of
them sees the points.

The customers' sales history (six sales, the last 40 days ago) is written into their
memberships' statistics by hand, standing in for 40 days of tills; their points are
credited through the API, so the ledger matches the pockets (`purse audit`)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import back_office, credit_points, enrol, refused
from support import ServerProcess, Tenant, assert_audit_is_clean, bearer, make_business_through_api
from test_customer_list_api import loyal_but_away

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import bulk_actions_pb2 as bulk
from purse.admin.v1 import customers_pb2 as lists
from purse.admin.v1 import setup_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.config import Settings
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as terminal_pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub

selected_customers = 60
other_customers = 10
chunk_customers = 5
operation_seconds_max = 60.0


def _server(infrastructure: Settings, data_dir: Path) -> ServerProcess:
    return ServerProcess(
        {
            "PURSE_DATABASE_URL": infrastructure.database_url,
            "PURSE_REDIS_URL": infrastructure.redis_url,
            "PURSE_NOTIFY_ENABLED": "false",  # messages stay in the outbox to be counted
            "PURSE_BULK_CHUNK_CUSTOMERS_MAX": str(chunk_customers),
            "PURSE_BULK_CHUNK_PAUSE_MS": "50",
            "PURSE_BULK_POLL_SECONDS": "0.2",
            "PURSE_NOTIFY_SMS_SEGMENT_PRICE_MINOR_UNITS": "7",
        },
        data_dir,
    )


@pytest.fixture
async def first_server(infrastructure: Settings, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = _server(infrastructure, tmp_path).start()
    yield process
    process.stop()


async def _customers(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> tuple[list[int], list[int]]:
    """(selected, others): all credited 150 points; the selected ones with six sales, the
    last 40 days ago, and every other one of them with participation confirmed; the
    others visited yesterday."""
    memberships = await asyncio.gather(
        *(enrol(channel, business) for _ in range(selected_customers + other_customers))
    )
    ids = [membership.customer_id for membership in memberships]
    await back_office(channel, business)
    for start in range(0, len(ids), 10):
        await asyncio.gather(
            *(credit_points(channel, business, each, 150_00) for each in ids[start : start + 10])
        )
    selected, others = ids[:selected_customers], ids[selected_customers:]
    await pool.execute(
        "UPDATE memberships SET sales_count = 6, sales_sum_minor_units = 60000,"
        " first_visit_at = now() - interval '90 days',"
        " last_visit_at = now() - interval '40 days',"
        " participation_confirmed = (customer_id % 2 = 0)"
        " WHERE business_id = $1 AND customer_id = ANY($2::bigint[])",
        business.business_id,
        selected,
    )
    await pool.execute(
        "UPDATE memberships SET sales_count = 6, sales_sum_minor_units = 60000,"
        " last_visit_at = now() - interval '1 day', participation_confirmed = true"
        " WHERE business_id = $1 AND customer_id = ANY($2::bigint[])",
        business.business_id,
        others,
    )
    return selected, others


def _credit() -> bulk.BulkAction:
    return bulk.BulkAction(
        credit_points=lists.PointsCreditOperation(points_hundredths=50_00, valid_days=14),
        message=bulk.BulkMessage(channel=setup_pb2.NOTICE_CHANNEL_SMART),
    )


async def _wait(
    stub: AdminServiceAsyncStub, key: tuple[tuple[str, str]], operation_id: int, done_min: int
) -> bulk.Operation:
    """The operation once at least `done_min` members are done, or once it finished."""
    deadline = time.monotonic() + operation_seconds_max
    while time.monotonic() < deadline:
        answer = await stub.GetOperation(
            admin.GetOperationRequest(operation_id=operation_id), metadata=key
        )
        operation = answer.operation
        if operation.state == bulk.OPERATION_STATE_SUCCEEDED or operation.done >= done_min:
            return operation
        await asyncio.sleep(0.05)
    raise AssertionError(f"operation {operation_id} did not get {done_min} done in time")


async def test_a_bulk_credit_survives_a_kill_halfway_and_credits_everyone_once(
    first_server: ServerProcess, infrastructure: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with grpc.aio.insecure_channel(first_server.target) as channel:
        business = await make_business_through_api(channel, pool)
        selected, others = await _customers(channel, business, pool)
        stub: AdminServiceAsyncStub = AdminServiceStub(channel)
        key = bearer(business.administrator_api_key)
        terminal = await back_office(channel, business)
        dry_run = await stub.DryRunBulkAction(
            admin.DryRunBulkActionRequest(
                action=_credit(),
                selection=bulk.BulkSelection(filter=loyal_but_away),
                terminal_id=terminal.terminal_id,
            ),
            metadata=key,
        )
        figures = dry_run.operation.estimate
        confirmed = sum(1 for each in selected if each % 2 == 0)
        assert dry_run.operation.state == bulk.OPERATION_STATE_DRAFT
        assert (figures.customers, figures.changed) == (selected_customers, selected_customers)
        assert figures.amount_total == selected_customers * 50_00
        assert (figures.messages_sms, figures.messages_push) == (confirmed, 0)
        assert figures.messages_rejected == selected_customers - confirmed
        assert figures.sms_segments == confirmed  # one segment of GSM-7 each
        assert figures.sms_cost_minor_units == 7 * confirmed
        operation_id = dry_run.operation.operation_id
        wrong = await refused(
            stub.StartBulkAction(
                admin.StartBulkActionRequest(operation_id=operation_id, token="not-it"),
                metadata=key,
            )
        )
        assert wrong.code() == grpc.StatusCode.FAILED_PRECONDITION
        started = await stub.StartBulkAction(
            admin.StartBulkActionRequest(operation_id=operation_id, token=dry_run.token),
            metadata=key,
        )
        assert started.operation.state == bulk.OPERATION_STATE_RUNNING
        halfway = await _wait(stub, key, operation_id, selected_customers // 3)
        assert first_server.process is not None
        first_server.process.send_signal(signal.SIGKILL)
        first_server.process.wait(10)
    assert halfway.state == bulk.OPERATION_STATE_RUNNING
    done_at_kill = await pool.fetchval(
        "SELECT done FROM bulk_operations WHERE business_id = $1 AND operation_id = $2",
        business.business_id,
        operation_id,
    )
    assert 0 < done_at_kill < selected_customers

    second = _server(infrastructure, tmp_path / "second").start()
    try:
        async with grpc.aio.insecure_channel(second.target) as channel:
            stub = AdminServiceStub(channel)
            finished = await _wait(stub, key, operation_id, selected_customers + 1)
            assert finished.state == bulk.OPERATION_STATE_SUCCEEDED
            assert (finished.done, finished.failed, finished.rejected) == (selected_customers, 0, 0)
            till = TerminalServiceStub(channel)
            phone = await pool.fetchval(
                "SELECT phone FROM customers WHERE customer_id = $1", selected[0]
            )
            seen = await till.IdentifyCustomer(
                terminal_pb.IdentifyCustomerRequest(
                    identifier=common_pb2.CustomerIdentifier(phone=phone)
                ),
                metadata=bearer(business.cash_desk.api_key),
            )
            points = seen.membership.pockets[0]
            assert (points.balance, points.expiring) == (200_00, 50_00)
    finally:
        assert second.stop() == 0, second.log()
    await _every_one_credited_once(pool, business, operation_id, selected, others)
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def _every_one_credited_once(
    pool: asyncpg.Pool, business: Tenant, operation_id: int, selected: list[int], others: list[int]
) -> None:
    business_id = business.business_id
    credits = await pool.fetch(
        "SELECT customer_id, count(*) AS transactions FROM transactions"
        " WHERE business_id = $1 AND check_number LIKE $2 GROUP BY customer_id",
        business_id,
        f"~bulk:{operation_id}:%",
    )
    assert {row["customer_id"]: row["transactions"] for row in credits} == dict.fromkeys(
        selected, 1
    )
    lots = await pool.fetch(
        "SELECT p.customer_id, l.remaining, l.expires_at - o.started_at AS valid"
        "  FROM points_lots l JOIN pockets p ON p.business_id = l.business_id"
        "   AND p.pocket_id = l.pocket_id"
        "  JOIN bulk_operations o ON o.business_id = l.business_id AND o.operation_id = $2"
        " WHERE l.business_id = $1",
        business_id,
        operation_id,
    )
    assert sorted(row["customer_id"] for row in lots) == sorted(selected)
    assert {(row["remaining"], row["valid"]) for row in lots} == {(50_00, timedelta(days=14))}
    balances = await pool.fetch(
        "SELECT customer_id, balance FROM pockets WHERE business_id = $1 AND account_type_id = 0",
        business_id,
    )
    expected = {**dict.fromkeys(selected, 200_00), **dict.fromkeys(others, 150_00)}
    assert {row["customer_id"]: row["balance"] for row in balances} == expected
    messages = await pool.fetch(
        "SELECT customer_id, count(*) AS sent, min(status) AS status, min(channel) AS channel"
        "  FROM outbox_messages WHERE business_id = $1 AND purpose = 'bulk'"
        " GROUP BY customer_id",
        business_id,
    )
    assert {row["customer_id"]: row["sent"] for row in messages} == dict.fromkeys(selected, 1)
    assert {row["customer_id"]: row["status"] for row in messages} == {
        each: "pending" if each % 2 == 0 else "rejected" for each in selected
    }
    assert {row["channel"] for row in messages} == {"smart"}
    actions = await pool.fetch(
        "SELECT action, count(*) AS entries FROM audit_log"
        " WHERE business_id = $1 AND (resource = 'bulk_operations' OR action = 'credit_points')"
        " GROUP BY action",
        business_id,
    )
    assert {row["action"]: row["entries"] for row in actions} == {
        "start_bulk_action": 1,
        "finish_bulk_action": 1,
        # The points every customer was credited first, one by one, and the bulk credit.
        "credit_points": selected_customers + other_customers + selected_customers,
    }
