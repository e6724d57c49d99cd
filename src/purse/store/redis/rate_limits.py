"""Attempts reserved in a fixed window: sign-in passwords, steward code guesses, PIN sends.

Count before you compare. `reserve` takes one attempt in one Lua script *before* the
secret or expensive check it guards: when `attempts_max` attempts are taken already in
the window it refuses and says how long until the window ends; otherwise it counts the
attempt and lets the caller proceed. Concurrent callers are ordered by Redis, so a burst
never gets more than `attempts_max` through. A caller whose attempt turned out not to be
a failure (the right password, a steward code that was redeemed) gives it back with
`release`, which never goes below zero and never recreates a key that expired.

The window opens with the first attempt (the key's expiry) and is never extended by
later ones; a counter found without an expiry gets one, so no key lives for ever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from purse.domain.errors import RateLimited
from purse.store.redis.client import RedisClient

_reserve_script = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = 0
if used < tonumber(ARGV[1]) then
  used = redis.call('INCR', KEYS[1])
  granted = 1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2]) * 1000
end
return {granted, used, ttl}
"""

_release_script = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Whether an attempt was granted, how many the window holds now, when it ends."""

    granted: bool
    used: int
    window_left_seconds: int


class AttemptLimit:
    """At most `attempts_max` attempts per key within `window_seconds` (see the module)."""

    def __init__(self, client: RedisClient, attempts_max: int, window_seconds: int) -> None:
        assert attempts_max > 0 and window_seconds > 0
        self._client = client
        self.attempts_max = attempts_max
        self.window_seconds = window_seconds
        self._reserve = client.register_script(_reserve_script)
        self._release = client.register_script(_release_script)

    async def reserve(self, key: str) -> Reservation:
        granted, used, ttl_ms = await self._reserve(
            keys=[key], args=[self.attempts_max, self.window_seconds]
        )
        return Reservation(bool(granted), int(used), max(math.ceil(int(ttl_ms) / 1000), 1))

    async def take(self, key: str, message: str, reason: str) -> Reservation:
        """`reserve`, refusing with RateLimited (retry when the window ends) when no
        attempt is left."""
        reservation = await self.reserve(key)
        if not reservation.granted:
            raise RateLimited(
                message, reason=reason, retry_after_seconds=reservation.window_left_seconds
            )
        return reservation

    async def release(self, key: str) -> None:
        """Give back one attempt (never below zero; a key that expired stays gone)."""
        await self._release(keys=[key])

    def exhausted_by(self, reservation: Reservation) -> bool:
        """True when the window holds no further attempt after `reservation`."""
        return reservation.used >= self.attempts_max
