"""Steward codes and failure counters on a real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from purse.store.redis import keys
from purse.store.redis.rate_limits import FailureCounter
from purse.store.redis.steward_codes import StewardCodes


async def test_a_steward_code_is_redeemed_once_then_reported_used(
    redis_client: redis.Redis,
) -> None:
    codes = StewardCodes(redis_client, lifetime_seconds=60)
    code, _ = await codes.issue(business_id=9001, customer_id=77)
    assert len(code) == 6 and code.isdigit()
    assert await codes.redeem(9001, code) == ("ok", 77)
    assert await codes.redeem(9001, code) == ("used", 0)


async def test_a_steward_code_belongs_to_the_business_that_issued_it(
    redis_client: redis.Redis,
) -> None:
    codes = StewardCodes(redis_client, lifetime_seconds=60)
    code, _ = await codes.issue(business_id=9002, customer_id=5)
    assert await codes.redeem(9003, code) == ("unknown", 0)
    assert await codes.redeem(9002, code) == ("ok", 5)


async def test_an_expired_steward_code_is_told_apart_from_an_unknown_one(
    redis_client: redis.Redis,
) -> None:
    codes = StewardCodes(redis_client, lifetime_seconds=1)
    code, _ = await codes.issue(business_id=9004, customer_id=5)
    await asyncio.sleep(1.05)
    assert await codes.redeem(9004, code) == ("expired", 0)


async def test_cash_desks_racing_for_one_steward_code_let_exactly_one_win(
    redis_client: redis.Redis,
) -> None:
    codes = StewardCodes(redis_client, lifetime_seconds=60)
    code, _ = await codes.issue(business_id=9005, customer_id=8)
    results = await asyncio.gather(*(codes.redeem(9005, code) for _ in range(25)))
    assert results.count(("ok", 8)) == 1
    assert results.count(("used", 0)) == 24


async def test_failures_block_after_the_maximum_until_cleared(redis_client: redis.Redis) -> None:
    counter = FailureCounter(redis_client, failures_max=3, window_seconds=60)
    key = keys.sign_in_failures("someone-integration")
    await counter.clear(key)
    for _ in range(2):
        await counter.record_failure(key)
    assert await counter.retry_after_seconds(key) == 0
    await counter.record_failure(key)
    assert 0 < await counter.retry_after_seconds(key) <= 60
    await counter.clear(key)
    assert await counter.retry_after_seconds(key) == 0


def test_every_key_of_a_business_shares_its_hash_tag() -> None:
    assert keys.steward_code(42, "123456").startswith("{b42}:")
    assert "someone" not in keys.sign_in_failures("someone")
