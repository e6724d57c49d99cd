"""The balance cache seen from a terminal: identification is answered from Redis, every
change a terminal makes shows at once, and nothing stored rests on a cached balance."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
import redis.asyncio as redis
from admin_support import customer_with_points, set_program
from support import ServerProcess, Tenant, bearer, error_reason
from test_transactions import points_of, sale, sent_pin

from purse.config import Settings
from purse.store.postgres.provisioning import Provisioning
from purse.store.redis import keys
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def available_points(
    stub: TerminalServiceAsyncStub, business: Tenant, **identifier: str
) -> int:
    answer = await stub.IdentifyCustomer(
        pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(**identifier)),
        metadata=bearer(business.cash_desk.api_key),
    )
    return answer.membership.pockets[0].available


async def customer_id_of(pool: asyncpg.Pool, phone: str) -> int:
    found: int = await pool.fetchval("SELECT customer_id FROM customers WHERE phone = $1", phone)
    return found


async def cache_hits(server: ServerProcess) -> float:
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    line = next(
        line
        for line in text.splitlines()
        if line.startswith('purse_balance_cache_lookups_total{result="hit"}')
    )
    return float(line.split()[-1])


async def test_identification_is_answered_from_the_cache_after_the_first_time(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    redis_client: redis.Redis,
    server: ServerProcess,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    phone = await customer_with_points(channel, business, 5_000)
    customer_id = await customer_id_of(pool, phone)
    assert await available_points(terminal_stub, business, phone=phone) == 5_000
    assert await redis_client.exists(keys.membership(business.business_id, customer_id))
    hits = await cache_hits(server)
    # A write that bypasses the server is not seen: the answer comes from Redis.
    await Provisioning(pool).adjust_pocket(business.business_id, customer_id, 0, 700)
    assert await available_points(terminal_stub, business, phone=phone) == 5_000
    assert await cache_hits(server) == hits + 1


async def test_a_sale_a_hold_and_a_refund_each_show_at_the_next_identification(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=1_000)
    phone = await customer_with_points(channel, business, 5_000)
    auth = bearer(business.cash_desk.api_key)
    assert await available_points(terminal_stub, business, phone=phone) == 5_000
    await terminal_stub.ProcessCheck(sale("BC-1", phone, redeem=500), metadata=auth)
    assert await available_points(terminal_stub, business, phone=phone) == 4_500
    pending = await terminal_stub.ProcessCheck(sale("BC-2", phone, redeem=2_000), metadata=auth)
    transaction_id = pending.transaction.transaction_id
    assert await available_points(terminal_stub, business, phone=phone) == 2_500
    pin = await sent_pin(pool, business, transaction_id)
    await terminal_stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=pin), metadata=auth
    )
    assert await available_points(terminal_stub, business, phone=phone) == 2_500
    await terminal_stub.RefundTransaction(
        pb.RefundTransactionRequest(transaction_id=transaction_id, refund_number="BC-R1"),
        metadata=auth,
    )
    assert await available_points(terminal_stub, business, phone=phone) == 4_500


async def test_a_removed_card_stops_identifying_its_customer_at_once(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    phone = await customer_with_points(channel, business, 100)
    customer_id = await customer_id_of(pool, phone)
    auth = bearer(business.cash_desk.api_key)
    card = common_pb2.IDENTIFIER_KIND_CARD_NUMBER
    await terminal_stub.AddCustomerIdentifier(
        pb.AddCustomerIdentifierRequest(customer_id=customer_id, kind=card, value="CACHE-CARD-1"),
        metadata=auth,
    )
    assert await available_points(terminal_stub, business, card_number="CACHE-CARD-1") == 100
    await terminal_stub.RemoveCustomerIdentifier(
        pb.RemoveCustomerIdentifierRequest(
            customer_id=customer_id, kind=card, value="CACHE-CARD-1"
        ),
        metadata=auth,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await available_points(terminal_stub, business, card_number="CACHE-CARD-1")
    assert error_reason(refused.value) == "CUSTOMER_NOT_FOUND"


async def test_new_names_show_at_the_registering_business_next_identification(
    terminal_stub: TerminalServiceAsyncStub,
    server: ServerProcess,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    phone = await customer_with_points(channel, business, 100)
    auth = bearer(business.cash_desk.api_key)
    identify = pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone))
    await terminal_stub.IdentifyCustomer(identify, metadata=auth)
    hits = await cache_hits(server)
    before = await terminal_stub.IdentifyCustomer(identify, metadata=auth)
    assert await cache_hits(server) == hits + 1  # the old names are in the cache
    assert before.membership.given_name == ""
    await terminal_stub.RegisterCustomer(
        pb.RegisterCustomerRequest(phone=phone, given_name="Olena", language="uk"), metadata=auth
    )
    after = await terminal_stub.IdentifyCustomer(identify, metadata=auth)
    assert (after.membership.given_name, after.membership.language) == ("Olena", "uk")


async def test_process_check_spends_the_real_balance_not_a_cached_one(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=None)
    phone = await customer_with_points(channel, business, 1_000)
    customer_id = await customer_id_of(pool, phone)
    assert await available_points(terminal_stub, business, phone=phone) == 1_000
    # The cache still says 1,000 (this write bypasses the server); the check needs 3,000.
    await Provisioning(pool).adjust_pocket(business.business_id, customer_id, 0, 2_000)
    done = await terminal_stub.ProcessCheck(
        sale("BC-REAL", phone, redeem=3_000), metadata=bearer(business.cash_desk.api_key)
    )
    assert done.transaction.receipt.points_redeemed_hundredths == 3_000
    assert await available_points(terminal_stub, business, phone=phone) == 0


async def test_a_sale_through_one_server_shows_at_once_through_another(
    terminal_stub: TerminalServiceAsyncStub,
    infrastructure: Settings,
    business: Tenant,
    tmp_path: Path,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=None)
    phone = await customer_with_points(channel, business, 5_000)
    assert await available_points(terminal_stub, business, phone=phone) == 5_000  # cached
    second = ServerProcess(
        {
            "PURSE_DATABASE_URL": infrastructure.database_url,
            "PURSE_REDIS_URL": infrastructure.redis_url,
            "PURSE_NOTIFY_ENABLED": "false",
        },
        tmp_path,
    ).start()
    try:
        async with grpc.aio.insecure_channel(second.target) as side:
            await TerminalServiceStub(side).ProcessCheck(
                sale("BC-X1", phone, redeem=1_200), metadata=bearer(business.cash_desk.api_key)
            )
    finally:
        assert await asyncio.to_thread(second.stop) == 0, second.log()
    assert await available_points(terminal_stub, business, phone=phone) == 3_800


async def test_each_sale_shows_at_once_while_other_identifications_fill_the_cache(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    """Readers keep filling the cache while sales commit; after every sale the seller's
    next identification shows exactly the balance the sale answered with."""
    await set_program(channel, business, points_redemption_limit_without_pin=None)
    phone = await customer_with_points(channel, business, 100_000)
    auth = bearer(business.cash_desk.api_key)
    identify = pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone))
    selling = asyncio.Event()
    selling.set()

    async def keep_identifying() -> None:
        while selling.is_set():
            await terminal_stub.IdentifyCustomer(identify, metadata=auth)

    async def sell(count: int) -> list[tuple[int, int]]:
        seen = []
        for number in range(count):
            done = await terminal_stub.ProcessCheck(
                sale(f"RACE-{number}", phone, redeem=100), metadata=auth
            )
            after = await terminal_stub.IdentifyCustomer(identify, metadata=auth)
            seen.append(
                (done.membership.pockets[0].available, after.membership.pockets[0].available)
            )
        selling.clear()
        return seen

    readers = [asyncio.create_task(keep_identifying()) for _ in range(4)]
    seen = await sell(60)
    await asyncio.gather(*readers)
    assert all(answered == identified for answered, identified in seen), seen
    assert seen[-1][0] == 100_000 - 60 * 100
    assert await points_of(pool, business, phone) == (100_000 - 60 * 100, 0)
