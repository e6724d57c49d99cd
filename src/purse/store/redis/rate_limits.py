"""Counting failures in a fixed window (sign-in attempts per login)."""

from __future__ import annotations

import redis.asyncio as redis


class FailureCounter:
    """`blocked()` says whether `failures_max` failures happened within the window."""

    def __init__(self, client: redis.Redis, failures_max: int, window_seconds: int) -> None:
        self._client = client
        self._failures_max = failures_max
        self._window_seconds = window_seconds

    async def retry_after_seconds(self, key: str) -> int:
        """0 if attempts are allowed, else how long until the window ends."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = await pipe.execute()
        if count is None or int(count) < self._failures_max:
            return 0
        return max(int(ttl), 1)

    async def record_failure(self, key: str) -> None:
        # SET NX EX opens the window once; INCR keeps its expiry (works on Redis 6 too).
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=self._window_seconds, nx=True)
            pipe.incr(key)
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self._client.delete(key)
