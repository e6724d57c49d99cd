"""The batch writer on a real PostgreSQL: a bad operation fails alone, never its batch.

Operations are handed to the writer straight, as the service would, so that the poison
is one no validation in front of the writer would let through: what is tested is the
mechanism's own isolation.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from support import Tenant, assert_audit_is_clean, new_phone

from purse.config import Settings
from purse.domain.customers import AccessType
from purse.domain.settlement import Statistics
from purse.domain.transactions import (
    Effects,
    LedgerKind,
    PocketChange,
    Refusal,
    TransactionStatus,
    pocket_balance_max,
)
from purse.service.batch_writer import BatchWriter
from purse.service.operations import Sale
from purse.store.postgres.batches import BatchStore
from purse.store.postgres.customers import CustomerStore


def accrual(business: Tenant, customer_id: int, number: str, points: int) -> Sale:
    return Sale(
        terminal_id=business.cash_desk.terminal_id,
        point_of_sale_id=business.point_of_sale_id,
        check_number=number,
        request_digest=number.encode(),
        customer_id=customer_id,
        status=TransactionStatus.COMPLETED,
        receipt=None,
        sum_minor_units=1_000,
        effects=Effects(pockets=(PocketChange((customer_id, 0), LedgerKind.ACCRUE, points),)),
        statistics=Statistics(customer_id, 1, 1_000),
    )


poison_number = "W-" + "X" * 80


def text(language: str, accrued: int, redeemed: int, balance: int) -> str:
    return f"{accrued} {redeemed} {balance}"


@pytest.mark.parametrize("together", [False, True], ids=["submitted apart", "submitted together"])
async def test_an_operation_that_breaks_its_batch_fails_alone(
    pool: asyncpg.Pool, business: Tenant, infrastructure: Settings, together: bool
) -> None:
    customers = CustomerStore(pool)
    good_ids = [
        (await customers.enrol(business.business_id, new_phone(), AccessType.FULL))[0]
        for _ in range(12)
    ]
    poisoned_id, _ = await customers.enrol(business.business_id, new_phone(), AccessType.FULL)
    writer = BatchWriter(BatchStore(pool, text), 500, 1_000, 1, CollectorRegistry())
    writer.start()
    sales = [accrual(business, customer, f"W-{n}", 100) for n, customer in enumerate(good_ids)]
    # A check number longer than the table allows: PostgreSQL refuses the whole batch.
    sales.insert(6, accrual(business, poisoned_id, poison_number, 100))
    try:
        outcomes: list[object] = []
        if together:
            outcomes += await writer.submit_many(business.business_id, sales, 5)
        else:
            outcomes += await asyncio.gather(
                *(writer.submit(business.business_id, sale, 5) for sale in sales),
                return_exceptions=True,
            )
    finally:
        await writer.close()
    poisoned = outcomes.pop(6)
    assert isinstance(poisoned, Exception) and not isinstance(poisoned, AssertionError)
    assert all(not isinstance(outcome, BaseException) for outcome in outcomes), outcomes
    assert all(outcome.refusal is None for outcome in outcomes)  # type: ignore[attr-defined]
    balances = await pool.fetch(
        "SELECT customer_id, balance FROM pockets WHERE business_id = $1"
        " AND customer_id = ANY($2::bigint[]) AND account_type_id = 0",
        business.business_id, [*good_ids, poisoned_id],
    )  # fmt: skip
    assert {row["customer_id"]: row["balance"] for row in balances} == {
        **dict.fromkeys(good_ids, 100),
        poisoned_id: 0,
    }
    stored = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE business_id = $1 AND check_number = $2",
        business.business_id,
        poison_number,
    )
    assert stored == 0
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def test_a_check_number_repeated_in_one_submission_follows_the_first(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, new_phone(), AccessType.FULL
    )
    writer = BatchWriter(BatchStore(pool, text), 500, 1_000, 1, CollectorRegistry())
    writer.start()
    first = accrual(business, customer_id, "R-1", 100)
    try:
        outcomes = await writer.submit_many(business.business_id, [first, first], 5)
    finally:
        await writer.close()
    leader, follower = outcomes
    assert not isinstance(leader, BaseException) and not isinstance(follower, BaseException)
    assert leader.leader_digest is None
    assert follower.leader_digest == first.request_digest
    assert follower.transaction_id == leader.transaction_id
    balance = await pool.fetchval(
        "SELECT balance FROM pockets WHERE business_id = $1 AND customer_id = $2"
        " AND account_type_id = 0",
        business.business_id, customer_id,
    )  # fmt: skip
    assert balance == 100


@pytest.mark.parametrize("cut", [0, 1])
async def test_checks_of_one_customer_in_one_batch_report_their_own_statistics(
    pool: asyncpg.Pool, business: Tenant, cut: int
) -> None:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, new_phone(), AccessType.FULL
    )
    store = BatchStore(pool, text)
    sales = [accrual(business, customer_id, f"S-{cut}-{n}", 100) for n in range(3)]
    outcomes, _ = await store.apply(business.business_id, sales, [])
    counts = [outcome.totals.sales_count for outcome in outcomes if outcome.totals]
    balances = [outcome.balances[(customer_id, 0)].balance for outcome in outcomes]
    assert counts == [1, 2, 3]
    assert balances == [100, 200, 300]


async def test_an_accrual_past_the_largest_balance_is_refused_and_stored_as_the_answer(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, new_phone(), AccessType.FULL
    )
    store = BatchStore(pool, text)
    sales = [
        accrual(business, customer_id, "L-1", 100),
        accrual(business, customer_id, "L-2", pocket_balance_max),
    ]
    outcomes, _ = await store.apply(business.business_id, sales, [])
    assert [outcome.refusal for outcome in outcomes] == [None, Refusal.BALANCE_LIMIT]
    status = await pool.fetchval(
        "SELECT status FROM transactions WHERE business_id = $1 AND check_number = 'L-2'",
        business.business_id,
    )
    assert status == "rejected"
