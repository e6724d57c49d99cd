"""The invariants, tried hard against real processes (DESIGN.md, "Invariants"):

I1 an acknowledged transaction survives SIGKILL; I2 no balance goes below zero whatever
the interleaving across server processes; I3 a check number applies once, across
restarts; I6 Redis can be lost; and PostgreSQL restarting is an outage, not a crash.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import asyncpg
import grpc
import pytest
import redis.asyncio as redis
from admin_support import customer_with_points, five_percent_back, set_program
from support import (
    ServerProcess,
    Tenant,
    assert_audit_is_clean,
    bearer,
    error_reason,
    make_business_through_api,
    retry_delay_seconds,
)
from test_transactions import points_of, sale, sent_pin

from purse.config import Settings
from purse.store.embedded import EmbeddedPostgres, EmbeddedRedis
from purse.store.postgres import database
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

call_seconds_max = 20.0
pin_sends_window_seconds = Settings().pin_sends_window_seconds


def external(infrastructure: Settings, **extra: str) -> dict[str, str]:
    return {
        "PURSE_DATABASE_URL": infrastructure.database_url,
        "PURSE_REDIS_URL": infrastructure.redis_url,
        "PURSE_NOTIFY_ENABLED": "false",
        **extra,
    }


async def assert_acknowledged_are_stored(
    pool: asyncpg.Pool, business: Tenant, prefix: str, acknowledged: dict[str, int]
) -> None:
    """I1: every check number answered with a transaction (those starting with `prefix`)
    is stored with that transaction."""
    stored: dict[str, int] = {
        row["check_number"]: row["transaction_id"]
        for row in await pool.fetch(
            "SELECT check_number, transaction_id FROM transactions"
            " WHERE business_id = $1 AND starts_with(check_number, $2)",
            business.business_id,
            prefix,
        )
    }
    missing = {
        number: transaction_id
        for number, transaction_id in acknowledged.items()
        if stored.get(number) != transaction_id
    }
    assert missing == {}


async def assert_each_applied_once(pool: asyncpg.Pool, business: Tenant, prefix: str) -> int:
    """I3: no check number starting with `prefix` made two transactions. Returns how many
    check numbers made one."""
    counts = await pool.fetch(
        "SELECT check_number, count(*) FROM transactions"
        " WHERE business_id = $1 AND starts_with(check_number, $2) GROUP BY check_number",
        business.business_id,
        prefix,
    )
    assert [row["check_number"] for row in counts if row["count"] != 1] == []
    return len(counts)


async def test_two_processes_let_exactly_the_covered_redemptions_through(
    infrastructure: Settings,
    server: ServerProcess,
    pool: asyncpg.Pool,
    business: Tenant,
    tmp_path: Path,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=None)
    phone = await customer_with_points(channel, business, 50 * 1_000)
    second = ServerProcess(external(infrastructure), tmp_path).start()
    try:
        channels = [grpc.aio.insecure_channel(target) for target in (server.target, second.target)]
        stubs = [TerminalServiceStub(channel) for channel in channels]
        auth = bearer(business.cash_desk.api_key)
        results = await asyncio.gather(
            *(
                stubs[n % 2].ProcessCheck(
                    sale(f"I2-{n}", phone, redeem=1_000, amount=2_000),
                    metadata=auth,
                    timeout=call_seconds_max,
                )
                for n in range(200)
            ),
            return_exceptions=True,
        )
        aborted = [
            n
            for n, result in enumerate(results)
            if isinstance(result, grpc.aio.AioRpcError)
            and error_reason(result) == "CONCURRENT_CHANGE"
        ]
        for n in aborted:  # nothing was stored for it: a retry is answered afresh
            with pytest.raises(grpc.aio.AioRpcError) as retried:
                await stubs[0].ProcessCheck(
                    sale(f"I2-{n}", phone, redeem=1_000, amount=2_000), metadata=auth
                )
            assert error_reason(retried.value) == "INSUFFICIENT_POINTS"
        for opened in channels:
            await opened.close()
    finally:
        second.stop()
    succeeded = [r for r in results if isinstance(r, pb.ProcessCheckResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(succeeded) == 50
    assert len(refused) == 150
    # Two processes may keep changing one customer's points for longer than a check
    # retries its settlement: that check is answered ABORTED, applied nothing, and its
    # retry gets the answer on what is committed by then.
    reasons = {error_reason(r) for r in refused}
    assert reasons <= {"INSUFFICIENT_POINTS", "CONCURRENT_CHANGE"}, reasons
    assert all(
        r.code() == grpc.StatusCode.ABORTED
        for r in refused
        if error_reason(r) == "CONCURRENT_CHANGE"
    )
    assert await points_of(pool, business, phone) == (0, 0)
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def test_acknowledged_checks_survive_sigkill_and_apply_once_after_restart(
    infrastructure: Settings,
    pool: asyncpg.Pool,
    business: Tenant,
    tmp_path: Path,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, 0)
    server = ServerProcess(external(infrastructure), tmp_path).start()
    acknowledged: dict[str, int] = {}
    numbers = [f"I1-{n}" for n in range(300)]
    auth = bearer(business.cash_desk.api_key)
    try:
        async with grpc.aio.insecure_channel(server.target) as side:
            stub = TerminalServiceStub(side)
            gate = asyncio.Semaphore(20)

            async def send(number: str) -> None:
                async with gate:
                    if len(acknowledged) >= 100 and server.process is not None:
                        server.kill()
                    try:
                        answer = await stub.ProcessCheck(
                            sale(number, phone), metadata=auth, timeout=call_seconds_max
                        )
                    except grpc.aio.AioRpcError:
                        return
                    acknowledged[number] = answer.transaction.transaction_id

            await asyncio.gather(*(send(number) for number in numbers))
    finally:
        server.kill()
    assert 100 <= len(acknowledged) < len(numbers)
    await assert_acknowledged_are_stored(pool, business, "I1-", acknowledged)
    restarted = ServerProcess(external(infrastructure), tmp_path).start()
    try:
        async with grpc.aio.insecure_channel(restarted.target) as side:
            stub = TerminalServiceStub(side)
            answers = [
                await stub.ProcessCheck(
                    sale(number, phone), metadata=auth, timeout=call_seconds_max
                )
                for number in numbers
            ]
    finally:
        restarted.stop()
    assert all(
        answer.transaction.transaction_id == acknowledged[number]
        for number, answer in zip(numbers, answers, strict=True)
        if number in acknowledged
    )
    assert await assert_each_applied_once(pool, business, "I1-") == len(numbers)
    assert await points_of(pool, business, phone) == (len(numbers) * 500, 0)
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def test_losing_redis_loses_no_money_and_a_pending_pin_can_be_resent(
    terminal_stub: TerminalServiceAsyncStub,
    redis_client: redis.Redis,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: Settings,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    pending = await terminal_stub.ProcessCheck(sale("I6-1", phone, redeem=2_000), metadata=auth)
    transaction_id = pending.transaction.transaction_id
    first_pin = await sent_pin(pool, business, transaction_id)
    identify = pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone))
    cached = await terminal_stub.IdentifyCustomer(identify, metadata=auth)  # into the cache
    assert cached.membership.pockets[0].available == 8_000
    await redis_client.flushall()
    with pytest.raises(grpc.aio.AioRpcError) as forgotten:
        await terminal_stub.ConfirmTransaction(
            pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=first_pin),
            metadata=auth,
        )
    assert error_reason(forgotten.value) == "PIN_EXPIRED"
    assert await points_of(pool, business, phone) == (10_000, 2_000)
    await terminal_stub.ResendCode(
        pb.ResendCodeRequest(transaction_id=transaction_id), metadata=auth
    )
    second_pin = await sent_pin(pool, business, transaction_id)
    confirmed = await terminal_stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=second_pin),
        metadata=auth,
    )
    assert confirmed.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
    assert await points_of(pool, business, phone) == (8_000, 0)
    after = await terminal_stub.IdentifyCustomer(identify, metadata=auth)
    assert (after.membership.pockets[0].balance, after.membership.pockets[0].held) == (8_000, 0)
    again = await terminal_stub.ProcessCheck(sale("I6-2", phone, redeem=1_000), metadata=auth)
    assert again.transaction.status == pb.TRANSACTION_STATUS_PENDING
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def test_resending_a_pin_is_rate_limited_per_phone(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    """The sale's PIN and two resends use up the phone's 3 sends: the second resend says
    when the next one will be accepted (the window's end, not now), the third is refused
    with a RetryInfo to match."""
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    pending = await terminal_stub.ProcessCheck(sale("RS-1", phone, redeem=100), metadata=auth)
    request = pb.ResendCodeRequest(transaction_id=pending.transaction.transaction_id)
    first = await terminal_stub.ResendCode(request, metadata=auth)
    assert abs(first.next_resend_time.seconds - time.time()) < 5
    second = await terminal_stub.ResendCode(request, metadata=auth)
    assert second.next_resend_time.seconds > time.time() + pin_sends_window_seconds - 10
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await terminal_stub.ResendCode(request, metadata=auth)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(limited.value) == "PIN_RESEND_RATE_LIMITED"
    assert (
        abs(time.time() + retry_delay_seconds(limited.value) - second.next_resend_time.seconds) < 5
    )


async def test_new_pending_sales_count_against_the_phones_pin_sends(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    """Four pending sales to one phone: three PINs are sent; the fourth sale is made and
    pending all the same, but no PIN goes out and a resend is refused until the window
    ends, so fresh sales cannot buy fresh PINs (and fresh attempts) past the limit."""
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    sales = [
        await terminal_stub.ProcessCheck(sale(f"PS-{n}", phone, redeem=100), metadata=auth)
        for n in range(4)
    ]
    assert {s.transaction.status for s in sales} == {pb.TRANSACTION_STATUS_PENDING}
    sent = await pool.fetchval(
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND purpose = 'pin'",
        business.business_id,
    )
    assert sent == 3
    last = sales[-1].transaction.transaction_id
    with pytest.raises(grpc.aio.AioRpcError) as no_pin:
        await terminal_stub.ConfirmTransaction(
            pb.ConfirmTransactionRequest(transaction_id=last, pin="123456"), metadata=auth
        )
    assert error_reason(no_pin.value) == "PIN_EXPIRED"
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await terminal_stub.ResendCode(pb.ResendCodeRequest(transaction_id=last), metadata=auth)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < retry_delay_seconds(limited.value) <= pin_sends_window_seconds


async def test_a_resend_does_not_give_a_transaction_fresh_attempts(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    auth = bearer(business.cash_desk.api_key)
    pending = await terminal_stub.ProcessCheck(sale("RA-1", phone, redeem=100), metadata=auth)
    transaction_id = pending.transaction.transaction_id

    async def confirm_wrongly() -> str:
        pin = await sent_pin(pool, business, transaction_id)
        wrong = "000000" if pin != "000000" else "111111"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await terminal_stub.ConfirmTransaction(
                pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=wrong),
                metadata=auth,
            )
        return error_reason(refused.value)

    assert [await confirm_wrongly() for _ in range(4)] == ["PIN_WRONG"] * 4
    await terminal_stub.ResendCode(
        pb.ResendCodeRequest(transaction_id=transaction_id), metadata=auth
    )
    assert await confirm_wrongly() == "TRANSACTION_LOCKED"


async def test_holds_past_their_deadline_are_released_by_the_sweeper(
    infrastructure: Settings,
    pool: asyncpg.Pool,
    business: Tenant,
    tmp_path: Path,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=0, hold_seconds=1)
    phone = await customer_with_points(channel, business, 10_000)
    server = ServerProcess(
        external(infrastructure, PURSE_HOLD_SWEEP_INTERVAL_SECONDS="0.2"),
        tmp_path,
    ).start()
    try:
        async with grpc.aio.insecure_channel(server.target) as side:
            stub = TerminalServiceStub(side)
            auth = bearer(business.cash_desk.api_key)
            pending = await stub.ProcessCheck(sale("EXP-1", phone, redeem=3_000), metadata=auth)
            assert await points_of(pool, business, phone) == (10_000, 3_000)
            request = pb.GetTransactionRequest(transaction_id=pending.transaction.transaction_id)
            for _ in range(50):
                status = (await stub.GetTransaction(request, metadata=auth)).transaction.status
                if status == pb.TRANSACTION_STATUS_EXPIRED:
                    break
                await asyncio.sleep(0.1)
            assert status == pb.TRANSACTION_STATUS_EXPIRED
    finally:
        server.stop()
    assert await points_of(pool, business, phone) == (10_000, 0)


async def test_a_postgresql_restart_is_an_outage_purse_recovers_from(tmp_path: Path) -> None:
    postgres, redis_server = EmbeddedPostgres(tmp_path), EmbeddedRedis(tmp_path)
    database_url, redis_url = postgres.start(), redis_server.start()
    await database.migrate(database_url)
    server = ServerProcess(
        {"PURSE_DATABASE_URL": database_url, "PURSE_REDIS_URL": redis_url,
         "PURSE_NOTIFY_ENABLED": "false"},
        tmp_path,
    ).start()  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            pool = await database.create_pool(database_url, 1, 2, 10_000, 10.0)
            try:
                business = await make_business_through_api(channel, pool)
                await set_program(channel, business, points_redemption_limit_without_pin=None)
                phone = await customer_with_points(channel, business, 0)
            finally:
                await pool.close()
            auth = bearer(business.cash_desk.api_key)
            stub = TerminalServiceStub(channel)
            await stub.ProcessCheck(sale("PG-1", phone), metadata=auth, timeout=call_seconds_max)
            await asyncio.to_thread(postgres.stop)
            with pytest.raises(grpc.aio.AioRpcError) as down:
                await stub.ProcessCheck(
                    sale("PG-2", phone), metadata=auth, timeout=call_seconds_max
                )
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            # A stream's checks are refused one by one, each saying why and that it may retry.
            stream = stub.ProcessChecks(metadata=auth, timeout=call_seconds_max)
            await stream.write(pb.ProcessChecksRequest(checks=[sale("PG-3", phone)]))
            answer_while_down = await stream.read()
            assert isinstance(answer_while_down, pb.ProcessChecksResponse)
            result = answer_while_down.results[0]
            await stream.done_writing()
            assert result.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
            assert result.error.reason == "DEPENDENCY_UNAVAILABLE"
            await asyncio.to_thread(postgres.start)
            answer = await _until_it_works(stub, sale("PG-2", phone), auth)
            assert answer.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
    finally:
        server.stop()
        postgres.stop()
        redis_server.stop()


async def _until_it_works(
    stub: TerminalServiceAsyncStub, request: pb.ProcessCheckRequest, auth: tuple[tuple[str, str]]
) -> pb.ProcessCheckResponse:
    deadline = time.monotonic() + call_seconds_max
    while True:
        try:
            return await stub.ProcessCheck(request, metadata=auth, timeout=call_seconds_max)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


class _Gateway(BaseHTTPRequestHandler):
    """A real HTTP SMS gateway on 127.0.0.1 that keeps what it is sent."""

    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *arguments: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[dict[str, object]]]]:
    _Gateway.received = []
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}/sms", _Gateway.received
    http.shutdown()
    http.server_close()


async def test_the_pin_reaches_the_customer_through_the_webhook_and_confirms(
    infrastructure: Settings,
    pool: asyncpg.Pool,
    business: Tenant,
    tmp_path: Path,
    gateway: tuple[str, list[dict[str, object]]],
    channel: grpc.aio.Channel,
) -> None:
    url, received = gateway
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    server = ServerProcess(
        external(
            infrastructure, PURSE_NOTIFY_ENABLED="true", PURSE_NOTIFY_PROVIDER="webhook",
            PURSE_NOTIFY_WEBHOOK_URL=url, PURSE_NOTIFY_POLL_INTERVAL_MS="50",
        ),
        tmp_path,
    ).start()  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(server.target) as side:
            stub = TerminalServiceStub(side)
            auth = bearer(business.cash_desk.api_key)
            pending = await stub.ProcessCheck(sale("WH-1", phone, redeem=1_000), metadata=auth)
            sms = await _first(received, phone)
            pin = "".join(character for character in str(sms["text"]) if character.isdigit())[-6:]
            confirmed = await stub.ConfirmTransaction(
                pb.ConfirmTransactionRequest(
                    transaction_id=pending.transaction.transaction_id, pin=pin
                ),
                metadata=auth,
            )
            assert confirmed.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
            notice = await _first(received, phone, skip=1)
            assert "90.00" in str(notice["text"])  # the balance after: 100.00 - 10.00
    finally:
        server.stop()
    sealed = await pool.fetchval(
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND sealed_secret IS NOT NULL",
        business.business_id,
    )
    assert sealed == 0


async def _first(received: list[dict[str, object]], phone: str, skip: int = 0) -> dict[str, object]:
    for _ in range(100):
        mine = [message for message in received if message["phone"] == phone]
        if len(mine) > skip:
            return mine[skip]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the gateway received nothing more for {phone}")
