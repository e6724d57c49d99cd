"""One-time steward codes: issued by a steward terminal, redeemed once at a cash desk.

A code is a key holding "customer id : expiry (ms) : state". The key lives longer than
the code (`steward_code_memory_seconds`) so that a late or second use can be told apart
from a code that never existed: expired → STEWARD_CODE_EXPIRED, used → STEWARD_CODE_USED,
never issued → NOT_FOUND. Redemption is one Lua script: check, mark used, answer —
two cash desks racing for one code cannot both win.
"""

from __future__ import annotations

import secrets
import time

from purse.domain.identifiers import steward_code_digits
from purse.store.redis import keys
from purse.store.redis.client import RedisClient

steward_code_memory_seconds = 3_600
steward_code_issue_attempts_max = 20

_redeem_script = """
local value = redis.call('GET', KEYS[1])
if not value then return {'unknown'} end
local customer, expires, state = string.match(value, '^(%d+):(%d+):(%a+)$')
if state == 'used' then return {'used'} end
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now_ms >= tonumber(expires) then return {'expired'} end
redis.call('SET', KEYS[1], customer .. ':' .. expires .. ':used', 'KEEPTTL')
return {'ok', customer}
"""


class StewardCodes:
    """Issues and redeems steward codes of a business."""

    def __init__(self, client: RedisClient, lifetime_seconds: int) -> None:
        assert lifetime_seconds < steward_code_memory_seconds
        self._client = client
        self._lifetime_seconds = lifetime_seconds
        self._redeem = client.register_script(_redeem_script)

    async def issue(self, business_id: int, customer_id: int) -> tuple[str, float]:
        """(code, expiry as Unix seconds). Codes in memory are never handed out twice."""
        expires_at = time.time() + self._lifetime_seconds
        value = f"{customer_id}:{int(expires_at * 1000)}:fresh"
        for _ in range(steward_code_issue_attempts_max):
            code = f"{secrets.randbelow(10**steward_code_digits):0{steward_code_digits}d}"
            created = await self._client.set(
                keys.steward_code(business_id, code),
                value,
                nx=True,
                ex=steward_code_memory_seconds,
            )
            if created:
                return code, expires_at
        raise RuntimeError("no free steward code after repeated attempts")

    async def redeem(self, business_id: int, code: str) -> tuple[str, int]:
        """('ok', customer id) or (state, 0) with state in unknown / used / expired."""
        answer = await self._redeem(keys=[keys.steward_code(business_id, code)])
        state = answer[0].decode()
        return (state, int(answer[1])) if state == "ok" else (state, 0)
