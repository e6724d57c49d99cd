"""Running a database transaction again when PostgreSQL rolled it back for a conflict.

PostgreSQL breaks a deadlock (or a serialization conflict) by rolling one of the
transactions back. Every write path locks rows in one global order, so this should not
happen; when it does all the same, nothing of the rolled-back transaction remains and
running it again is safe. `retry_on_conflict` does so a bounded number of times, with a
short random pause so that the two sides do not meet again, and then refuses with
`Aborted`, which the API answers as a retryable status (ABORTED with a RetryInfo) —
never as an internal error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import asyncpg

from purse.domain.errors import Aborted

# The failures that roll a whole transaction back and leave nothing of it behind.
CONFLICT_FAILURES: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
# The longest pause before the n-th retry is n times this.
conflict_retry_pause_seconds_max = 0.05
conflict_retry_after_seconds = 1

_logger = logging.getLogger(__name__)
Result = TypeVar("Result")
Arguments = ParamSpec("Arguments")


def conflict_refusal() -> Aborted:
    """What the caller is answered when the conflicts did not stop: try again."""
    return Aborted(
        "the change met a concurrent one and was rolled back; nothing was applied, retry",
        reason="CONCURRENT_UPDATE",
        retry_after_seconds=conflict_retry_after_seconds,
    )


async def retry_on_conflict(
    transaction: Callable[[], Awaitable[Result]], attempts_max: int, what: str
) -> Result:
    """`transaction()` (one whole database transaction), run again after a conflict;
    after `attempts_max` attempts, `Aborted`."""
    for attempt in range(1, attempts_max + 1):
        try:
            return await transaction()
        except CONFLICT_FAILURES as failure:
            _logger.warning("%s: %s (attempt %d)", what, type(failure).__name__, attempt)
            if attempt == attempts_max:
                raise conflict_refusal() from failure
            await asyncio.sleep(random.uniform(0, conflict_retry_pause_seconds_max * attempt))
    raise AssertionError("attempts_max must be at least 1")


def retried_on_conflict(
    attempts_max: int,
) -> Callable[
    [Callable[Arguments, Awaitable[Result]]], Callable[Arguments, Coroutine[Any, Any, Result]]
]:
    """A method that runs one whole database transaction, run as `retry_on_conflict` does.
    The result is a coroutine function, so its calls can be given to `asyncio.create_task`."""

    def decorate(
        method: Callable[Arguments, Awaitable[Result]],
    ) -> Callable[Arguments, Coroutine[Any, Any, Result]]:
        @functools.wraps(method)
        async def retried(*args: Arguments.args, **kwargs: Arguments.kwargs) -> Result:
            return await retry_on_conflict(
                lambda: method(*args, **kwargs), attempts_max, method.__qualname__
            )

        return retried

    return decorate
