"""Purse's Redis stores on a real Redis Cluster of three masters with a replica each
(tests/redis_cluster.py): every business in one slot of its own master, the scripts
routed there, and the stores answering again after a failover and after a master is
killed, with what they held kept by the replica that took over."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from redis_cluster import LocalRedisCluster, Node
from test_balance_cache import membership

from purse.bootstrap import wait_for_dependencies
from purse.config import SettingError, Settings, load_settings
from purse.store.failures import DEPENDENCY_FAILURES
from purse.store.redis import keys
from purse.store.redis.balance_cache import BalanceCache, hint
from purse.store.redis.client import RedisClient, create_client
from purse.store.redis.pins import PinStore, pin_attempts_max
from purse.store.redis.rate_limits import AttemptLimit
from purse.store.redis.steward_codes import StewardCodes

client_timeout_seconds = 2.0
# How soon after a failover the client must have found the new master.
recovery_seconds_max = 10.0
_businesses = itertools.count(80_000)
# Each master serves a third of the slots: a business of its own is among the first few.
businesses_tried_max = 200
_pin = "123456"


@pytest.fixture
async def cluster_client(redis_cluster: LocalRedisCluster) -> AsyncIterator[RedisClient]:
    client = create_client(redis_cluster.url, 16, client_timeout_seconds, cluster=True)
    yield client
    await client.aclose()


def business_on(cluster: LocalRedisCluster, master: Node | None = None) -> int:
    """A business no other test uses, whose slot `master` serves (any master: None)."""
    for business_id in itertools.islice(_businesses, businesses_tried_max):
        if master is None or cluster.master_of(keys.business_tag(business_id)) == master:
            return business_id
    raise AssertionError(f"no business of {businesses_tried_max} is served by port {master}")


def new_cache(client: RedisClient) -> BalanceCache:
    return BalanceCache(client, 60, 1.0, CollectorRegistry())


async def test_every_store_works_for_businesses_on_each_master(
    redis_cluster: LocalRedisCluster, cluster_client: RedisClient
) -> None:
    codes = StewardCodes(cluster_client, lifetime_seconds=60)
    guesses = AttemptLimit(cluster_client, attempts_max=2, window_seconds=60)
    pins = PinStore(cluster_client, b"k" * 32)
    masters = redis_cluster.serving()
    assert len(masters) == len(redis_cluster.masters)
    for master in masters:
        business = business_on(redis_cluster, master)
        code, _ = await codes.issue(business, customer_id=7)
        assert await codes.redeem(business, code) == ("ok", 7)
        assert await codes.redeem(business, code) == ("used", 0)
        key = keys.steward_code_guesses(business, 1)
        assert [(await guesses.reserve(key)).granted for _ in range(3)] == [True, True, False]
        await guesses.release(key)
        assert (await guesses.reserve(key)).granted
        await pins.remember(business, 1, _pin, 60)
        assert await pins.check(business, 1, "000000") == ("wrong", pin_attempts_max - 1)
        assert await pins.check(business, 1, _pin) == ("ok", pin_attempts_max - 1)
        with redis_cluster.client(master) as node:
            assert node.exists(keys.pin(business, 1), key) == 2  # on that master itself


async def test_the_balance_cache_finds_by_hint_forgets_and_refuses_stale_fills(
    redis_cluster: LocalRedisCluster, cluster_client: RedisClient
) -> None:
    cache, business = new_cache(cluster_client), business_on(redis_cluster)
    card = hint("card_number", "4000123412341234")
    missed = await cache.lookup(business, card)
    assert missed.membership is None and missed.ticket is not None
    assert await cache.remember(business, membership(5), card, missed.ticket)
    assert (await cache.lookup(business, card)).membership == membership(5)
    assert (await cache.lookup(business, 5)).membership == membership(5)
    pending = await cache.lookup(business, 6)
    # The card moves to customer 6 and both change while a reader read the database.
    await cache.forget(business, [5, 6], [card])
    assert not await cache.remember(business, membership(6), card, pending.ticket)
    assert (await cache.lookup(business, card)).membership is None
    again = await cache.lookup(business, card)
    assert await cache.remember(business, membership(6), card, again.ticket)
    assert (await cache.lookup(business, card)).membership == membership(6)
    assert (await cache.lookup(business, 5)).membership is None


async def pin_and_cached_membership(
    cluster: LocalRedisCluster, client: RedisClient
) -> tuple[PinStore, BalanceCache, int, Node]:
    """The stores, a business with a PIN pending for transaction 1 and customer 5
    cached, and the master serving it."""
    pins, cache = PinStore(client, b"k" * 32), new_cache(client)
    business = business_on(cluster)
    await pins.remember(business, 1, _pin, 60)
    missed = await cache.lookup(business, 5)
    assert await cache.remember(business, membership(5), 5, missed.ticket)
    return pins, cache, business, cluster.master_of(keys.business_tag(business))


async def test_a_pin_and_a_cached_membership_outlive_a_failover_of_their_master(
    redis_cluster: LocalRedisCluster, cluster_client: RedisClient
) -> None:
    pins, cache, business, master = await pin_and_cached_membership(redis_cluster, cluster_client)
    assert (await pins.check(business, 1, "000000"))[0] == "wrong"
    successor = await asyncio.to_thread(redis_cluster.fail_over, master)
    assert redis_cluster.master_of(keys.business_tag(business)) == successor != master
    # The client was sent to the old master, now a replica: MOVED takes it to the new one.
    assert (await cache.lookup(business, 5)).membership == membership(5)
    assert await pins.check(business, 1, _pin) == ("ok", pin_attempts_max - 1)


async def test_a_killed_master_is_an_outage_until_its_replica_takes_over_then_rejoins(
    redis_cluster: LocalRedisCluster, cluster_client: RedisClient
) -> None:
    pins, cache, business, master = await pin_and_cached_membership(redis_cluster, cluster_client)
    replica = redis_cluster.replica_of(master)
    await asyncio.to_thread(redis_cluster.wait_for_replicas)
    # The replica waits to be told (so the outage below is certain to be seen), then
    # takes over by the cluster's own election, as when a master dies for real.
    with redis_cluster.client(replica) as node:
        node.config_set("cluster-replica-no-failover", "yes")
        await asyncio.to_thread(redis_cluster.kill, master)
        with pytest.raises(DEPENDENCY_FAILURES):
            await pins.check(business, 1, _pin)
        outage = await cache.lookup(business, 5)  # a miss that does not raise
        assert outage.membership is None and outage.ticket is None
        node.config_set("cluster-replica-no-failover", "no")
    await asyncio.to_thread(redis_cluster.wait_until_serving, master, replica)
    await answers_again(cluster_client, keys.pin(business, 1))
    assert await pins.check(business, 1, _pin) == ("ok", pin_attempts_max)
    assert (await cache.lookup(business, 5)).membership == membership(5)
    await asyncio.to_thread(redis_cluster.start_node, master)
    await asyncio.to_thread(redis_cluster.wait_until_healthy)
    assert redis_cluster.replica_of(replica) == master


async def answers_again(client: RedisClient, key: str) -> None:
    """Return once the client reads `key` again; AssertionError after
    `recovery_seconds_max` (the client reads the map of slots again at most once a
    second, so the first command after a failover may still fail)."""
    deadline = time.monotonic() + recovery_seconds_max
    while True:
        try:
            assert await client.exists(key) == 1
            return
        except DEPENDENCY_FAILURES:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_a_server_refuses_to_start_on_redis_of_the_other_kind_naming_the_setting(
    infrastructure: Settings, redis_cluster: LocalRedisCluster
) -> None:
    def settings(redis_url: str, cluster: bool) -> Settings:
        return load_settings(
            {},
            database_url=infrastructure.database_url,
            redis_url=redis_url,
            redis_cluster=cluster,
            start_dependency_wait_seconds=5,
        )

    cluster_node = r"PURSE_REDIS_CLUSTER: .* a node of a Redis Cluster: set it to true"
    with pytest.raises(SettingError, match=cluster_node):
        await wait_for_dependencies(settings(redis_cluster.url, cluster=False))
    with pytest.raises(SettingError, match=r"PURSE_REDIS_CLUSTER: .* not a Redis Cluster node"):
        await wait_for_dependencies(settings(infrastructure.redis_url, cluster=True))
    await wait_for_dependencies(settings(redis_cluster.url, cluster=True))
