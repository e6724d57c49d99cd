"""Steward codes and failure counters on a real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from purse.store.redis import keys
from purse.store.redis.pins import PinStore, pin_attempts_max
from purse.store.redis.rate_limits import AttemptLimit
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


async def test_a_burst_reserves_no_more_attempts_than_the_maximum(
    redis_client: redis.Redis,
) -> None:
    limit = AttemptLimit(redis_client, attempts_max=5, window_seconds=60)
    key = keys.sign_in_attempts("burst-integration")
    await redis_client.delete(key)
    reservations = await asyncio.gather(*(limit.reserve(key) for _ in range(200)))
    assert sum(r.granted for r in reservations) == 5
    refused = [r for r in reservations if not r.granted]
    assert all(0 < r.window_left_seconds <= 60 for r in refused)
    stored = await redis_client.get(key)
    assert stored is not None
    assert int(stored) == 5
    assert 0 < await redis_client.ttl(key) <= 60


async def test_a_released_attempt_is_given_back_once_and_never_recreates_the_key(
    redis_client: redis.Redis,
) -> None:
    limit = AttemptLimit(redis_client, attempts_max=2, window_seconds=60)
    key = keys.sign_in_attempts("release-integration")
    await redis_client.delete(key)
    assert (await limit.reserve(key)).granted
    assert (await limit.reserve(key)).granted
    assert not (await limit.reserve(key)).granted
    await limit.release(key)
    assert (await limit.reserve(key)).granted
    await redis_client.delete(key)
    await limit.release(key)
    assert await redis_client.exists(key) == 0


async def test_a_counter_left_without_expiry_gets_one(redis_client: redis.Redis) -> None:
    limit = AttemptLimit(redis_client, attempts_max=1, window_seconds=60)
    key = keys.sign_in_attempts("no-expiry-integration")
    await redis_client.set(key, 7)
    assert not (await limit.reserve(key)).granted
    assert 0 < await redis_client.ttl(key) <= 60


def test_every_key_of_a_business_shares_its_hash_tag() -> None:
    assert keys.steward_code(42, "123456").startswith("{b42}:")
    assert "someone" not in keys.sign_in_attempts("someone")
    assert keys.pin_sends(42, "+380501234567").startswith("{b42}:")
    assert "380501234567" not in keys.pin_sends(42, "+380501234567")
    assert keys.steward_code_guesses(42, 7).startswith("{b42}:")


async def test_a_burst_of_wrong_pins_is_compared_no_more_than_the_maximum(
    redis_client: redis.Redis,
) -> None:
    pins = PinStore(redis_client, b"k" * 32)
    await pins.remember(9101, 1, "123456", 60)
    results = await asyncio.gather(*(pins.check(9101, 1, f"{n:06d}") for n in range(30)))
    states = [state for state, _ in results]
    assert states.count("wrong") == pin_attempts_max
    assert states.count("locked") == 30 - pin_attempts_max
    assert sorted(left for state, left in results if state == "wrong") == [0, 1, 2, 3, 4]
    # Attempts used up: even the right PIN is not compared.
    assert await pins.check(9101, 1, "123456") == ("locked", 0)
    attempts = await redis_client.hget(keys.pin(9101, 1), "attempts")
    assert attempts is not None
    assert int(attempts) == pin_attempts_max


async def test_a_missing_pin_key_is_never_recreated(redis_client: redis.Redis) -> None:
    pins = PinStore(redis_client, b"k" * 32)
    await pins.remember(9102, 1, "123456", 60)
    assert (await pins.check(9102, 1, "123456"))[0] == "ok"
    assert (await pins.check(9102, 1, "654321"))[0] == "missing"  # consumed
    await pins.forget(9102, 1)
    assert (await pins.check(9102, 1, "654321"))[0] == "missing"
    assert await redis_client.exists(keys.pin(9102, 1)) == 0


async def test_a_resent_pin_keeps_the_attempts_and_a_ttl(redis_client: redis.Redis) -> None:
    pins = PinStore(redis_client, b"k" * 32)
    await pins.remember(9103, 1, "123456", 60)
    for _ in range(pin_attempts_max - 1):
        assert (await pins.check(9103, 1, "000000"))[0] == "wrong"
    await pins.remember(9103, 1, "222222", 60)  # a resend
    assert 0 < await redis_client.ttl(keys.pin(9103, 1)) <= 60
    assert await pins.check(9103, 1, "000000") == ("wrong", 0)
    assert await pins.check(9103, 1, "222222") == ("locked", 0)
