"""Special points: live lots are shown as expiring, expired ones are written off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import Tenant, assert_audit_is_clean, new_phone

from purse.config import Settings
from purse.domain.customers import AccessType
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.provisioning import Provisioning
from purse.store.postgres.transactions import TransactionStore


async def test_expired_lots_leave_the_balance_with_an_expire_entry(
    pool: asyncpg.Pool, business: Tenant, infrastructure: Settings
) -> None:
    customers, provisioning = CustomerStore(pool), Provisioning(pool)
    customer_id, _ = await customers.enrol(business.business_id, new_phone(), AccessType.FULL)
    await provisioning.adjust_pocket(business.business_id, customer_id, 0, 1_000)
    now = datetime.now(UTC)
    await provisioning.points_lot(business.business_id, customer_id, 700, now - timedelta(hours=1))
    await provisioning.points_lot(business.business_id, customer_id, 300, now + timedelta(days=3))
    before = await customers.membership(business.business_id, customer_id)
    assert before is not None
    points = before.pockets[0]
    assert (points.balance, points.expiring) == (2_000, 300)
    assert points.next_expiry is not None and points.next_expiry > now

    written, changed = 0, set()
    while True:
        batch, customers_changed = await TransactionStore(pool).write_off_expired_lots(1_000)
        if not batch:
            break
        written += batch
        changed.update(customers_changed)
    assert written >= 1
    assert (business.business_id, customer_id) in changed  # told to the balance cache
    after = await customers.membership(business.business_id, customer_id)
    assert after is not None
    assert (after.pockets[0].balance, after.pockets[0].expiring) == (1_300, 300)
    kinds = await pool.fetch(
        "SELECT e.kind, e.amount FROM ledger_entries e"
        "  JOIN pockets p USING (business_id, pocket_id)"
        " WHERE p.business_id = $1 AND p.customer_id = $2 AND e.kind = 'expire'",
        business.business_id,
        customer_id,
    )
    assert [(row["kind"], row["amount"]) for row in kinds] == [("expire", -700)]
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


@pytest.mark.ledger_set_by_hand
async def test_expiry_never_takes_points_that_pending_transactions_hold(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    customers, provisioning = CustomerStore(pool), Provisioning(pool)
    customer_id, _ = await customers.enrol(business.business_id, new_phone(), AccessType.FULL)
    await provisioning.points_lot(
        business.business_id, customer_id, 500, datetime.now(UTC) - timedelta(minutes=1)
    )
    await pool.execute(
        "UPDATE pockets SET held = 400 WHERE business_id = $1 AND customer_id = $2",
        business.business_id,
        customer_id,
    )
    while (await TransactionStore(pool).write_off_expired_lots(1_000))[0] > 0:
        pass
    after = await customers.membership(business.business_id, customer_id)
    assert after is not None
    assert (after.pockets[0].balance, after.pockets[0].held) == (400, 400)
