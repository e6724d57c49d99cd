"""Lock order and deadlocks, on the real PostgreSQL: the expiry sweeper locks pockets before
their lots, as refunds and batches do, and a deadlock all the same is run again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from support import Tenant, assert_audit_is_clean, new_phone

from purse.config import Settings
from purse.domain.customers import AccessType
from purse.store.postgres.conflicts import retry_on_conflict
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.provisioning import Provisioning
from purse.store.postgres.transactions import TransactionStore

# Longer than PostgreSQL's deadlock_timeout (1 s): a deadlock would be detected within it.
wait_seconds_max = 10.0
# Long enough for a sweep that is going to lock a lot to have done so.
sweep_head_start_seconds = 0.5


async def _points_pocket(pool: asyncpg.Pool, business: Tenant, points: int) -> tuple[int, int]:
    """A new customer with `points`: (customer id, points pocket id)."""
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, new_phone(), AccessType.FULL
    )
    await Provisioning(pool).adjust_pocket(business.business_id, customer_id, 0, points)
    pocket_id: int = await pool.fetchval(
        "SELECT pocket_id FROM pockets"
        " WHERE business_id = $1 AND customer_id = $2 AND account_type_id = 0",
        business.business_id, customer_id,
    )  # fmt: skip
    return customer_id, pocket_id


async def _sweep_until_done(pool: asyncpg.Pool) -> None:
    while (await TransactionStore(pool).write_off_expired_lots(1_000))[0] > 0:
        pass


async def test_a_sweep_meeting_a_refund_that_holds_the_pocket_leaves_it_the_lot(
    pool: asyncpg.Pool, business: Tenant, infrastructure: Settings
) -> None:
    customer_id, pocket_id = await _points_pocket(pool, business, 1_000)
    expired = datetime.now(UTC) - timedelta(minutes=1)
    lot = await Provisioning(pool).points_lot(business.business_id, customer_id, 500, expired)
    async with pool.acquire() as refund, refund.transaction():
        # What a refund locks, in its order: the pocket, then (after a while) the lot.
        await refund.execute(
            "SELECT 1 FROM pockets WHERE business_id = $1 AND pocket_id = $2 FOR UPDATE",
            business.business_id, pocket_id,
        )  # fmt: skip
        sweep = asyncio.create_task(TransactionStore(pool).write_off_expired_lots(1_000))
        await asyncio.sleep(sweep_head_start_seconds)
        lock_the_lot = refund.execute(
            "SELECT 1 FROM points_lots WHERE business_id = $1 AND lot_id = $2 FOR UPDATE",
            business.business_id, lot,
        )  # fmt: skip
        await asyncio.wait_for(lock_the_lot, wait_seconds_max)
        _, customers = await asyncio.wait_for(sweep, wait_seconds_max)
    # The sweep skipped the held pocket and never touched its lot; the next one takes it.
    assert (business.business_id, customer_id) not in customers
    await _sweep_until_done(pool)
    balance = await pool.fetchval(
        "SELECT balance FROM pockets WHERE business_id = $1 AND pocket_id = $2",
        business.business_id, pocket_id,
    )  # fmt: skip
    assert balance == 1_000
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def test_two_transactions_that_deadlock_both_pass_the_loser_after_a_retry(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    _, first = await _points_pocket(pool, business, 100)
    _, second = await _points_pocket(pool, business, 100)
    attempts: list[str] = []
    both_hold_one = asyncio.Barrier(2)

    async def lock_both(name: str, one: int, other: int) -> None:
        async def transaction() -> None:
            attempts.append(name)
            async with pool.acquire() as connection, connection.transaction():
                for pocket_id in (one, other):
                    await connection.execute(
                        "UPDATE pockets SET updated_at = now()"
                        " WHERE business_id = $1 AND pocket_id = $2",
                        business.business_id, pocket_id,
                    )  # fmt: skip
                    if len(attempts) <= 2 and pocket_id == one:
                        await both_hold_one.wait()  # opposite orders: a deadlock

        await retry_on_conflict(transaction, 3, name)

    await asyncio.wait_for(
        asyncio.gather(lock_both("a", first, second), lock_both("b", second, first)),
        wait_seconds_max,
    )
    assert sorted(attempts) in (["a", "a", "b"], ["a", "b", "b"])
