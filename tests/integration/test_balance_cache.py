"""The balance cache on a real Redis: hits, forgets, and fills that raced a write."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry

from purse.domain.customers import AccessType, Membership, Pocket, PocketKind
from purse.service.unit_of_work import UnitOfWork
from purse.store.embedded import free_port
from purse.store.redis import keys
from purse.store.redis.balance_cache import BalanceCache, hint
from purse.store.redis.client import RedisClient, create_client

_businesses = itertools.count(70_000)


def membership(customer_id: int = 5, balance: int = 1_000, **pocket: object) -> Membership:
    return Membership(
        customer_id=customer_id,
        phone="+380501112233",
        category_id=1,
        category_title="Regular",
        access_type=AccessType.FULL,
        participation_confirmed=True,
        pockets=(Pocket(11, PocketKind.POINTS, 0, "", balance, 0, **pocket),),  # type: ignore[arg-type]
        sales_count=3,
        sales_sum_minor_units=45_000,
        last_visit=datetime(2026, 11, 1, 12, 30, 15, 123_456, tzinfo=UTC),
        language="uk",
    )


def new_cache(client: RedisClient, lifetime_seconds: int = 60) -> BalanceCache:
    return BalanceCache(client, lifetime_seconds, 1.0, CollectorRegistry())


async def test_a_membership_remembered_after_a_miss_is_the_next_hit(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    missed = await cache.lookup(business, hint("phone", "+380501112233"))
    assert missed.membership is None and missed.ticket is not None
    assert await cache.remember(
        business, membership(), hint("phone", "+380501112233"), missed.ticket
    )
    by_phone = await cache.lookup(business, hint("phone", "+380501112233"))
    by_id = await cache.lookup(business, 5)
    assert by_phone.membership == membership() == by_id.membership


async def test_a_fill_that_began_before_a_committed_change_is_refused(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    missed = await cache.lookup(business, 5)
    await cache.forget(business, [5])  # a write committed while the reader read the database
    assert not await cache.remember(business, membership(balance=1), 5, missed.ticket)
    assert (await cache.lookup(business, 5)).membership is None
    again = await cache.lookup(business, 5)
    assert await cache.remember(business, membership(balance=2), 5, again.ticket)
    assert (await cache.lookup(business, 5)).membership == membership(balance=2)


async def test_a_forget_drops_the_value_and_leaves_other_customers_alone(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    for customer in (5, 6):
        missed = await cache.lookup(business, customer)
        assert await cache.remember(business, membership(customer), customer, missed.ticket)
    await cache.forget(business, [5])
    assert (await cache.lookup(business, 5)).membership is None
    assert (await cache.lookup(business, 6)).membership == membership(6)


async def test_a_removed_card_no_longer_finds_the_customer(redis_client: redis.Redis) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    card = hint("card_number", "4000123412341234")
    missed = await cache.lookup(business, card)
    assert await cache.remember(business, membership(), card, missed.ticket)
    await cache.forget(business, [5], [card])
    refill = await cache.lookup(business, 5)
    assert await cache.remember(business, membership(), 5, refill.ticket)
    assert (await cache.lookup(business, card)).membership is None
    assert (await cache.lookup(business, 5)).membership == membership()


async def test_a_hint_moved_by_another_server_is_a_miss_then_found_afresh(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    card = hint("card_number", "4000123412341234")
    for customer, by in ((5, card), (6, 6)):
        missed = await cache.lookup(business, by)
        assert await cache.remember(business, membership(customer), by, missed.ticket)
    # Another server filled the card after it moved to customer 6: this one still
    # remembers customer 5 for it, and its lookup checks the card in Redis.
    await redis_client.set(keys.customer_by(business, "card_number", "4000123412341234"), b"6")
    moved = await cache.lookup(business, card)
    assert moved.membership is None and moved.ticket is not None
    assert (await cache.lookup(business, card)).membership == membership(6)


async def test_a_hint_this_server_has_read_takes_one_call_to_redis(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = hint("card_number", "4000123412341234")
    business = next(_businesses)
    filling = new_cache(redis_client)
    missed = await filling.lookup(business, card)
    assert await filling.remember(business, membership(5), card, missed.ticket)
    cache = new_cache(redis_client)  # another server's: it has not read the card yet
    calls: list[list[str]] = []
    lookup = cache._lookup

    async def counted(keys: list[str], args: list[str]) -> object:
        calls.append(keys)
        return await lookup(keys=keys, args=args)

    monkeypatch.setattr(cache, "_lookup", counted)
    for _ in range(3):
        assert (await cache.lookup(business, card)).membership == membership(5)
    # The first lookup reads the card, then the value; the next two only the value.
    assert [len(keys) for keys in calls] == [2, 3, 3, 3]


async def test_losing_the_clock_refuses_fills_begun_before_and_hides_older_values(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    missed = await cache.lookup(business, 5)
    assert await cache.remember(business, membership(), 5, missed.ticket)
    pending = await cache.lookup(business, 6)
    await redis_client.delete(keys.membership_clock(business))  # as a flush or an eviction
    assert not await cache.remember(business, membership(6), 6, pending.ticket)
    assert (await cache.lookup(business, 5)).membership is None


async def test_a_value_never_outlives_the_soonest_expiry_of_special_points(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client, lifetime_seconds=600), next(_businesses)
    soon = datetime.fromtimestamp(time.time() + 30, UTC)
    missed = await cache.lookup(business, 5)
    assert await cache.remember(
        business, membership(expiring=100, next_expiry=soon), 5, missed.ticket
    )
    lifetime = await redis_client.ttl(keys.membership(business, 5))
    assert 25 <= lifetime <= 30
    past = datetime.now(UTC) - timedelta(seconds=1)
    gone = await cache.lookup(business, 6)
    assert not await cache.remember(business, membership(6, next_expiry=past), 6, gone.ticket)


async def test_a_value_that_does_not_decode_is_a_miss_that_the_fill_repairs(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    first = await cache.lookup(business, 5)
    assert first.ticket is not None
    await redis_client.set(keys.membership(business, 5), first.ticket.epoch + b"|not json")
    missed = await cache.lookup(business, 5)
    assert missed.membership is None
    assert await cache.remember(business, membership(), 5, missed.ticket)
    assert (await cache.lookup(business, 5)).membership == membership()


async def test_an_unreachable_redis_is_a_miss_and_a_forget_does_not_raise() -> None:
    client = create_client(f"redis://127.0.0.1:{free_port()}/0", 2, 0.5)
    try:
        cache = new_cache(client)
        missed = await cache.lookup(1, 5)
        assert missed.membership is None and missed.ticket is None
        assert not await cache.remember(1, membership(), 5, missed.ticket)
        await cache.forget(1, [5])
    finally:
        await client.aclose()


# The unit of work: a committed change is forgotten, a failed one is not.
_card = hint("card_number", "4000123412341234")


async def _cached(cache: BalanceCache, business: int) -> None:
    for by in (5, _card):
        missed = await cache.lookup(business, by)
        assert await cache.remember(business, membership(), by, missed.ticket)


async def test_a_change_made_through_the_unit_of_work_is_forgotten_after_it(
    redis_client: redis.Redis,
) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    await _cached(cache, business)
    async with UnitOfWork(cache).changing(business) as changed:
        changed.customers([5, None], [_card])
        assert (await cache.lookup(business, 5)).membership == membership()
    assert (await cache.lookup(business, 5)).membership is None
    assert (await cache.lookup(business, _card)).membership is None


async def test_a_block_that_raises_forgets_nothing(redis_client: redis.Redis) -> None:
    cache, business = new_cache(redis_client), next(_businesses)
    await _cached(cache, business)
    with pytest.raises(RuntimeError):
        async with UnitOfWork(cache).changing(business) as changed:
            changed.customers([5], [_card])
            raise RuntimeError("the commit failed")
    assert (await cache.lookup(business, 5)).membership == membership()
    assert (await cache.lookup(business, _card)).membership == membership()


class _Broken:
    async def forget(self, *_: object, **__: object) -> None:
        raise ConnectionError("Redis is away")


async def test_telling_the_cache_never_raises() -> None:
    async with UnitOfWork(_Broken()).changing(1) as changed:
        changed.customers([5])
