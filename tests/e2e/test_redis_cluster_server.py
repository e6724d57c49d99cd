"""`purse serve` on a Redis Cluster (PURSE_REDIS_URL naming one node, PURSE_REDIS_CLUSTER
true): identification answered from the balance cache the cluster keeps, a sale held
for a PIN, and that PIN confirmed after the master of the business's slot failed over."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import customer_with_points, five_percent_back, set_program
from redis_cluster import LocalRedisCluster
from support import ServerProcess, Tenant, bearer, side_server
from test_identification_cache import available_points, cache_hits, customer_id_of
from test_transactions import points_of, sale, sent_pin

from purse.config import Settings
from purse.store.redis import keys
from purse.store.redis.client import create_client
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


@pytest.fixture(scope="module")
def cluster_server(
    infrastructure: Settings,
    redis_cluster: LocalRedisCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    process = side_server(
        infrastructure.database_url,
        redis_cluster.url,
        tmp_path_factory.mktemp("cluster-server"),
        REDIS_CLUSTER="true",
    ).start()
    yield process
    assert process.stop() == 0, process.log()


async def test_a_server_on_a_cluster_caches_identification_and_confirms_a_pin_across_a_failover(
    business: Tenant,
    cluster_server: ServerProcess,
    redis_cluster: LocalRedisCluster,
    pool: asyncpg.Pool,
) -> None:
    async with grpc.aio.insecure_channel(cluster_server.target) as channel:
        phone = await identified_from_the_cache(
            channel, cluster_server, redis_cluster, business, pool
        )
        await confirmed_across_a_failover(channel, redis_cluster, business, pool, phone)


async def identified_from_the_cache(
    channel: grpc.aio.Channel,
    server: ServerProcess,
    redis_cluster: LocalRedisCluster,
    business: Tenant,
    pool: asyncpg.Pool,
) -> str:
    """A customer's phone, after their membership was cached on the cluster."""
    stub: TerminalServiceAsyncStub = TerminalServiceStub(channel)
    await set_program(
        channel,
        business,
        rules=(five_percent_back,),
        points_redemption_limit_without_pin=1_000,
    )
    phone = await customer_with_points(channel, business, 10_000)
    assert await available_points(stub, business, phone=phone) == 10_000
    hits = await cache_hits(server)
    assert await available_points(stub, business, phone=phone) == 10_000
    assert await cache_hits(server) == hits + 1
    customer_id = await customer_id_of(pool, phone)
    client = create_client(redis_cluster.url, 2, 5.0, cluster=True)
    try:
        assert await client.exists(keys.membership(business.business_id, customer_id)) == 1
    finally:
        await client.aclose()
    return phone


async def confirmed_across_a_failover(
    channel: grpc.aio.Channel,
    redis_cluster: LocalRedisCluster,
    business: Tenant,
    pool: asyncpg.Pool,
    phone: str,
) -> None:
    """A sale held for a PIN, the master of the business's slot failed over, the PIN
    confirmed; the next identification shows the sale."""
    stub: TerminalServiceAsyncStub = TerminalServiceStub(channel)
    auth = bearer(business.cash_desk.api_key)
    pending = await stub.ProcessCheck(sale("CLUSTER-1", phone, redeem=2_000), metadata=auth)
    transaction_id = pending.transaction.transaction_id
    assert pending.transaction.status == pb.TRANSACTION_STATUS_PENDING
    master = redis_cluster.master_of(keys.business_tag(business.business_id))
    await asyncio.to_thread(redis_cluster.fail_over, master)
    confirmed = await stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(
            transaction_id=transaction_id, pin=await sent_pin(pool, business, transaction_id)
        ),
        metadata=auth,
    )
    assert confirmed.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
    assert await points_of(pool, business, phone) == (10_000 - 2_000 + 400, 0)
    # The confirmation's forget reached the cluster: no cached balance from before it.
    assert await available_points(stub, business, phone=phone) == 10_000 - 2_000 + 400
