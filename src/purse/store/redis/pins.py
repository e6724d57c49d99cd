"""PIN codes of pending transactions: stored as an HMAC with a TTL and an attempts count.

A PIN is kept only as HMAC(key, transaction id : PIN) in a hash with the transaction's
wrong attempts. Checking is ONE Lua script, so a burst cannot outrun the count: a key
that does not exist is never recreated (no key without a TTL); once `pin_attempts_max`
wrong PINs were counted nothing is compared any more ('locked'), not even the right
PIN; otherwise the digest is compared in constant time (an XOR over every character)
and a wrong one counted. A right PIN is consumed (its digest removed, the attempts
kept). The attempts belong to the transaction, not to a PIN: a resend replaces the
digest and keeps the count and the TTL runs to the transaction's deadline. Losing
Redis loses the PINs (and their counts), not money: the transaction stays pending and
ResendCode issues a new PIN. Sending is rate-limited per phone by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from purse.store.redis import keys
from purse.store.redis.client import RedisClient

pin_digits = 6
# Wrong PINs a transaction takes before it is locked.
pin_attempts_max = 5

_check_script = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', 0} end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
local most = tonumber(ARGV[2])
if attempts >= most then return {'locked', 0} end
local stored = redis.call('HGET', KEYS[1], 'digest')
if not stored then return {'missing', 0} end
local given = ARGV[1]
local difference = 0
if #stored ~= #given then difference = 1 end
for i = 1, math.min(#stored, #given) do
  difference = bit.bor(difference, bit.bxor(string.byte(stored, i), string.byte(given, i)))
end
if difference == 0 then
  redis.call('HDEL', KEYS[1], 'digest')
  return {'ok', most - attempts}
end
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return {'wrong', most - attempts}
"""

_remember_script = """
redis.call('HSET', KEYS[1], 'digest', ARGV[1])
redis.call('HSETNX', KEYS[1], 'attempts', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def new_pin() -> str:
    return f"{secrets.randbelow(10**pin_digits):0{pin_digits}d}"


class PinStore:
    """PINs of one business's transactions."""

    def __init__(self, client: RedisClient, key: bytes) -> None:
        self._client = client
        self._key = key
        self._check = client.register_script(_check_script)
        self._remember = client.register_script(_remember_script)

    def _digest(self, transaction_id: int, pin: str) -> str:
        return hmac.new(self._key, f"{transaction_id}:{pin}".encode(), hashlib.sha256).hexdigest()

    async def remember(
        self, business_id: int, transaction_id: int, pin: str, lifetime_seconds: int
    ) -> None:
        """Store (or replace, on resend) the PIN; the wrong attempts counted so far stay."""
        await self._remember(
            keys=[keys.pin(business_id, transaction_id)],
            args=[self._digest(transaction_id, pin), max(lifetime_seconds, 1)],
        )

    async def check(self, business_id: int, transaction_id: int, pin: str) -> tuple[str, int]:
        """(state, attempts left): 'ok' (the PIN is consumed: it confirms once), 'wrong',
        'locked' (attempts used up: nothing was compared) or 'missing'."""
        state, left = await self._check(
            keys=[keys.pin(business_id, transaction_id)],
            args=[self._digest(transaction_id, pin), pin_attempts_max],
        )
        return state.decode(), max(int(left), 0)

    async def forget(self, business_id: int, transaction_id: int) -> None:
        await self._client.delete(keys.pin(business_id, transaction_id))
