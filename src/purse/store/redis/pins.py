"""PIN codes of pending transactions: stored as an HMAC with a TTL and an attempts count.

A PIN is kept only as HMAC(key, transaction id : PIN); comparing happens in Python in
constant time. Wrong attempts are counted atomically; the caller locks the transaction
once they reach the maximum. Losing Redis loses the PINs, not money: the transaction
stays pending and ResendCode issues a new PIN. Sending is rate-limited per phone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import redis.asyncio as redis

from purse.store.redis import keys

pin_digits = 6
pin_attempts_max = 5

_record_failure = """
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return attempts
"""


def new_pin() -> str:
    return f"{secrets.randbelow(10**pin_digits):0{pin_digits}d}"


class PinStore:
    """PINs of one business's transactions."""

    def __init__(self, client: redis.Redis, key: bytes) -> None:
        self._client = client
        self._key = key
        self._record_failure = client.register_script(_record_failure)

    def _digest(self, transaction_id: int, pin: str) -> str:
        return hmac.new(self._key, f"{transaction_id}:{pin}".encode(), hashlib.sha256).hexdigest()

    async def remember(
        self, business_id: int, transaction_id: int, pin: str, lifetime_seconds: int
    ) -> None:
        """Store (or replace, on resend) the PIN; attempts start again."""
        key = keys.pin(business_id, transaction_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"digest": self._digest(transaction_id, pin), "attempts": 0})
            pipe.expire(key, max(lifetime_seconds, 1))
            await pipe.execute()

    async def check(self, business_id: int, transaction_id: int, pin: str) -> tuple[str, int]:
        """('ok', attempts left), ('wrong', attempts left) or ('missing', 0).

        A right PIN is consumed: it confirms once.
        """
        key = keys.pin(business_id, transaction_id)
        stored = await self._client.hget(key, "digest")
        if stored is None:
            return "missing", 0
        text = stored.decode() if isinstance(stored, bytes) else stored
        if hmac.compare_digest(text, self._digest(transaction_id, pin)):
            deleted = await self._client.delete(key)
            return ("ok", pin_attempts_max) if deleted else ("missing", 0)
        attempts = int(await self._record_failure(keys=[key]))
        return "wrong", max(pin_attempts_max - attempts, 0)

    async def forget(self, business_id: int, transaction_id: int) -> None:
        await self._client.delete(keys.pin(business_id, transaction_id))
