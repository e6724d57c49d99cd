"""ProcessCheck and what follows it, over gRPC on a real server: idempotency, holds and
PINs, cancelling, coupons used once, the stream, reads and statistics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
import redis.asyncio as redis
from admin_support import (
    admin,
    credit_points,
    customer_with_points,
    enrol,
    five_percent_back,
    new_series,
    owner,
    set_program,
    set_rules,
    special_points_lot,
)
from support import Tenant, assert_audit_is_clean, bearer, error_reason

from purse import sealing
from purse.admin.v1 import admin_service_pb2 as admin_pb
from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.notify.dispatcher import pin_key_purpose
from purse.store.postgres import database
from purse.store.postgres.provisioning import Provisioning
from purse.store.postgres.transactions import TransactionStore
from purse.store.redis import keys as redis_keys
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


def sale(
    number: str, phone: str = "", redeem: int = 0, amount: int = 10_000, **redemption: object
) -> pb.ProcessCheckRequest:
    request = pb.ProcessCheckRequest(
        check_number=number,
        check=pb.Check(
            currency="UAH",
            lines=[
                pb.CheckLine(
                    position=1,
                    product_code="GOODS",
                    price_minor_units=amount,
                    quantity_thousandths=1000,
                    amount_minor_units=amount,
                )
            ],
        ),
        redemption=pb.Redemption(points_hundredths=redeem, **redemption),  # type: ignore[arg-type]
    )
    if phone:
        request.identifier.CopyFrom(common_pb2.CustomerIdentifier(phone=phone))
    return request


async def points_of(pool: asyncpg.Pool, business: Tenant, phone: str) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT p.balance, p.held FROM pockets p JOIN customers c USING (customer_id)"
        " WHERE p.business_id = $1 AND c.phone = $2 AND p.account_type_id = 0",
        business.business_id,
        phone,
    )
    assert row is not None
    return row["balance"], row["held"]


async def sent_pin(pool: asyncpg.Pool, business: Tenant, transaction_id: int) -> str:
    """The last PIN sent for a transaction, unsealed as the dispatcher would."""
    sealed = await pool.fetchval(
        "SELECT sealed_secret FROM outbox_messages WHERE business_id = $1"
        " AND transaction_id = $2 AND purpose = 'pin' ORDER BY message_id DESC LIMIT 1",
        business.business_id,
        transaction_id,
    )
    secret = await database.load_instance_secret(pool)
    return sealing.unseal(sealing.sealing_key(secret, pin_key_purpose), sealed)


async def test_a_check_is_applied_once_and_a_retry_gets_the_identical_answer(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    first = await terminal_stub.ProcessCheck(sale("P-1", phone, redeem=2_000), metadata=auth)
    assert first.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
    assert first.transaction.receipt.points_redeemed_hundredths == 2_000
    accrued = first.transaction.receipt.points_accrued_hundredths
    assert accrued == 400  # 5 % of the 80.00 paid
    assert first.membership.pockets[0].balance == 10_000 - 2_000 + accrued
    again = await terminal_stub.ProcessCheck(sale("P-1", phone, redeem=2_000), metadata=auth)
    assert again.transaction == first.transaction
    assert await points_of(pool, business, phone) == (10_000 - 2_000 + accrued, 0)
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await terminal_stub.ProcessCheck(sale("P-1", phone, redeem=1_000), metadata=auth)
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(reused.value) == "IDEMPOTENCY_KEY_REUSED"


async def test_the_same_check_sent_twenty_times_at_once_applies_once(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    answers = await asyncio.gather(
        *(
            terminal_stub.ProcessCheck(sale("P-20", phone, redeem=3_000), metadata=auth)
            for _ in range(20)
        )
    )
    assert (
        len({answer.transaction.SerializeToString(deterministic=True) for answer in answers}) == 1
    )
    count = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE business_id = $1 AND check_number = 'P-20'",
        business.business_id,
    )
    assert count == 1
    assert await points_of(pool, business, phone) == (10_000 - 3_000 + 350, 0)


async def test_a_business_refusal_is_the_stored_answer_for_its_check_number(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=None)
    phone = await customer_with_points(channel, business, 1_000)
    auth = bearer(business.cash_desk.api_key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ProcessCheck(sale("P-R", phone, redeem=5_000), metadata=auth)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await credit_points(
        channel, business, (await enrol(channel, business, phone)).customer_id, 10_000
    )
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await terminal_stub.ProcessCheck(sale("P-R", phone, redeem=5_000), metadata=auth)
    assert error_reason(again.value) == error_reason(refused.value)


async def test_a_redemption_above_the_limit_is_held_until_the_pin_confirms_it(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=1_000
    )
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    pending = await terminal_stub.ProcessCheck(sale("P-PIN", phone, redeem=2_000), metadata=auth)
    transaction = pending.transaction
    assert transaction.status == pb.TRANSACTION_STATUS_PENDING
    assert transaction.HasField("confirmation_deadline")
    assert pending.membership.pockets[0].available == 8_000
    assert await points_of(pool, business, phone) == (10_000, 2_000)
    body = await pool.fetchval(
        "SELECT body FROM outbox_messages WHERE transaction_id = $1 AND purpose = 'pin'",
        transaction.transaction_id,
    )
    assert "{pin}" in body
    pin = await sent_pin(pool, business, transaction.transaction_id)
    wrong = "000000" if pin != "000000" else "111111"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ConfirmTransaction(
            pb.ConfirmTransactionRequest(transaction_id=transaction.transaction_id, pin=wrong),
            metadata=auth,
        )
    assert error_reason(refused.value) == "PIN_WRONG"
    assert "4 attempts left" in (refused.value.details() or "")
    confirmed = await terminal_stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(transaction_id=transaction.transaction_id, pin=pin),
        metadata=auth,
    )
    assert confirmed.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
    assert await points_of(pool, business, phone) == (10_000 - 2_000 + 400, 0)
    confirmed_participation = await pool.fetchval(
        "SELECT participation_confirmed FROM memberships"
        " WHERE business_id = $1 AND customer_id = $2",
        business.business_id,
        transaction.customer_id,
    )
    assert confirmed_participation


async def test_five_wrong_pins_lock_the_transaction_and_release_its_holds(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    pending = await terminal_stub.ProcessCheck(sale("P-LOCK", phone, redeem=500), metadata=auth)
    pin = await sent_pin(pool, business, pending.transaction.transaction_id)
    wrong = "000000" if pin != "000000" else "111111"
    reasons = []
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await terminal_stub.ConfirmTransaction(
                pb.ConfirmTransactionRequest(
                    transaction_id=pending.transaction.transaction_id, pin=wrong
                ),
                metadata=auth,
            )
        reasons.append(error_reason(refused.value))
    assert reasons == ["PIN_WRONG"] * 4 + ["TRANSACTION_LOCKED"]
    assert await points_of(pool, business, phone) == (10_000, 0)
    locked = await terminal_stub.GetTransaction(
        pb.GetTransactionRequest(transaction_id=pending.transaction.transaction_id), metadata=auth
    )
    assert locked.transaction.status == pb.TRANSACTION_STATUS_LOCKED


async def test_a_burst_of_pins_compares_no_more_than_five_and_leaves_no_key_without_ttl(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    redis_client: redis.Redis,
    channel: grpc.aio.Channel,
) -> None:
    """30 concurrent confirms, 29 wrong and the right one among them: at most 5 PINs are
    compared, so the transaction completes only if the right one came before the 5th wrong
    one; otherwise it is locked and the right PIN is refused after."""
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    pending = await terminal_stub.ProcessCheck(sale("P-BURST", phone, redeem=500), metadata=auth)
    transaction_id = pending.transaction.transaction_id
    pin = await sent_pin(pool, business, transaction_id)
    guesses = [f"{n:06d}" for n in range(31) if f"{n:06d}" != pin][:29]
    guesses.insert(12, pin)
    results = await asyncio.gather(
        *(
            terminal_stub.ConfirmTransaction(
                pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=guess),
                metadata=auth,
            )
            for guess in guesses
        ),
        return_exceptions=True,
    )
    reasons = [error_reason(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    completed = len(results) - len(reasons)
    assert set(reasons) <= {
        "PIN_WRONG",
        "TRANSACTION_LOCKED",
        "TRANSACTION_NOT_PENDING",
        "PIN_EXPIRED",
    }
    key = redis_keys.pin(business.business_id, transaction_id)
    attempts = await redis_client.hget(key, "attempts")
    assert attempts is None or int(attempts) <= 5
    for each in await redis_client.keys(f"{redis_keys.business_tag(business.business_id)}:pin:*"):
        assert await redis_client.ttl(each) > 0
    status = await terminal_stub.GetTransaction(
        pb.GetTransactionRequest(transaction_id=transaction_id), metadata=auth
    )
    if completed:
        assert completed == 1 and reasons.count("PIN_WRONG") <= 4
        assert status.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
        return
    assert status.transaction.status == pb.TRANSACTION_STATUS_LOCKED
    assert reasons.count("PIN_WRONG") == 4
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ConfirmTransaction(
            pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=pin), metadata=auth
        )
    assert error_reason(refused.value) == "TRANSACTION_NOT_PENDING"
    assert await points_of(pool, business, phone) == (10_000, 0)


async def test_cancelling_a_pending_transaction_releases_holds_and_reserved_coupons(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    series = await new_series(channel, business, name="-10%", value=1000)
    code = f"CANCEL-{business.business_id}"
    # A coupon of no customer's (a printed one): the API issues coupons only to customers.
    await Provisioning(pool).coupon(business.business_id, series.series_id, code, None)
    auth = bearer(business.cash_desk.api_key)
    pending = await terminal_stub.ProcessCheck(
        sale("P-CANCEL", phone, redeem=1_000, coupon_codes=[code]), metadata=auth
    )
    assert pending.transaction.status == pb.TRANSACTION_STATUS_PENDING
    status = await pool.fetchval("SELECT status FROM coupons WHERE code = $1", code)
    assert status == "reserved"
    cancelled = await terminal_stub.CancelTransaction(
        pb.CancelTransactionRequest(transaction_id=pending.transaction.transaction_id),
        metadata=auth,
    )
    assert cancelled.transaction.status == pb.TRANSACTION_STATUS_CANCELLED
    assert await points_of(pool, business, phone) == (10_000, 0)
    assert await pool.fetchval("SELECT status FROM coupons WHERE code = $1", code) == "issued"


async def test_two_checks_racing_for_one_coupon_let_one_win(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await set_program(channel, business)
    series = await new_series(
        channel, business, name="-50.00", kind=catalogue.COUPON_KIND_FIXED, value=5000
    )
    code = f"RACE-{business.business_id}"
    # A coupon of no customer's (a printed one): the API issues coupons only to customers.
    await Provisioning(pool).coupon(business.business_id, series.series_id, code, None)
    auth = bearer(business.cash_desk.api_key)
    results = await asyncio.gather(
        *(
            terminal_stub.ProcessCheck(sale(f"P-RACE-{n}", coupon_codes=[code]), metadata=auth)
            for n in range(10)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, pb.ProcessCheckResponse)]
    assert len(winners) == 1
    assert winners[0].transaction.receipt.discount_minor_units == 5000
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.FAILED_PRECONDITION
        for r in results
        if r not in winners
    )
    assert await pool.fetchval("SELECT status FROM coupons WHERE code = $1", code) == "used"


async def test_the_stream_answers_every_check_in_order_and_refuses_only_bad_ones(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> None:
    await set_program(channel, business, rules=(five_percent_back,))
    phone = await customer_with_points(channel, business, 0)
    stub = TerminalServiceStub(channel)

    async def messages() -> AsyncIterator[pb.ProcessChecksRequest]:
        for batch in range(3):
            checks = [sale(f"S-{batch}-{n}", phone) for n in range(10)]
            checks[5].check.lines[0].quantity_thousandths = 0  # bad input
            yield pb.ProcessChecksRequest(checks=checks)

    answers = [
        answer
        async for answer in stub.ProcessChecks(
            messages(), metadata=bearer(business.cash_desk.api_key)
        )
    ]
    assert len(answers) == 3
    for batch, answer in enumerate(answers):
        assert [r.check_number for r in answer.results] == [f"S-{batch}-{n}" for n in range(10)]
        outcomes = [r.WhichOneof("outcome") for r in answer.results]
        assert outcomes == ["processed"] * 5 + ["error"] + ["processed"] * 4
        assert answer.results[5].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "check.lines[0].quantity_thousandths" in answer.results[5].error.field_violations
    assert await points_of(pool, business, phone) == (27 * 500, 0)
    statistics = await pool.fetchrow(
        "SELECT sales_count, sales_sum_minor_units, last_visit_at FROM memberships m"
        " JOIN customers c USING (customer_id) WHERE m.business_id = $1 AND c.phone = $2",
        business.business_id,
        phone,
    )
    assert statistics is not None
    assert (statistics["sales_count"], statistics["sales_sum_minor_units"]) == (27, 27 * 10_000)
    assert statistics["last_visit_at"] is not None


async def test_transactions_are_read_by_id_and_number_and_listed_newest_first(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business)
    auth = bearer(business.cash_desk.api_key)
    made = [
        (await terminal_stub.ProcessCheck(sale(f"L-{n}"), metadata=auth)).transaction
        for n in range(5)
    ]
    by_number = await terminal_stub.GetTransaction(
        pb.GetTransactionRequest(check_number="L-3"), metadata=auth
    )
    assert by_number.transaction == made[3]
    seen, token = [], ""
    while True:
        page = await terminal_stub.ListTransactions(
            pb.ListTransactionsRequest(page_size=2, page_token=token), metadata=auth
        )
        seen += [t.transaction_id for t in page.transactions]
        token = page.next_page_token
        if not token:
            break
    assert seen == [t.transaction_id for t in reversed(made)]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await terminal_stub.GetTransaction(
            pb.GetTransactionRequest(transaction_id=10**12), metadata=auth
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_check_number_must_be_given(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ProcessCheck(sale(""), metadata=bearer(business.cash_desk.api_key))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def two_lines(number: str, phone: str, redeem: int = 0) -> pb.ProcessCheckRequest:
    request = sale(number, phone, redeem=redeem)
    del request.check.lines[:]
    request.check.lines.add(
        position=1, product_code="A", price_minor_units=3_000, quantity_thousandths=3_000,
        amount_minor_units=9_000,
    )  # fmt: skip
    request.check.lines.add(
        position=2, product_code="B", price_minor_units=1_000, quantity_thousandths=1_000,
        amount_minor_units=1_000,
    )  # fmt: skip
    return request


async def test_partial_refunds_reverse_both_sides_and_never_exceed_the_sale(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: object,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, 5_000)
    auth = bearer(business.cash_desk.api_key)
    done = (
        await terminal_stub.ProcessCheck(two_lines("R-1", phone, redeem=2_000), metadata=auth)
    ).transaction
    accrued = done.receipt.points_accrued_hundredths
    after_sale = 5_000 - 2_000 + accrued
    assert await points_of(pool, business, phone) == (after_sale, 0)

    def refund(number: str, *lines: tuple[int, int]) -> pb.RefundTransactionRequest:
        return pb.RefundTransactionRequest(
            transaction_id=done.transaction_id, refund_number=number,
            lines=[pb.RefundLine(position=p, quantity_thousandths=q) for p, q in lines],
        )  # fmt: skip

    first = await terminal_stub.RefundTransaction(refund("RF-1", (1, 1_000)), metadata=auth)
    again = await terminal_stub.RefundTransaction(refund("RF-1", (1, 1_000)), metadata=auth)
    assert again.refund == first.refund
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await terminal_stub.RefundTransaction(refund("RF-1", (1, 2_000)), metadata=auth)
    assert error_reason(reused.value) == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(grpc.aio.AioRpcError) as too_much:
        await terminal_stub.RefundTransaction(refund("RF-2", (1, 2_500)), metadata=auth)
    assert too_much.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rest = await terminal_stub.RefundTransaction(refund("RF-3"), metadata=auth)
    refunds = rest.transaction.refunds
    assert len(refunds) == 2
    lines = {line.position: line for line in done.receipt.lines}
    assert sum(r.refunded_minor_units for r in refunds) == sum(
        line.to_pay_minor_units for line in lines.values()
    )
    assert sum(r.points_returned_hundredths for r in refunds) == 2_000
    assert sum(r.points_recovered_hundredths for r in refunds) == accrued
    assert await points_of(pool, business, phone) == (5_000, 0)
    with pytest.raises(grpc.aio.AioRpcError) as nothing_left:
        await terminal_stub.RefundTransaction(refund("RF-4"), metadata=auth)
    assert error_reason(nothing_left.value) == "ALREADY_REFUNDED"
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)  # type: ignore[attr-defined]


async def test_points_already_spent_are_reported_as_not_recovered(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, 0)
    auth = bearer(business.cash_desk.api_key)
    done = (
        await terminal_stub.ProcessCheck(sale("NR-1", phone, amount=100_000), metadata=auth)
    ).transaction
    assert done.receipt.points_accrued_hundredths == 5_000
    await terminal_stub.ProcessCheck(sale("NR-2", phone, redeem=4_000, amount=4_000), metadata=auth)
    refunded = await terminal_stub.RefundTransaction(
        pb.RefundTransactionRequest(transaction_id=done.transaction_id, refund_number="NR-R"),
        metadata=auth,
    )
    assert refunded.refund.points_recovered_hundredths == 1_000
    assert refunded.refund.points_not_recovered_hundredths == 4_000
    assert await points_of(pool, business, phone) == (0, 0)


async def coffee_card(channel: grpc.aio.Channel, business: Tenant, every: int) -> int:
    """An achievements account type: every `every`-th cappuccino (CAP) free."""
    created = await admin(channel).CreateAccountType(
        catalogue.CreateAccountTypeRequest(
            account_type=catalogue.AccountType(
                kind=catalogue.ACCOUNT_KIND_ACHIEVEMENTS, name="Coffee card",
                title={"en": "Coffee card"}, product_codes=["CAP"], purchases_per_reward=every,
            )
        ),
        metadata=owner(business),
    )  # fmt: skip
    return int(created.account_type.account_type_id)


async def purchases_counted(pool: asyncpg.Pool, business: Tenant, phone: str, card: int) -> int:
    counted: int = await pool.fetchval(
        "SELECT p.balance FROM pockets p JOIN customers c USING (customer_id)"
        " WHERE p.business_id = $1 AND c.phone = $2 AND p.account_type_id = $3",
        business.business_id, phone, card,
    )  # fmt: skip
    return counted


def coffees(number: str, phone: str, cups: int) -> pb.ProcessCheckRequest:
    request = sale(number, phone)
    del request.check.lines[:]
    request.check.lines.add(
        position=1, product_code="CAP", price_minor_units=5_000, quantity_thousandths=cups * 1_000,
        amount_minor_units=cups * 5_000,
    )  # fmt: skip
    return request


async def test_refunds_give_free_units_back_and_take_back_the_purchases_they_counted(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: object,
) -> None:
    card = await coffee_card(channel, business, every=3)
    phone = await customer_with_points(channel, business, 0)
    auth = bearer(business.cash_desk.api_key)

    async def cups_counted() -> int:
        return await purchases_counted(pool, business, phone, card)

    answer = await terminal_stub.ProcessCheck(coffees("AC-1", phone, 2), metadata=auth)
    first = answer.transaction
    # The answer shows the card the first purchase opened, as the database has it.
    opened = await pool.fetchrow(
        "SELECT pocket_id, balance FROM pockets WHERE business_id = $1 AND account_type_id = $2",
        business.business_id, card,
    )  # fmt: skip
    assert opened is not None
    assert [
        (p.pocket_id, p.balance) for p in answer.membership.pockets if p.account_type_id == card
    ] == [(opened["pocket_id"], 2)]
    second = (
        await terminal_stub.ProcessCheck(coffees("AC-2", phone, 2), metadata=auth)
    ).transaction
    assert second.receipt.to_pay_minor_units == 5_000  # the third cup was free
    assert await cups_counted() == 1  # 2 + 2 - 3

    async def refund(transaction_id: int, number: str) -> pb.Refund:
        answer = await terminal_stub.RefundTransaction(
            pb.RefundTransactionRequest(transaction_id=transaction_id, refund_number=number),
            metadata=auth,
        )
        return answer.refund

    # Two of the first sale's purchases are to go, but the reward used all but one.
    refunded_first = await refund(first.transaction_id, "AC-R1")
    assert [(a.account_type_id, a.returned, a.recovered, a.not_recovered)
            for a in refunded_first.accounts] == [(card, 0, 1, 1)]  # fmt: skip
    assert await cups_counted() == 0
    refunded_second = await refund(second.transaction_id, "AC-R2")
    assert [(a.account_type_id, a.returned, a.recovered, a.not_recovered)
            for a in refunded_second.accounts] == [(card, 3, 2, 0)]  # fmt: skip
    assert await cups_counted() == 1
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)  # type: ignore[attr-defined]


async def test_a_confirmed_first_purchase_starts_the_achievements_card(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=100)
    card = await coffee_card(channel, business, every=5)
    phone = await customer_with_points(channel, business, 1_000)
    auth = bearer(business.cash_desk.api_key)
    request = coffees("FA-1", phone, 2)
    request.redemption.points_hundredths = 500  # above the no-PIN limit: pending
    pending = (await terminal_stub.ProcessCheck(request, metadata=auth)).transaction
    assert pending.status == pb.TRANSACTION_STATUS_PENDING
    pin = await sent_pin(pool, business, pending.transaction_id)
    await terminal_stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(transaction_id=pending.transaction_id, pin=pin),
        metadata=auth,
    )
    assert await purchases_counted(pool, business, phone, card) == 2


async def lot_and_balance(pool: asyncpg.Pool, business: Tenant, lot: int) -> tuple[int, int]:
    """(what is left in the lot, its pocket's balance), read together."""
    row = await pool.fetchrow(
        "SELECT l.remaining, p.balance FROM points_lots l"
        "  JOIN pockets p USING (business_id, pocket_id)"
        " WHERE l.business_id = $1 AND l.lot_id = $2",
        business.business_id, lot,
    )  # fmt: skip
    assert row is not None
    return row["remaining"], row["balance"]


async def hold_across_a_lot_expiry(
    stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    number: str,
) -> tuple[pb.Transaction, str, int]:
    """300 everlasting points and a lot of 500 special ones that expires while a pending
    sale holds 400 of the 800; the sweeper has run after the expiry. (sale, phone, lot)"""
    await set_program(channel, business, points_redemption_limit_without_pin=100)
    phone = await customer_with_points(channel, business, 300)
    customer_id = (await enrol(channel, business, phone)).customer_id
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    lot = await special_points_lot(channel, business, customer_id, 500, expiry)
    pending = (
        await stub.ProcessCheck(
            sale(number, phone, redeem=400), metadata=bearer(business.cash_desk.api_key)
        )
    ).transaction
    assert pending.status == pb.TRANSACTION_STATUS_PENDING
    await asyncio.sleep(max((expiry - datetime.now(UTC)).total_seconds(), 0) + 0.1)
    await TransactionStore(pool).write_off_expired_lots(1_000)
    # The lot gave 400 to the hold; only its other 100 expire.
    assert await points_of(pool, business, phone) == (700, 400)
    return pending, phone, lot


async def test_points_held_from_a_lot_that_expires_are_spent_when_confirmed(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: object,
) -> None:
    pending, phone, _ = await hold_across_a_lot_expiry(
        terminal_stub, channel, pool, business, "EX-1"
    )
    pin = await sent_pin(pool, business, pending.transaction_id)
    await terminal_stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(transaction_id=pending.transaction_id, pin=pin),
        metadata=bearer(business.cash_desk.api_key),
    )
    await TransactionStore(pool).write_off_expired_lots(1_000)
    assert await points_of(pool, business, phone) == (300, 0)  # the everlasting 300 stay
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)  # type: ignore[attr-defined]


async def test_points_a_released_hold_gives_back_to_an_expired_lot_expire_then(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: object,
) -> None:
    pending, phone, lot = await hold_across_a_lot_expiry(
        terminal_stub, channel, pool, business, "EX-2"
    )
    await terminal_stub.CancelTransaction(
        pb.CancelTransactionRequest(transaction_id=pending.transaction_id),
        metadata=bearer(business.cash_desk.api_key),
    )
    # Back in the lot, unless the server's own sweeper has been quicker than this test.
    assert await lot_and_balance(pool, business, lot) in {(400, 700), (0, 300)}
    await TransactionStore(pool).write_off_expired_lots(1_000)
    assert await points_of(pool, business, phone) == (300, 0)
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)  # type: ignore[attr-defined]


async def test_refunded_special_points_go_back_to_their_lot_and_expire_with_it(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: object,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=None)
    phone = await customer_with_points(channel, business, 200)
    customer_id = (await enrol(channel, business, phone)).customer_id
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    lot = await special_points_lot(channel, business, customer_id, 500, expiry)
    auth = bearer(business.cash_desk.api_key)
    # 600 points: the special 500 first (they expire first), then 100 everlasting ones.
    done = (
        await terminal_stub.ProcessCheck(sale("LR-1", phone, redeem=600), metadata=auth)
    ).transaction
    assert await points_of(pool, business, phone) == (100, 0)
    await asyncio.sleep(max((expiry - datetime.now(UTC)).total_seconds(), 0) + 0.1)
    await terminal_stub.RefundTransaction(
        pb.RefundTransactionRequest(transaction_id=done.transaction_id, refund_number="LR-R"),
        metadata=auth,
    )
    # Back in the lot, unless the server's own sweeper has been quicker than this test.
    assert await lot_and_balance(pool, business, lot) in {(500, 700), (0, 200)}
    await TransactionStore(pool).write_off_expired_lots(1_000)
    assert await points_of(pool, business, phone) == (200, 0)  # the lot expired meanwhile
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)  # type: ignore[attr-defined]


async def test_cancelling_a_completed_sale_of_today_reverses_it(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, 3_000)
    auth = bearer(business.cash_desk.api_key)
    done = (
        await terminal_stub.ProcessCheck(sale("CC-1", phone, redeem=1_000), metadata=auth)
    ).transaction
    cancelled = await terminal_stub.CancelTransaction(
        pb.CancelTransactionRequest(transaction_id=done.transaction_id), metadata=auth
    )
    assert cancelled.transaction.status == pb.TRANSACTION_STATUS_CANCELLED
    assert await points_of(pool, business, phone) == (3_000, 0)
    twice = await terminal_stub.CancelTransaction(
        pb.CancelTransactionRequest(transaction_id=done.transaction_id), metadata=auth
    )
    assert twice.transaction == cancelled.transaction
    assert await points_of(pool, business, phone) == (3_000, 0)


async def test_a_program_may_refuse_to_cancel_completed_sales(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, cancel_completed_sales=False)
    auth = bearer(business.cash_desk.api_key)
    done = (await terminal_stub.ProcessCheck(sale("NC-1"), metadata=auth)).transaction
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.CancelTransaction(
            pb.CancelTransactionRequest(transaction_id=done.transaction_id), metadata=auth
        )
    assert error_reason(refused.value) == "CANCEL_NOT_ALLOWED"


async def test_a_notice_waits_for_the_dispatcher_only_when_the_customer_confirmed(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await set_rules(channel, business, admin_pb.ProgramRules(rules=[five_percent_back]))
    confirmed = (await enrol(channel, business)).phone
    unconfirmed = (await enrol(channel, business)).phone
    # Participation is confirmed by a PIN at the till; set here without one.
    await pool.execute(
        "UPDATE memberships m SET participation_confirmed = true FROM customers c"
        " WHERE m.business_id = $1 AND c.customer_id = m.customer_id AND c.phone = $2",
        business.business_id,
        confirmed,
    )
    till = bearer(business.cash_desk.api_key)
    for number, phone in (("N-1", confirmed), ("N-2", unconfirmed)):
        await terminal_stub.ProcessCheck(sale(number, phone), metadata=till)
    rows = await pool.fetch(
        "SELECT t.check_number, o.status, o.reason FROM outbox_messages o"
        "  JOIN transactions t"
        "    ON t.business_id = o.business_id AND t.transaction_id = o.transaction_id"
        " WHERE o.business_id = $1 AND o.purpose = 'transaction' ORDER BY t.check_number",
        business.business_id,
    )
    assert [tuple(row) for row in rows] == [
        ("N-1", "pending", ""),
        ("N-2", "rejected", "PARTICIPATION_NOT_CONFIRMED"),
    ]
