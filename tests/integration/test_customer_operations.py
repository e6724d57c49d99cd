"""Operations on one customer from the control panel, on a real PostgreSQL and Redis.

Each operation goes through the batch writer and settlement as a sale does; the
`business` fixture audits the ledger after every test (pockets equal their ledger, lots
never hold more than their pocket).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from support import Tenant, TerminalAccess, new_phone

from purse.api.grpc.terminal.stored_receipts import StoredReceipts
from purse.domain.administrators import Actor
from purse.domain.customer_operations import (
    AccountCredit,
    AccountDebit,
    CouponIssue,
    CustomerOperation,
    PointsCredit,
    PointsDebit,
    check_number_of,
    effects_of_operation,
    generated_coupon_code_alphabet,
    generated_coupon_code_characters,
    request_digest,
)
from purse.domain.customers import AccessType, PocketKind
from purse.domain.errors import AlreadyExists, DomainError, FailedPrecondition, NotFound
from purse.domain.identifiers import Identifier, IdentifierKind
from purse.domain.terminals import TerminalKind
from purse.domain.transactions import Effects, TransactionStatus
from purse.service.admin.customer_operations import CustomerOperations, OperationResult
from purse.service.admin.programs import Programs
from purse.service.batch_writer import BatchWriter
from purse.service.operations import Sale
from purse.service.terminal.history import History, ListFilter
from purse.service.terminal.identification import IdentificationService
from purse.service.terminal.refunds import Refunds
from purse.service.unit_of_work import UnitOfWork
from purse.store.postgres.batches import BatchStore
from purse.store.postgres.customer_operations import CustomerOperationStore
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.programs import ProgramStore
from purse.store.postgres.provisioning import Provisioning
from purse.store.postgres.refunds import RefundStore
from purse.store.postgres.terminals import TerminalStore
from purse.store.postgres.transactions import TransactionStore
from purse.store.redis.balance_cache import BalanceCache
from purse.store.redis.rate_limits import AttemptLimit
from purse.store.redis.steward_codes import StewardCodes

_tomorrow = datetime.now(UTC) + timedelta(days=1)


def text(language: str, accrued: int, redeemed: int, balance: int) -> str:
    return f"{accrued} {redeemed} {balance}"


@dataclass
class Desk:
    """The use case on a running writer, for one business, with what tests look at."""

    pool: asyncpg.Pool
    business: Tenant
    steward: TerminalAccess  # the terminal operations go through unless a test names one
    operations: CustomerOperations
    writer: BatchWriter
    cache: BalanceCache
    changes: UnitOfWork
    actor: Actor

    async def apply(
        self, key: str, customer_id: int, operation: CustomerOperation, terminal_id: int = 0
    ) -> OperationResult:
        return await self.operations.apply(
            self.actor,
            terminal_id or self.steward.terminal_id,
            key,
            customer_id,
            operation,
        )

    async def customer(self, access_type: AccessType = AccessType.FULL) -> int:
        customer_id, _ = await CustomerStore(self.pool).enrol(
            self.business.business_id, new_phone(), access_type
        )
        return customer_id

    async def balance(self, customer_id: int, account_type_id: int = 0) -> int | None:
        value = await self.pool.fetchval(
            "SELECT balance FROM pockets WHERE business_id = $1 AND customer_id = $2"
            " AND account_type_id = $3",
            self.business.business_id,
            customer_id,
            account_type_id,
        )
        return None if value is None else int(value)

    async def lots(self, customer_id: int) -> list[int]:
        """What is left of the customer's lots, soonest-to-expire first."""
        rows = await self.pool.fetch(
            "SELECT l.remaining FROM points_lots l JOIN pockets p USING (business_id, pocket_id)"
            " WHERE l.business_id = $1 AND p.customer_id = $2 ORDER BY l.expires_at",
            self.business.business_id,
            customer_id,
        )
        return [row["remaining"] for row in rows]

    async def count(self, table: str, where: str = "true", *arguments: object) -> int:
        # `table` and `where` are the tests' own literals.
        value = await self.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE business_id = $1 AND ({where})",
            self.business.business_id,
            *arguments,
        )
        return int(value)


@pytest.fixture
async def desk(
    pool: asyncpg.Pool, business: Tenant, steward: TerminalAccess, redis_client: redis.Redis
) -> AsyncIterator[Desk]:
    cache = BalanceCache(redis_client, 60, 1.0, CollectorRegistry())
    changes = UnitOfWork(cache)
    writer = BatchWriter(BatchStore(pool, text), 500, 1_000, 2, CollectorRegistry(), changes)
    writer.start()
    owner = await pool.fetchrow(
        "SELECT administrator_id, login FROM administrators WHERE business_id = $1",
        business.business_id,
    )
    assert owner is not None
    operations = CustomerOperations(
        CustomerOperationStore(pool), writer, TransactionStore(pool), CustomerStore(pool)
    )
    actor = Actor(business.business_id, owner["administrator_id"], f"{owner['login']} (owner)")
    try:
        yield Desk(pool, business, steward, operations, writer, cache, changes, actor)
    finally:
        await writer.close()


async def refusal_of(call: Awaitable[object]) -> DomainError:
    try:
        await call
    except DomainError as refusal:
        return refusal
    raise AssertionError("the operation was not refused")


async def test_a_points_credit_is_an_adjust_entry_of_a_completed_transaction_of_the_terminal(
    desk: Desk,
) -> None:
    customer = await desk.customer()
    result = await desk.apply("credit-1", customer, PointsCredit(1_500))
    record = result.transaction
    assert record.status is TransactionStatus.COMPLETED
    assert record.terminal_id == desk.steward.terminal_id
    assert record.check_number == "~admin:credit-1" == check_number_of("credit-1")
    assert record.customer_id == customer and record.receipt is None
    assert result.operation == PointsCredit(1_500)
    assert await desk.balance(customer) == 1_500
    entries = await desk.pool.fetch(
        "SELECT kind, amount, expires_at, transaction_id FROM ledger_entries"
        " WHERE business_id = $1 AND transaction_id = $2",
        desk.business.business_id,
        record.transaction_id,
    )
    assert [tuple(entry) for entry in entries] == [("adjust", 1_500, None, record.transaction_id)]
    assert result.membership is not None and result.membership.pockets[0].balance == 1_500


async def test_special_points_are_a_lot_that_expires_when_asked(desk: Desk) -> None:
    customer = await desk.customer()
    expires_at = (_tomorrow + timedelta(days=29)).replace(microsecond=0)
    result = await desk.apply("special", customer, PointsCredit(700, expires_at))
    lot = await desk.pool.fetchrow(
        "SELECT l.remaining, l.expires_at FROM points_lots l JOIN pockets p USING (business_id,"
        " pocket_id) WHERE l.business_id = $1 AND p.customer_id = $2",
        desk.business.business_id,
        customer,
    )
    assert lot is not None and tuple(lot) == (700, expires_at)
    entry = await desk.pool.fetchval(
        "SELECT expires_at FROM ledger_entries WHERE business_id = $1 AND transaction_id = $2",
        desk.business.business_id,
        result.transaction.transaction_id,
    )
    assert entry == expires_at
    assert result.membership is not None
    points = result.membership.pockets[0]
    assert (points.balance, points.expiring, points.next_expiry) == (700, 700, expires_at)


async def test_a_points_debit_takes_the_soonest_expiring_points_first(desk: Desk) -> None:
    customer = await desk.customer()
    await desk.apply("plain", customer, PointsCredit(1_000))
    await desk.apply("later", customer, PointsCredit(300, _tomorrow + timedelta(days=9)))
    await desk.apply("sooner", customer, PointsCredit(200, _tomorrow))
    await desk.apply("debit", customer, PointsDebit(400))
    assert await desk.lots(customer) == [0, 100]
    assert await desk.balance(customer) == 1_100


async def test_special_points_credited_and_spent_in_one_batch_leave_the_lot_what_is_left(
    desk: Desk,
) -> None:
    customer = await desk.customer()
    business_id = desk.business.business_id
    operations: list[CustomerOperation] = [
        PointsCredit(500, _tomorrow),
        PointsDebit(200),
        PointsCredit(100, _tomorrow + timedelta(days=1)),
        PointsDebit(350),
    ]
    sales = [
        Sale(
            terminal_id=desk.steward.terminal_id,
            point_of_sale_id=desk.business.point_of_sale_id,
            check_number=f"~admin:batch-{index}",
            request_digest=request_digest(customer, operation),
            customer_id=customer,
            status=TransactionStatus.COMPLETED,
            receipt=None,
            sum_minor_units=0,
            effects=effects_of_operation(operation, customer),
            refusals_final=True,
        )
        for index, operation in enumerate(operations)
    ]
    outcomes, _ = await BatchStore(desk.pool, text).apply(business_id, sales, [])
    assert [outcome.refusal for outcome in outcomes] == [None] * 4
    # 200 from the first lot, then 300 more from it and 50 from the second.
    assert await desk.lots(customer) == [0, 50]
    assert await desk.balance(customer) == 50


async def test_a_retry_with_the_same_key_answers_the_first_result_and_applies_once(
    desk: Desk,
) -> None:
    customer = await desk.customer()
    first = await desk.apply("retried", customer, PointsCredit(250))
    again = await desk.apply("retried", customer, PointsCredit(250))
    racing = await asyncio.gather(
        *(desk.apply("raced", customer, PointsCredit(10)) for _ in range(8))
    )
    assert again.transaction == first.transaction and again.operation == first.operation
    assert len({result.transaction.transaction_id for result in racing}) == 1
    assert await desk.balance(customer) == 260
    assert await desk.count("ledger_entries", "kind = 'adjust'") == 2
    assert await desk.count("audit_log") == 2


async def test_the_same_key_with_another_operation_is_refused_as_reused(desk: Desk) -> None:
    customer, other = await desk.customer(), await desk.customer()
    await desk.apply("reused", customer, PointsCredit(250))
    for operation, customer_id in (
        (PointsCredit(251), customer),
        (PointsDebit(250), customer),
        (PointsCredit(250), other),
    ):
        refusal = await refusal_of(desk.apply("reused", customer_id, operation))
        assert isinstance(refusal, AlreadyExists) and refusal.reason == "IDEMPOTENCY_KEY_REUSED"
    assert await desk.balance(customer) == 250 and await desk.balance(other) == 0


async def test_a_key_a_till_used_as_a_check_number_is_refused_as_reused(desk: Desk) -> None:
    customer = await desk.customer()
    await BatchStore(desk.pool, text).apply(
        desk.business.business_id,
        [
            Sale(
                terminal_id=desk.steward.terminal_id,
                point_of_sale_id=desk.business.point_of_sale_id,
                check_number="~admin:till",
                request_digest=b"a till's check",
                customer_id=None,
                status=TransactionStatus.COMPLETED,
                receipt=None,
                sum_minor_units=100,
                effects=Effects(),
            )
        ],
        [],
    )
    refusal = await refusal_of(desk.apply("till", customer, PointsCredit(1)))
    assert refusal.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_a_debit_beyond_the_balance_changes_nothing_and_its_refusal_is_the_keys_answer(
    desk: Desk,
) -> None:
    customer = await desk.customer()
    await desk.apply("credit", customer, PointsCredit(100))
    refusal = await refusal_of(desk.apply("overdraft", customer, PointsDebit(101)))
    assert isinstance(refusal, FailedPrecondition) and refusal.reason == "INSUFFICIENT_POINTS"
    await desk.apply("more", customer, PointsCredit(100))
    # The first answer stands, although the debit would fit now.
    again = await refusal_of(desk.apply("overdraft", customer, PointsDebit(101)))
    assert again.reason == "INSUFFICIENT_POINTS"
    assert await desk.balance(customer) == 200
    assert await desk.count("ledger_entries", "amount < 0") == 0
    assert await desk.count("audit_log", "action = 'debit_points'") == 0
    status = await desk.pool.fetchval(
        "SELECT status FROM transactions WHERE business_id = $1 AND check_number = $2",
        desk.business.business_id,
        "~admin:overdraft",
    )
    assert status == "rejected"


async def test_an_account_is_replenished_and_debited_but_never_overdrawn(desk: Desk) -> None:
    customer = await desk.customer()
    money = desk.business.money_account_type_id
    refusal = await refusal_of(desk.apply("empty", customer, AccountDebit(money, 1)))
    assert isinstance(refusal, FailedPrecondition) and refusal.reason == "INSUFFICIENT_BALANCE"
    assert await desk.balance(customer, money) is None  # a debit opens no pocket
    credited = await desk.apply("top-up", customer, AccountCredit(money, 5_000))
    await desk.apply("spend", customer, AccountDebit(money, 1_200))
    refusal = await refusal_of(desk.apply("too-much", customer, AccountDebit(money, 3_801)))
    assert refusal.reason == "INSUFFICIENT_BALANCE"
    assert await desk.balance(customer, money) == 3_800
    assert credited.membership is not None
    assert {pocket.kind for pocket in credited.membership.pockets} == {
        PocketKind.POINTS,
        PocketKind.MONEY,
    }


async def test_an_account_operation_names_an_account_type_of_this_business_that_is_adjustable(
    desk: Desk, pool: asyncpg.Pool
) -> None:
    customer = await desk.customer()
    business_id = desk.business.business_id
    achievements = await Provisioning(pool).account_type(
        business_id, PocketKind.ACHIEVEMENTS, "Coffee", {"en": "Coffee"}, purchases_per_reward=7
    )
    refusal = await refusal_of(desk.apply("stamps", customer, AccountCredit(achievements, 1)))
    assert isinstance(refusal, FailedPrecondition)
    assert refusal.reason == "ACCOUNT_KIND_NOT_ADJUSTABLE"
    refusal = await refusal_of(desk.apply("unknown", customer, AccountCredit(10**12, 1)))
    assert isinstance(refusal, NotFound) and refusal.reason == "ACCOUNT_TYPE_NOT_FOUND"
    money = desk.business.money_account_type_id
    await desk.apply("before", customer, AccountCredit(money, 500))
    await pool.execute(
        "UPDATE account_types SET archived_at = now() WHERE business_id = $1"
        " AND account_type_id = $2",
        business_id,
        money,
    )
    refusal = await refusal_of(desk.apply("archived", customer, AccountCredit(money, 1)))
    assert refusal.reason == "ARCHIVED"
    # What an archived account holds can still be taken back.
    await desk.apply("drain", customer, AccountDebit(money, 500))
    assert await desk.balance(customer, money) == 0


async def test_a_coupon_is_issued_into_the_wallet_and_counted_in_its_series(
    desk: Desk, pool: asyncpg.Pool
) -> None:
    customer = await desk.customer()
    business_id = desk.business.business_id
    series = await Provisioning(pool).coupon_series(business_id, "Ten off", "fixed", 1_000)
    named = await desk.apply("named", customer, CouponIssue(series, "WELCOME-1"))
    generated = await desk.apply("generated", customer, CouponIssue(series))
    assert named.operation == CouponIssue(series, "WELCOME-1")
    code = generated.operation.code  # type: ignore[union-attr]
    assert code is not None and len(code) == generated_coupon_code_characters
    assert set(code) <= set(generated_coupon_code_alphabet)
    again = await desk.apply("generated", customer, CouponIssue(series))
    assert again.operation == generated.operation  # the code it got the first time
    wallet = await pool.fetch(
        "SELECT code, status, series_id FROM coupons WHERE business_id = $1 AND customer_id = $2"
        " ORDER BY coupon_id",
        business_id,
        customer,
    )
    assert [tuple(row) for row in wallet] == [
        ("WELCOME-1", "issued", series),
        (code, "issued", series),
    ]
    issued = await pool.fetchval(
        "SELECT coupons_issued FROM coupon_series WHERE business_id = $1 AND series_id = $2",
        business_id,
        series,
    )
    assert issued == 2
    audited = await pool.fetch(
        "SELECT resource, resource_id, before, after FROM audit_log WHERE business_id = $1"
        " ORDER BY entry_id",
        business_id,
    )
    assert [(row["resource"], row["resource_id"], row["before"]) for row in audited] == [
        ("coupons", str(customer), None)
    ] * 2
    assert audited[1]["after"]["operation"] == {
        "kind": "issue_coupon",
        "series_id": series,
        "code": code,
    }


async def test_a_coupon_series_at_its_cap_refuses_one_more_and_counts_none(
    desk: Desk, pool: asyncpg.Pool
) -> None:
    customers = [await desk.customer() for _ in range(3)]
    business_id = desk.business.business_id
    series = await Provisioning(pool).coupon_series(
        business_id, "Two only", "percent", 500, coupons_max=2
    )
    results = await asyncio.gather(
        *(
            desk.apply(f"cap-{n}", customer, CouponIssue(series))
            for n, customer in enumerate(customers)
        ),
        return_exceptions=True,
    )
    refusals = [result for result in results if isinstance(result, DomainError)]
    assert [refusal.reason for refusal in refusals] == ["COUPON_SERIES_EXHAUSTED"]
    assert isinstance(refusals[0], FailedPrecondition)
    assert await desk.count("coupons") == 2
    assert (
        await pool.fetchval(
            "SELECT coupons_issued FROM coupon_series WHERE business_id = $1", business_id
        )
        == 2
    )


async def test_a_coupon_is_refused_for_an_archived_series_a_taken_code_or_another_business(
    desk: Desk, pool: asyncpg.Pool, business: Tenant
) -> None:
    customer = await desk.customer()
    provisioning = Provisioning(pool)
    series = await provisioning.coupon_series(business.business_id, "Gift", "fixed", 100)
    await desk.apply("first", customer, CouponIssue(series, "TAKEN"))
    taken = await refusal_of(desk.apply("second", customer, CouponIssue(series, "TAKEN")))
    assert isinstance(taken, AlreadyExists) and taken.reason == "CODE_TAKEN"
    elsewhere = await provisioning.business("Another", "UAH", 2)
    foreign = await provisioning.coupon_series(elsewhere, "Theirs", "fixed", 100)
    missing = await refusal_of(desk.apply("foreign", customer, CouponIssue(foreign)))
    assert isinstance(missing, NotFound) and missing.reason == "COUPON_SERIES_NOT_FOUND"
    await pool.execute(
        "UPDATE coupon_series SET archived_at = now() WHERE business_id = $1 AND series_id = $2",
        business.business_id,
        series,
    )
    archived = await refusal_of(desk.apply("archived", customer, CouponIssue(series)))
    assert isinstance(archived, FailedPrecondition) and archived.reason == "ARCHIVED"
    assert await desk.count("coupons") == 1


async def test_a_code_committed_while_the_batch_wrote_rolls_the_whole_operation_back(
    desk: Desk, pool: asyncpg.Pool
) -> None:
    customer = await desk.customer()
    business_id = desk.business.business_id
    series = await Provisioning(pool).coupon_series(business_id, "Race", "fixed", 100)
    async with pool.acquire() as other, other.transaction():
        await other.execute(
            "INSERT INTO coupons (business_id, series_id, code) VALUES ($1, $2, 'RACE')",
            business_id,
            series,
        )
        racing = asyncio.create_task(desk.apply("race", customer, CouponIssue(series, "RACE")))
        await waiting_for_a_lock(pool)  # the batch's insert waits on the code's index entry
    refusal = await refusal_of(racing)
    assert isinstance(refusal, AlreadyExists) and refusal.reason == "CODE_TAKEN"
    # Nothing of it was committed, the audit entry included; the key is still free.
    assert await desk.count("transactions") == 0
    assert await desk.count("audit_log") == 0
    assert await desk.count("coupons", "customer_id IS NOT NULL") == 0
    await desk.apply("race", customer, CouponIssue(series, "RACE-2"))
    assert await desk.count("audit_log") == 1


async def waiting_for_a_lock(pool: asyncpg.Pool) -> None:
    for _ in range(500):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no statement came to wait for a lock")


async def test_the_audit_log_names_who_did_what_with_the_balances_before_and_after(
    desk: Desk,
) -> None:
    customer = await desk.customer()
    await desk.apply("one", customer, PointsCredit(400))
    result = await desk.apply("two", customer, PointsDebit(150))
    entries = await desk.pool.fetch(
        "SELECT administrator_id, actor, action, resource, resource_id, before, after"
        " FROM audit_log WHERE business_id = $1 ORDER BY entry_id",
        desk.business.business_id,
    )
    assert [entry["action"] for entry in entries] == ["credit_points", "debit_points"]
    last = entries[-1]
    assert last["administrator_id"] == desk.actor.administrator_id
    assert last["actor"] == desk.actor.name
    assert (last["resource"], last["resource_id"]) == ("pockets", str(customer))
    assert last["before"] == {"balances": {"0": 400}}
    assert last["after"] == {
        "operation": {"kind": "debit_points", "points_hundredths": 150},
        "terminal_id": desk.steward.terminal_id,
        "check_number": "~admin:two",
        "transaction_id": result.transaction.transaction_id,
        "balances": {"0": 250},
    }


async def test_the_operation_is_in_the_terminals_log_and_is_not_refunded(
    desk: Desk, pool: asyncpg.Pool
) -> None:
    customer = await desk.customer()
    result = await desk.apply("logged", customer, PointsCredit(300))
    terminal = await TerminalStore(pool).by_id(desk.business.business_id, desk.steward.terminal_id)
    assert terminal is not None
    transactions = TransactionStore(pool)
    records, _ = await History(transactions).page(
        terminal.business_id,
        10,
        "",
        ListFilter(customer_id=customer, terminal_id=terminal.terminal_id),
    )
    assert [record.transaction_id for record in records] == [result.transaction.transaction_id]
    assert records[0].operation == PointsCredit(300)
    refunds = Refunds(
        RefundStore(pool),
        transactions,
        Programs(ProgramStore(pool)),
        desk.changes,
        StoredReceipts(),
    )
    refusal = await refusal_of(
        refunds.refund(terminal, result.transaction.transaction_id, "R-1", (), b"refund")
    )
    assert isinstance(refusal, FailedPrecondition) and refusal.reason == "TRANSACTION_NOT_A_SALE"
    assert await desk.balance(customer) == 300


async def test_a_terminal_that_identifies_the_customer_right_after_sees_the_change(
    desk: Desk, pool: asyncpg.Pool, redis_client: redis.Redis
) -> None:
    phone = new_phone()
    customer, _ = await CustomerStore(pool).enrol(desk.business.business_id, phone, AccessType.FULL)
    identification = IdentificationService(
        customers=CustomerStore(pool),
        steward_codes=StewardCodes(redis_client, 60),
        steward_guesses=AttemptLimit(redis_client, 10, 60),
        app_token_key=bytes(32),
        app_token_window_seconds=30,
        programs=Programs(ProgramStore(pool)),
        cache=desk.cache,
        changes=desk.changes,
    )
    terminal = await TerminalStore(pool).by_id(
        desk.business.business_id, desk.business.cash_desk.terminal_id
    )
    assert terminal is not None
    by_phone = Identifier(IdentifierKind.PHONE, phone)
    assert (await identification.identify(terminal, by_phone)).pockets[0].balance == 0
    # Cached now: only the operation's commit can make the next answer differ.
    assert (await desk.cache.lookup(terminal.business_id, customer)).membership is not None
    await desk.apply("seen", customer, PointsCredit(900))
    assert (await identification.identify(terminal, by_phone)).pockets[0].balance == 900


async def test_the_terminal_must_be_an_enabled_unarchived_one_of_this_business(
    desk: Desk, pool: asyncpg.Pool
) -> None:
    customer = await desk.customer()
    provisioning = Provisioning(pool)
    business_id = desk.business.business_id
    elsewhere = await provisioning.business("Another", "UAH", 2)
    program = await provisioning.program(elsewhere, "Theirs")
    shop = await provisioning.point_of_sale(elsewhere, program, "Their shop")
    foreign = await provisioning.terminal(
        elsewhere, shop, "Their desk", TerminalKind.CASH_DESK, f"foreign-{business_id}", "!"
    )
    refusal = await refusal_of(desk.apply("foreign", customer, PointsCredit(1), foreign))
    assert isinstance(refusal, NotFound) and refusal.reason == "TERMINAL_NOT_FOUND"
    cash_desk = desk.business.cash_desk.terminal_id
    await provisioning.set_terminal_enabled(business_id, cash_desk, False)
    refusal = await refusal_of(desk.apply("disabled", customer, PointsCredit(1), cash_desk))
    assert isinstance(refusal, FailedPrecondition)
    assert refusal.reason == "OPERATION_TERMINAL_DISABLED"
    await pool.execute(
        "UPDATE terminals SET archived_at = now(), enabled = true"
        " WHERE business_id = $1 AND terminal_id = $2",
        business_id,
        cash_desk,
    )
    refusal = await refusal_of(desk.apply("archived", customer, PointsCredit(1), cash_desk))
    assert isinstance(refusal, FailedPrecondition) and refusal.reason == "ARCHIVED"
    # Nothing was stored for any of them: the keys are still free.
    assert await desk.count("transactions") == 0
    assert await desk.balance(customer) == 0


async def test_a_blacklisted_customer_is_credited_nothing_but_can_be_debited(
    desk: Desk, pool: asyncpg.Pool
) -> None:
    customer = await desk.customer()
    await desk.apply("before", customer, PointsCredit(500))
    await pool.execute(
        "UPDATE memberships SET access_type = 'blacklisted' WHERE business_id = $1"
        " AND customer_id = $2",
        desk.business.business_id,
        customer,
    )
    refusal = await refusal_of(desk.apply("credit", customer, PointsCredit(1)))
    assert isinstance(refusal, FailedPrecondition) and refusal.reason == "CUSTOMER_BLACKLISTED"
    again = await refusal_of(desk.apply("credit", customer, PointsCredit(1)))
    assert again.reason == "CUSTOMER_BLACKLISTED" and again.message == refusal.message
    await desk.apply("debit", customer, PointsDebit(500))
    assert await desk.balance(customer) == 0
    assert await desk.count("audit_log", "action = 'credit_points'") == 1
    missing = await refusal_of(desk.apply("nobody", 10**12, PointsCredit(1)))
    assert isinstance(missing, NotFound) and missing.reason == "CUSTOMER_NOT_FOUND"


async def test_operations_on_many_customers_at_once_each_apply_with_their_audit_entry(
    desk: Desk,
) -> None:
    customers = [await desk.customer() for _ in range(20)]
    results = await asyncio.gather(
        *(
            desk.apply(f"many-{n}", customer, PointsCredit(100 + n, _tomorrow))
            for n, customer in enumerate(customers)
        )
    )
    assert [result.operation.points_hundredths for result in results] == [  # type: ignore[union-attr]
        100 + n for n in range(20)
    ]
    assert [await desk.balance(customer) for customer in customers] == [100 + n for n in range(20)]
    assert await desk.count("audit_log") == 20
    assert await desk.count("points_lots") == 20
