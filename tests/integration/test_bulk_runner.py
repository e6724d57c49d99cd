"""The bulk runner on a real PostgreSQL: a crash between writing members' transactions and
settling them, and two runners at once, still credit each member exactly once and count
each once; members settled before are never touched again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from support import Tenant, new_phone

from purse.domain.administrators import Actor
from purse.domain.bulk_actions import BulkAction, MemberState, OperationState
from purse.domain.customer_operations import PointsCredit, generated_coupon_code_alphabet
from purse.domain.customers import AccessType
from purse.service.admin.bulk_actions import BulkActions, Selection
from purse.service.batch_writer import BatchWriter
from purse.service.bulk_runner import BulkRunner
from purse.service.unit_of_work import UnitOfWork
from purse.store.postgres.batches import BatchStore
from purse.store.postgres.bulk_actions import BulkActionStore
from purse.store.postgres.customer_list import ListScope, selection_sql
from purse.store.postgres.customer_operations import CustomerOperationStore
from purse.store.postgres.customers import CustomerStore

members_count = 12
chunk = 5


def _text(language: str, accrued: int, redeemed: int, balance: int) -> str:
    return f"{accrued} {redeemed} {balance}"


@pytest.fixture
async def writer(pool: asyncpg.Pool) -> AsyncIterator[BatchWriter]:
    started = BatchWriter(
        BatchStore(pool, _text), 100, 1_000, 1, CollectorRegistry(), background_operations_max=3
    )
    started.start()
    yield started
    await started.close()


def _runner(pool: asyncpg.Pool, writer: BatchWriter) -> BulkRunner:
    return BulkRunner(
        BulkActionStore(pool),
        writer,
        CustomerOperationStore(pool),
        UnitOfWork(),
        None,
        lambda: generated_coupon_code_alphabet[:12],
        chunk,
        60.0,
        analyze_after_members=chunk,
    )


async def _started_credit(pool: asyncpg.Pool, business: Tenant) -> tuple[int, list[int]]:
    """A running bulk credit of 5 points to `members_count` new customers."""
    customers = CustomerStore(pool)
    ids = [
        (await customers.enrol(business.business_id, new_phone(), AccessType.FULL))[0]
        for _ in range(members_count)
    ]
    actor = Actor(business.business_id, None, "operator")
    actions = BulkActions(
        BulkActionStore(pool), selection_sql, CustomerOperationStore(pool), None, None, 0
    )
    scope = ListScope(customer_ids=tuple(ids))
    dry_run = await actions.dry_run(
        actor,
        BulkAction(PointsCredit(5_00)),
        Selection(scope, None, {}),
        business.cash_desk.terminal_id,
    )
    await actions.start(actor, dry_run.operation.operation_id, dry_run.token)
    return dry_run.operation.operation_id, ids


async def _credits(pool: asyncpg.Pool, business: Tenant, operation_id: int) -> dict[int, int]:
    rows = await pool.fetch(
        "SELECT t.customer_id, count(*) AS entries FROM ledger_entries e"
        "  JOIN transactions t ON t.business_id = e.business_id"
        "   AND t.transaction_id = e.transaction_id"
        " WHERE t.business_id = $1 AND t.check_number LIKE $2 GROUP BY t.customer_id",
        business.business_id,
        f"~bulk:{operation_id}:%",
    )
    return {row["customer_id"]: row["entries"] for row in rows}


async def test_members_written_before_a_crash_are_answered_from_their_transactions(
    pool: asyncpg.Pool, business: Tenant, writer: BatchWriter
) -> None:
    operation_id, ids = await _started_credit(pool, business)
    store = BulkActionStore(pool)
    runner = _runner(pool, writer)
    row = await store.operation(business.business_id, operation_id)
    assert row is not None
    run = await runner._prepared(row)
    async with store.locked(business.business_id, operation_id) as session:
        assert session is not None
        first = await store.pending_chunk(business.business_id, operation_id, 0, chunk)
        # The crash: the chunk's transactions committed, its members never settled.
        await writer.submit_background(
            business.business_id, [runner._sale(run, member) for member in first]
        )
    await runner.run_once()
    finished = await store.operation(business.business_id, operation_id)
    assert finished is not None and finished.state is OperationState.SUCCEEDED
    assert (finished.done, finished.failed, finished.rejected) == (members_count, 0, 0)
    assert await _credits(pool, business, operation_id) == dict.fromkeys(ids, 1)


async def test_two_runners_at_once_credit_each_member_once(
    pool: asyncpg.Pool, business: Tenant, writer: BatchWriter
) -> None:
    operation_id, ids = await _started_credit(pool, business)
    await asyncio.gather(_runner(pool, writer).run_once(), _runner(pool, writer).run_once())
    finished = await BulkActionStore(pool).operation(business.business_id, operation_id)
    assert finished is not None and finished.state is OperationState.SUCCEEDED
    assert finished.done == members_count
    assert await _credits(pool, business, operation_id) == dict.fromkeys(ids, 1)


async def test_a_member_settled_once_is_not_settled_again(
    pool: asyncpg.Pool, business: Tenant, writer: BatchWriter
) -> None:
    operation_id, ids = await _started_credit(pool, business)
    store = BulkActionStore(pool)
    async with store.locked(business.business_id, operation_id) as session:
        assert session is not None
        settled = [(ids[0], MemberState.FAILED, "BALANCE_LIMIT")]
        assert await session.settle(settled) is OperationState.RUNNING
        await session.settle([(ids[0], MemberState.DONE, "")])
        async with store.locked(business.business_id, operation_id) as other:
            assert other is None  # the lock is this session's
    row = await store.operation(business.business_id, operation_id)
    assert row is not None and (row.done, row.failed) == (0, 1)
    state = await pool.fetchval(
        "SELECT state FROM bulk_operation_members WHERE business_id = $1"
        " AND operation_id = $2 AND customer_id = $3",
        business.business_id,
        operation_id,
        ids[0],
    )
    assert state == "failed"


async def test_a_credit_analyses_the_tables_it_grows_once_it_reached_enough_members(
    pool: asyncpg.Pool, business: Tenant, writer: BatchWriter
) -> None:
    await _started_credit(pool, business)
    started = await pool.fetchval("SELECT clock_timestamp()")
    await _runner(pool, writer).run_once()
    analysed = await pool.fetchval(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'points_lots'"
    )
    assert analysed is not None and analysed >= started
