"""The outbox dispatcher on a real PostgreSQL, sending to a real local HTTP gateway.

The dispatcher serves every business at once, so these tests use a database of their
own (created on the session's PostgreSQL server, dropped at the end): no other test's
messages, and no `purse serve` started by the end-to-end tests, can take part in a
round. Rows are still created per test business, and each test clears the outbox after
itself. The gateway is an HTTP/1.1 server on 127.0.0.1 that records every request and
answers the statuses a test scripts.
"""

from __future__ import annotations

import asyncio
import http
import io
import json
import logging
import os
import secrets
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from support import make_business, new_phone, sealed_by_purse_0_1

from purse import sealing
from purse.config import Settings
from purse.domain.customers import AccessType
from purse.notify import texts
from purse.notify.dispatcher import OutboxDispatcher, pin_key_purpose, retry_delay_ms
from purse.notify.providers import (
    Channel,
    ConsoleProvider,
    Delivery,
    DeliveryOutcome,
    OutgoingMessage,
    PushWebhookProvider,
    WebhookProvider,
)
from purse.store.postgres import database
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.device_tokens import DeviceTokenStore, Platform
from purse.store.postgres.outbox import MessageResult, MessageStatus, OutboxStore

pin_key = sealing.sealing_key(b"k" * 32, pin_key_purpose)
gateway_secret = "gateway-secret"
webhook_timeout_seconds = 2.0
webhook_connections_max = 16
wait_seconds_max = 10.0
poll_seconds = 0.01


# --- a real HTTP gateway --------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]


@dataclass
class ScriptedGateway:
    """HTTP/1.1 with keep-alive: answers `statuses` in order, then `default_status`."""

    statuses: deque[int] = field(default_factory=deque)
    default_status: int = 200
    delay_seconds: float = 0.0
    retry_after: str = ""
    # The JSON answered with a 2xx status, made from the request (none: an empty body).
    answer: Callable[[ReceivedRequest], object] | None = None
    received: list[ReceivedRequest] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> ScriptedGateway:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/messages"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def sent_ids(self) -> list[int]:
        return [request.payload["message_id"] for request in self.received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while request := await self._read_request(reader):
                self.received.append(request)
                self.arrived.set()
                status = self.statuses.popleft() if self.statuses else self.default_status
                if self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                phrase = http.HTTPStatus(status).phrase
                extra = f"Retry-After: {self.retry_after}\r\n" if self.retry_after else ""
                body = b""
                if self.answer is not None and 200 <= status < 300:
                    body = json.dumps(self.answer(request)).encode()
                head = f"HTTP/1.1 {status} {phrase}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
                writer.write(head.encode("ascii") + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
        request_line = await reader.readline()
        if not request_line:
            return None
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = request_line.decode("latin-1").split(" ")[1]
        return ReceivedRequest(path, headers, json.loads(body))


@pytest.fixture
async def gateway() -> AsyncIterator[ScriptedGateway]:
    started = await ScriptedGateway().start()
    yield started
    await started.stop()


@pytest.fixture
async def webhook(gateway: ScriptedGateway) -> AsyncIterator[WebhookProvider]:
    provider = WebhookProvider(
        gateway.url, webhook_timeout_seconds, webhook_connections_max, secret=gateway_secret
    )
    yield provider
    await provider.aclose()


# --- a database of this module's own --------------------------------------------------


@pytest.fixture(scope="module")
async def outbox_database(infrastructure: Settings) -> AsyncIterator[asyncpg.Pool]:
    name = f"purse_outbox_{os.getpid()}_{secrets.token_hex(4)}"
    url = urlsplit(infrastructure.database_url)._replace(path=f"/{name}").geturl()
    server: asyncpg.Connection = await asyncpg.connect(infrastructure.database_url)
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        await database.migrate(url)
        pool = await database.create_pool(url, 1, 10, 10_000, 10.0)
        try:
            yield pool
        finally:
            await pool.close()
    finally:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.close()


@pytest.fixture
async def outbox_pool(outbox_database: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    yield outbox_database
    await outbox_database.execute("DELETE FROM outbox_messages")


async def new_customer(pool: asyncpg.Pool, business_id: int, confirmed: bool) -> tuple[int, str]:
    phone = new_phone()
    customer_id, _ = await CustomerStore(pool).enrol(business_id, phone, AccessType.FULL)
    await pool.execute(
        "UPDATE memberships SET participation_confirmed = $3"
        " WHERE business_id = $1 AND customer_id = $2",
        business_id,
        customer_id,
        confirmed,
    )
    return customer_id, phone


async def insert_message(
    pool: asyncpg.Pool,
    business_id: int,
    customer: tuple[int, str],
    purpose: str,
    body: str,
    sealed_secret: bytes | None = None,
    channel: str = "sms",
    due_in_seconds: float = 0.0,
) -> int:
    message_id: int = await pool.fetchval(
        "INSERT INTO outbox_messages (business_id, customer_id, channel, purpose, phone,"
        "                             language, body, sealed_secret, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $5, 'en', $6, $7,"
        "         now() + make_interval(secs => $8::float8))"
        " RETURNING message_id",
        business_id,
        customer[0],
        channel,
        purpose,
        customer[1],
        body,
        sealed_secret,
        due_in_seconds,
    )
    return message_id


async def message_row(pool: asyncpg.Pool, business_id: int, message_id: int) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT status, reason, attempts, sent_at, sealed_secret, body,"
        "       extract(epoch FROM next_attempt_at - clock_timestamp()) * 1000 AS due_in_ms"
        "  FROM outbox_messages WHERE business_id = $1 AND message_id = $2",
        business_id,
        message_id,
    )
    assert row is not None
    return row


def make_dispatcher(
    pool: asyncpg.Pool, provider: Any, registry: CollectorRegistry | None = None, **overrides: Any
) -> OutboxDispatcher:
    limits: dict[str, Any] = {
        "batch_messages_max": 50,
        "poll_interval_ms": 10,
        "attempts_max": 5,
        "backoff_ms_first": 20,
        "backoff_ms_max": 100,
        **overrides,
    }
    return OutboxDispatcher(OutboxStore(pool), provider, pin_key, registry=registry, **limits)


async def run_until_settled(
    dispatcher: OutboxDispatcher, pool: asyncpg.Pool, business_id: int
) -> None:
    """Rounds until none of the business's messages is pending (bounded in time)."""
    async with asyncio.timeout(wait_seconds_max):
        while await pending_count(pool, business_id):
            if not await dispatcher.run_once():
                await asyncio.sleep(poll_seconds)


async def pending_count(pool: asyncpg.Pool, business_id: int) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM outbox_messages WHERE business_id = $1 AND status = 'pending'",
        business_id,
    )
    return count


# --- the dispatcher -------------------------------------------------------------------


async def test_due_messages_are_sent_once_and_later_ones_wait(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    text = texts.transaction_text("en", 1_250, 0, 25_000)
    due = [
        await insert_message(outbox_pool, business.business_id, customer, "transaction", text)
        for _ in range(3)
    ]
    later = await insert_message(
        outbox_pool, business.business_id, customer, "bulk", "News", due_in_seconds=3_600
    )
    dispatcher = make_dispatcher(outbox_pool, webhook)

    assert await dispatcher.run_once() == 3
    assert await dispatcher.run_once() == 0

    assert sorted(gateway.sent_ids()) == due
    first = gateway.received[0]
    assert first.path == "/messages"
    assert first.payload == {
        "message_id": due[0],
        "business_id": business.business_id,
        "customer_id": customer[0],
        "channel": "sms",
        "phone": customer[1],
        "text": "You have been credited 12.50 points, balance 250.00",
    }
    assert first.headers["authorization"] == f"Bearer {gateway_secret}"
    assert first.headers["idempotency-key"] == f"{business.business_id}-{due[0]}"
    for message_id in due:
        row = await message_row(outbox_pool, business.business_id, message_id)
        assert (row["status"], row["reason"], row["attempts"]) == ("sent", "", 1)
        assert row["sent_at"] is not None
    assert (await message_row(outbox_pool, business.business_id, later))["status"] == "pending"


async def test_unconfirmed_customers_get_no_transaction_or_bulk_messages(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    confirmed = await new_customer(outbox_pool, business.business_id, confirmed=True)
    unconfirmed = await new_customer(outbox_pool, business.business_id, confirmed=False)
    allowed = await insert_message(
        outbox_pool, business.business_id, confirmed, "transaction", "credited"
    )
    refused = [
        await insert_message(outbox_pool, business.business_id, unconfirmed, purpose, "hello")
        for purpose in ("transaction", "bulk")
    ]
    refused.append(
        await insert_message(
            outbox_pool, business.business_id, unconfirmed, "bulk", "hi", channel="smart"
        )
    )

    assert await make_dispatcher(outbox_pool, webhook).run_once() == 4

    assert gateway.sent_ids() == [allowed]
    for message_id in refused:
        row = await message_row(outbox_pool, business.business_id, message_id)
        assert (row["status"], row["reason"], row["attempts"]) == (
            "rejected",
            "PARTICIPATION_NOT_CONFIRMED",
            0,
        )
        assert row["sent_at"] is None


async def test_a_pin_reaches_an_unconfirmed_customer_and_is_then_erased_and_never_logged(
    outbox_pool: asyncpg.Pool,
    gateway: ScriptedGateway,
    webhook: WebhookProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=False)
    pin = "480213"
    message_id = await insert_message(
        outbox_pool,
        business.business_id,
        customer,
        "pin",
        texts.pin_text("uk"),
        sealed_secret=sealing.seal(pin_key, pin),
    )
    gateway.statuses.extend([503, 200])  # a retry is logged: it must not show the PIN
    dispatcher = make_dispatcher(outbox_pool, webhook, backoff_ms_first=1, backoff_ms_max=1)

    await run_until_settled(dispatcher, outbox_pool, business.business_id)

    assert [request.payload["text"] for request in gateway.received] == [
        texts.render(texts.pin_text("uk"), {"pin": pin})
    ] * 2
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert row["sealed_secret"] is None
    assert "{pin}" in row["body"] and pin not in row["body"]
    assert any(record.__dict__.get("reason") == "HTTP 503" for record in caplog.records)
    for record in caplog.records:
        assert pin not in record.getMessage()
        assert all(pin not in str(value) for value in record.__dict__.values())


other_pin_key = sealing.sealing_key(b"other" * 8, pin_key_purpose)


@pytest.mark.parametrize(
    ("sealed_secret", "reason"),
    [
        (
            sealing.seal(sealing.sealing_key(b"other" * 8, pin_key_purpose), "1234"),
            "PIN_UNREADABLE",
        ),
        (sealed_by_purse_0_1(b"k" * 32, "1234"), "PIN_SEALED_BY_OLDER_VERSION"),
    ],
    ids=["sealed with another key", "sealed before the upgrade"],
)
async def test_a_pin_that_cannot_be_unsealed_fails_with_its_reason_without_being_sent(
    outbox_pool: asyncpg.Pool,
    gateway: ScriptedGateway,
    webhook: WebhookProvider,
    sealed_secret: bytes,
    reason: str,
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool,
        business.business_id,
        customer,
        "pin",
        texts.pin_text("en"),
        sealed_secret=sealed_secret,
    )

    assert await make_dispatcher(outbox_pool, webhook).run_once() == 1

    assert gateway.received == []
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["reason"]) == ("failed", reason)
    assert row["sealed_secret"] is None


async def test_a_503_is_retried_after_a_backoff_and_then_sent(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "credited"
    )
    gateway.statuses.extend([503, 200])
    backoff_ms_first = 300
    dispatcher = make_dispatcher(
        outbox_pool, webhook, backoff_ms_first=backoff_ms_first, backoff_ms_max=1_000
    )

    assert await dispatcher.run_once() == 1
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["reason"], row["attempts"]) == ("pending", "HTTP 503", 1)
    assert 0 < row["due_in_ms"] <= backoff_ms_first
    assert await dispatcher.run_once() == 0  # not due again before the backoff ends

    await run_until_settled(dispatcher, outbox_pool, business.business_id)

    assert gateway.sent_ids() == [message_id, message_id]
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["reason"], row["attempts"]) == ("sent", "", 2)


async def test_a_429_waits_as_long_as_the_gateway_asks_and_is_counted_as_a_retry(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "credited"
    )
    gateway.statuses.append(429)
    gateway.retry_after = "5"
    registry = CollectorRegistry()
    dispatcher = make_dispatcher(
        outbox_pool, webhook, registry, backoff_ms_first=300, backoff_ms_max=1_000
    )
    assert await dispatcher.run_once() == 1
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["reason"]) == ("pending", "HTTP 429")
    assert 4_000 < row["due_in_ms"] <= 5_000  # the gateway's 5 s, not the 300 ms backoff
    counted = registry.get_sample_value("purse_outbox_messages_total", {"status": "retry"})
    assert counted == 1


async def test_finished_messages_past_retention_are_deleted_and_the_others_kept(
    outbox_pool: asyncpg.Pool,
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    ids = {
        name: await insert_message(outbox_pool, business.business_id, customer, "pin", name)
        for name in ("old-sent", "old-failed", "old-pending", "new-sent")
    }
    for name, status, age_days in [
        ("old-sent", "sent", 31), ("old-failed", "failed", 40), ("old-pending", "pending", 31),
        ("new-sent", "sent", 29),
    ]:  # fmt: skip
        await outbox_pool.execute(
            "UPDATE outbox_messages SET status = $3, created_at = now() - make_interval(days => $4)"
            " WHERE business_id = $1 AND message_id = $2",
            business.business_id, ids[name], status, age_days,
        )  # fmt: skip
    assert await OutboxStore(outbox_pool).delete_finished(30, 1) == 1  # bounded, oldest first
    assert await OutboxStore(outbox_pool).delete_finished(30, 100) == 1
    left = await outbox_pool.fetch(
        "SELECT message_id FROM outbox_messages WHERE business_id = $1 ORDER BY message_id",
        business.business_id,
    )
    assert [row["message_id"] for row in left] == [ids["old-pending"], ids["new-sent"]]


async def test_a_message_fails_after_the_maximum_attempts_and_loses_its_secret(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool,
        business.business_id,
        customer,
        "pin",
        texts.pin_text("en"),
        sealed_secret=sealing.seal(pin_key, "9999"),
    )
    gateway.default_status = 503
    dispatcher = make_dispatcher(
        outbox_pool, webhook, attempts_max=3, backoff_ms_first=10, backoff_ms_max=20
    )

    await run_until_settled(dispatcher, outbox_pool, business.business_id)

    assert gateway.sent_ids() == [message_id] * 3
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["reason"], row["attempts"]) == ("failed", "HTTP 503", 3)
    assert row["sealed_secret"] is None and row["sent_at"] is None


async def test_a_400_rejects_the_message_for_good(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "bulk", "news", channel="push"
    )
    gateway.statuses.append(400)
    dispatcher = make_dispatcher(outbox_pool, webhook)

    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0

    assert gateway.sent_ids() == [message_id]
    assert gateway.received[0].payload["channel"] == "push"
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["reason"], row["attempts"]) == ("rejected", "HTTP 400", 1)


async def test_two_dispatchers_running_together_never_send_a_message_twice(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_ids = await outbox_pool.fetchval(
        "WITH inserted AS ("
        "  INSERT INTO outbox_messages (business_id, customer_id, channel, purpose, phone, body)"
        "  SELECT $1, $2, 'sms', 'transaction', $3, 'text ' || n FROM generate_series(1, 300) n"
        "  RETURNING message_id"
        ") SELECT array_agg(message_id ORDER BY message_id) FROM inserted",
        business.business_id,
        customer[0],
        customer[1],
    )
    gateway.delay_seconds = 0.002
    providers = [
        WebhookProvider(gateway.url, webhook_timeout_seconds, 8, secret=f"dispatcher-{number}")
        for number in range(2)
    ]
    stop = asyncio.Event()
    runs = [
        asyncio.create_task(
            make_dispatcher(
                outbox_pool, provider, batch_messages_max=25, sends_in_flight_max=8
            ).run(stop)
        )
        for provider in providers
    ]
    try:
        async with asyncio.timeout(wait_seconds_max * 2):
            # The dispatchers work on their own; this only watches the table.
            while True:
                if not await pending_count(outbox_pool, business.business_id):
                    break
                await asyncio.sleep(poll_seconds * 5)
    finally:
        stop.set()
        await asyncio.gather(*runs)
        for provider in providers:
            await provider.aclose()

    assert sorted(gateway.sent_ids()) == message_ids
    senders = {request.headers["authorization"] for request in gateway.received}
    assert senders == {"Bearer dispatcher-0", "Bearer dispatcher-1"}  # both took part


async def test_a_send_still_running_at_the_batch_deadline_counts_as_a_retry(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "credited"
    )
    gateway.delay_seconds = 1.0  # longer than the sending share of a 400 ms lease
    dispatcher = make_dispatcher(outbox_pool, webhook, claim_lease_ms=400)

    assert await dispatcher.run_once() == 1

    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["reason"], row["attempts"]) == ("pending", "SEND_DEADLINE", 1)


class ExplodingProvider:
    """A provider whose every send raises, quoting the text as careless code might."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, message: OutgoingMessage) -> Delivery:
        self.calls += 1
        raise RuntimeError(f"could not send {message.text}")


async def test_a_provider_exception_counts_as_a_retry_and_its_text_is_not_kept(
    outbox_pool: asyncpg.Pool,
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "secret words"
    )
    provider = ExplodingProvider()

    assert await make_dispatcher(outbox_pool, provider).run_once() == 1

    assert provider.calls == 1
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["reason"] == "PROVIDER_ERROR RuntimeError"


async def test_the_run_loop_sends_what_arrives_and_stops_when_asked(
    outbox_pool: asyncpg.Pool, gateway: ScriptedGateway, webhook: WebhookProvider
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    stop = asyncio.Event()
    run = asyncio.create_task(make_dispatcher(outbox_pool, webhook).run(stop))
    await asyncio.sleep(0.05)  # idle rounds first
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "credited"
    )
    await asyncio.wait_for(gateway.arrived.wait(), wait_seconds_max)
    stop.set()
    await asyncio.wait_for(run, wait_seconds_max)
    assert gateway.sent_ids() == [message_id]


# --- the store's fencing ---------------------------------------------------------------


async def test_a_result_recorded_after_the_lease_ran_out_changes_nothing(
    outbox_pool: asyncpg.Pool,
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "credited"
    )
    store = OutboxStore(outbox_pool)
    [stale] = await store.claim_due(10, lease_ms=1)
    await asyncio.sleep(0.05)
    [current] = await store.claim_due(10, lease_ms=60_000)
    assert current.message_id == stale.message_id == message_id

    def sent(claimed_until: Any) -> MessageResult:
        return MessageResult(
            business.business_id, message_id, claimed_until, MessageStatus.SENT, "", 1
        )

    assert await store.record([sent(stale.claimed_until)]) == 0
    row = await message_row(outbox_pool, business.business_id, message_id)
    assert row["status"] == "pending"
    assert await store.record([sent(current.claimed_until)]) == 1
    assert (await message_row(outbox_pool, business.business_id, message_id))["status"] == "sent"


async def test_a_claimed_message_is_not_due_for_another_claimant(
    outbox_pool: asyncpg.Pool,
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=False)
    message_id = await insert_message(outbox_pool, business.business_id, customer, "bulk", "news")
    store = OutboxStore(outbox_pool)
    [claimed] = await store.claim_due(10, lease_ms=60_000)
    assert claimed.message_id == message_id
    assert claimed.participation_confirmed is False
    assert await store.claim_due(10, lease_ms=60_000) == []


# --- providers --------------------------------------------------------------------------


def outgoing(text: str = "Привіт") -> OutgoingMessage:
    return OutgoingMessage(7, 3, 5, Channel.SMART, "+380991234567", text)


async def test_the_console_provider_writes_one_json_line_per_message() -> None:
    stream = io.StringIO()
    provider = ConsoleProvider(stream)
    assert await provider.send(outgoing()) == Delivery.sent()
    assert await provider.send(outgoing("second")) == Delivery.sent()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {
        "message_id": 7,
        "business_id": 3,
        "customer_id": 5,
        "channel": "smart",
        "phone": "+380991234567",
        "text": "Привіт",
    }


async def test_an_outgoing_message_keeps_its_text_out_of_its_repr() -> None:
    assert "1234" not in repr(outgoing("code 1234"))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.SENT),
        (202, DeliveryOutcome.SENT),
        (408, DeliveryOutcome.RETRY),
        (429, DeliveryOutcome.RETRY),
        (500, DeliveryOutcome.RETRY),
        (503, DeliveryOutcome.RETRY),
        (400, DeliveryOutcome.REJECTED),
        (401, DeliveryOutcome.REJECTED),
        (404, DeliveryOutcome.REJECTED),
        (422, DeliveryOutcome.REJECTED),
    ],
)
async def test_the_webhook_classifies_gateway_answers(
    gateway: ScriptedGateway, webhook: WebhookProvider, status: int, outcome: DeliveryOutcome
) -> None:
    gateway.statuses.append(status)
    delivery = await webhook.send(outgoing())
    assert delivery.outcome is outcome
    assert delivery.reason == ("" if outcome is DeliveryOutcome.SENT else f"HTTP {status}")


async def test_an_unreachable_gateway_means_retry() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = WebhookProvider(f"http://127.0.0.1:{port}/", 1.0, 1)
    try:
        delivery = await provider.send(outgoing())
    finally:
        await provider.aclose()
    assert delivery == Delivery.retry("TRANSPORT_ERROR ConnectError")


async def test_a_gateway_slower_than_the_timeout_means_retry(gateway: ScriptedGateway) -> None:
    gateway.delay_seconds = 1.0
    provider = WebhookProvider(gateway.url, 0.1, 1)
    try:
        delivery = await provider.send(outgoing())
    finally:
        await provider.aclose()
    assert delivery == Delivery.retry("TIMEOUT")


# --- push and the smart fallback, through two real gateways ------------------------------

unregistered: dict[str, object] = {"status": "error", "details": {"error": "DeviceNotRegistered"}}
too_big: dict[str, object] = {"status": "error", "details": {"error": "MessageTooBig"}}


@dataclass
class Gateways:
    push: ScriptedGateway
    sms: ScriptedGateway
    push_provider: PushWebhookProvider
    sms_provider: WebhookProvider
    registry: CollectorRegistry

    def dispatcher(self, pool: asyncpg.Pool) -> OutboxDispatcher:
        return make_dispatcher(
            pool,
            self.sms_provider,
            self.registry,
            backoff_ms_first=1,
            backoff_ms_max=1,
            push=self.push_provider,
            device_tokens=DeviceTokenStore(pool),
        )

    def counted(self, channel: str, state: str) -> float:
        labels = {"channel": channel, "state": state}
        return self.registry.get_sample_value("purse_notify_messages_total", labels) or 0.0


def answering(*results: dict[str, object]) -> Callable[[ReceivedRequest], object]:
    """A push gateway's answer: `results` for the tokens, in the order of `to`."""

    def answer(request: ReceivedRequest) -> object:
        assert len(request.payload["to"]) == len(results)
        return {"data": list(results)}

    return answer


@pytest.fixture
async def gateways() -> AsyncIterator[Gateways]:
    push, sms = await ScriptedGateway().start(), await ScriptedGateway().start()
    push_provider = PushWebhookProvider(
        push.url, webhook_timeout_seconds, webhook_connections_max, secret="push-secret"
    )
    sms_provider = WebhookProvider(
        sms.url, webhook_timeout_seconds, webhook_connections_max, secret=gateway_secret
    )
    yield Gateways(push, sms, push_provider, sms_provider, CollectorRegistry())
    for provider in (push_provider, sms_provider):
        await provider.aclose()
    await push.stop()
    await sms.stop()


async def customer_with_devices(
    pool: asyncpg.Pool, business_id: int, *tokens: str
) -> tuple[int, str]:
    customer = await new_customer(pool, business_id, confirmed=True)
    for token in tokens:
        await DeviceTokenStore(pool).register(business_id, customer[0], token, Platform.IOS)
    return customer


async def delivery_row(pool: asyncpg.Pool, business_id: int, message_id: int) -> tuple[Any, ...]:
    row = await pool.fetchrow(
        "SELECT status, reason, delivery_channel FROM outbox_messages"
        " WHERE business_id = $1 AND message_id = $2",
        business_id,
        message_id,
    )
    assert row is not None
    return tuple(row)


async def test_a_delivered_push_sends_no_sms(outbox_pool: asyncpg.Pool, gateways: Gateways) -> None:
    business = await make_business(outbox_pool)
    customer = await customer_with_devices(outbox_pool, business.business_id, "phone", "tablet")
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "bulk", "Sale today", channel="smart"
    )
    gateways.push.answer = answering({"status": "delivered"}, {"status": "ok"})

    await run_until_settled(gateways.dispatcher(outbox_pool), outbox_pool, business.business_id)

    [request] = gateways.push.received
    assert request.payload == {
        "to": ["tablet", "phone"],  # the most recently registered first
        "title": await outbox_pool.fetchval(
            "SELECT name FROM businesses WHERE business_id = $1", business.business_id
        ),
        "body": "Sale today",
        "data": {
            "message_id": message_id,
            "business_id": business.business_id,
            "customer_id": customer[0],
        },
    }
    assert request.headers["authorization"] == "Bearer push-secret"
    assert request.headers["idempotency-key"] == f"{business.business_id}-{message_id}-push"
    assert gateways.sms.received == []
    assert await delivery_row(outbox_pool, business.business_id, message_id) == (
        "delivered",
        "",
        "push",
    )
    assert gateways.counted("push", "delivered") == 1
    assert gateways.counted("sms", "sent") == 0


async def test_a_push_failing_for_every_token_goes_as_exactly_one_sms_even_when_retried(
    outbox_pool: asyncpg.Pool, gateways: Gateways
) -> None:
    business = await make_business(outbox_pool)
    customer = await customer_with_devices(outbox_pool, business.business_id, "old", "gone")
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "credited", channel="smart"
    )
    gateways.push.answer = answering(unregistered, too_big)
    gateways.sms.statuses.extend([503, 200])  # the SMS is retried once

    await run_until_settled(gateways.dispatcher(outbox_pool), outbox_pool, business.business_id)

    assert len(gateways.push.received) == 1  # the retry went to SMS only
    assert gateways.sms.sent_ids() == [message_id, message_id]
    keys = {request.headers["idempotency-key"] for request in gateways.sms.received}
    assert keys == {f"{business.business_id}-{message_id}"}  # one SMS for the gateway
    assert await delivery_row(outbox_pool, business.business_id, message_id) == (
        "sent",
        "",
        "sms",
    )
    live = await DeviceTokenStore(outbox_pool).live(business.business_id, customer[0])
    assert [device.token for device in live] == ["old"]  # "gone" was unregistered
    assert gateways.counted("push", "rejected") == 1
    assert (gateways.counted("sms", "queued"), gateways.counted("sms", "sent")) == (1, 1)


async def test_a_customer_without_a_device_gets_smart_messages_by_sms_and_no_push_ones(
    outbox_pool: asyncpg.Pool, gateways: Gateways
) -> None:
    business = await make_business(outbox_pool)
    customer = await customer_with_devices(outbox_pool, business.business_id)
    smart = await insert_message(
        outbox_pool, business.business_id, customer, "bulk", "news", channel="smart"
    )
    push = await insert_message(
        outbox_pool, business.business_id, customer, "bulk", "news", channel="push"
    )

    await run_until_settled(gateways.dispatcher(outbox_pool), outbox_pool, business.business_id)

    assert gateways.push.received == []
    assert gateways.sms.sent_ids() == [smart]
    assert await delivery_row(outbox_pool, business.business_id, smart) == ("sent", "", "sms")
    assert await delivery_row(outbox_pool, business.business_id, push) == (
        "rejected",
        "NO_DEVICE",
        None,
    )
    assert gateways.counted("push", "rejected") == 1
    assert gateways.counted("sms", "sent") == 1


async def test_a_push_only_message_whose_tokens_are_all_unregistered_is_rejected_and_revoked(
    outbox_pool: asyncpg.Pool, gateways: Gateways
) -> None:
    business = await make_business(outbox_pool)
    customer = await customer_with_devices(outbox_pool, business.business_id, "stale")
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "bulk", "news", channel="push"
    )
    gateways.push.answer = answering(unregistered)

    await run_until_settled(gateways.dispatcher(outbox_pool), outbox_pool, business.business_id)

    assert gateways.sms.received == []
    assert await delivery_row(outbox_pool, business.business_id, message_id) == (
        "rejected",
        "DEVICE_NOT_REGISTERED",
        "push",
    )
    assert await DeviceTokenStore(outbox_pool).live(business.business_id, customer[0]) == []


async def test_an_sms_webhook_answering_delivered_makes_the_message_delivered(
    outbox_pool: asyncpg.Pool, gateways: Gateways
) -> None:
    business = await make_business(outbox_pool)
    customer = await new_customer(outbox_pool, business.business_id, confirmed=True)
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "transaction", "credited"
    )
    gateways.sms.answer = lambda request: {"status": "delivered"}

    await run_until_settled(gateways.dispatcher(outbox_pool), outbox_pool, business.business_id)

    assert await delivery_row(outbox_pool, business.business_id, message_id) == (
        "delivered",
        "",
        "sms",
    )
    sent_at = await outbox_pool.fetchval(
        "SELECT sent_at FROM outbox_messages WHERE business_id = $1 AND message_id = $2",
        business.business_id,
        message_id,
    )
    assert sent_at is not None
    assert gateways.counted("sms", "delivered") == 1


async def test_a_push_gateway_that_cannot_be_reached_sends_the_smart_message_by_sms(
    outbox_pool: asyncpg.Pool, gateways: Gateways
) -> None:
    business = await make_business(outbox_pool)
    customer = await customer_with_devices(outbox_pool, business.business_id, "phone")
    message_id = await insert_message(
        outbox_pool, business.business_id, customer, "bulk", "news", channel="smart"
    )
    gateways.push.default_status = 503

    await run_until_settled(gateways.dispatcher(outbox_pool), outbox_pool, business.business_id)

    assert gateways.sms.sent_ids() == [message_id]
    assert await delivery_row(outbox_pool, business.business_id, message_id) == (
        "sent",
        "",
        "sms",
    )
    assert gateways.counted("push", "failed") == 1
    live = await DeviceTokenStore(outbox_pool).live(business.business_id, customer[0])
    assert [device.token for device in live] == ["phone"]  # an outage revokes nothing


# --- backoff (pure) ------------------------------------------------------------------------


def test_the_backoff_doubles_per_attempt_up_to_its_maximum() -> None:
    ceilings = [retry_delay_ms(attempts, 100, 1_000, 0.999_999) for attempts in range(1, 8)]
    assert ceilings == [99, 199, 399, 799, 999, 999, 999]


def test_the_backoff_jitter_never_goes_below_half_the_delay() -> None:
    assert retry_delay_ms(3, 100, 1_000, 0.0) == 200
    assert retry_delay_ms(1_000_000, 100, 1_000, 0.0) == 500
