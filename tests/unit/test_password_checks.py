"""Password checks: bounded, the excess refused at once, unknown logins cost no hash."""

from __future__ import annotations

import asyncio
import time

import pytest

from purse.domain import credentials
from purse.domain.errors import RateLimited
from purse.service.authentication import PasswordChecks

known_hash = credentials.hash_password("right")


async def test_checks_beyond_the_maximum_are_refused_at_once_unknown_logins_too() -> None:
    checks = PasswordChecks(concurrent_max=2)
    results = await asyncio.gather(
        checks.verify("right", known_hash),
        checks.verify("wrong", known_hash),
        checks.verify("right", known_hash),
        checks.verify("anything", None),
        return_exceptions=True,
    )
    assert list(results[:2]) == [True, False]
    for refused in results[2:]:
        assert isinstance(refused, RateLimited)
        assert refused.reason == "SIGN_IN_BUSY" and refused.retry_after_seconds > 0
    assert await checks.verify("right", known_hash)  # the slots came back


async def test_unknown_logins_take_no_slot_and_answer_like_a_wrong_password() -> None:
    checks = PasswordChecks(concurrent_max=1)
    started = time.perf_counter()
    unknown = await asyncio.gather(*(checks.verify("guess", None) for _ in range(200)))
    assert unknown == [False] * 200
    # Waited about one check's time, together: no hash was computed for any of them.
    assert time.perf_counter() - started < 5.0
    assert await checks.verify("right", known_hash)


@pytest.mark.parametrize("concurrent_max", [0, -1])
def test_the_bound_is_positive(concurrent_max: int) -> None:
    with pytest.raises(AssertionError):
        PasswordChecks(concurrent_max)
