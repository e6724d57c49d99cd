"""Push device tokens (`device_tokens`): what the customer's app registers to be reached.

A token belongs to one business and, at a time, to one customer: registering a token
that another customer of the business had moves it (a shared device changes hands).
Registering a known token again refreshes its `last_seen_at` and makes it live again.

A customer keeps at most `tokens_per_customer_max` live tokens: a registration beyond
that revokes the ones seen longest ago, in the same transaction, which holds a lock per
customer (a transaction-level advisory lock) so that concurrent registrations cannot
leave one too many. Tokens are revoked, never deleted here: the customer's app revoking
one (sign-out), the gateway calling one unregistered (`revoke_unregistered`), or the
limit. Every statement filters by business id first.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Phones, tablets and browsers a customer uses with one business's app.
device_tokens_per_customer_max = 10
token_characters_max = 4096


class Platform(enum.StrEnum):
    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


@dataclass(frozen=True, slots=True)
class DeviceToken:
    token: str
    platform: Platform
    created_at: datetime
    last_seen_at: datetime


_register = """
WITH member AS (
    SELECT customer_id FROM memberships WHERE business_id = $1 AND customer_id = $2
)
INSERT INTO device_tokens (business_id, token, customer_id, platform)
SELECT $1, $3, customer_id, $4 FROM member
ON CONFLICT (business_id, token) DO UPDATE
   SET customer_id = EXCLUDED.customer_id,
       platform = EXCLUDED.platform,
       last_seen_at = now(),
       revoked_at = NULL
RETURNING token
"""

# Live tokens past the newest `$3`, by last seen then token (a stable order).
_revoke_beyond_limit = """
UPDATE device_tokens d SET revoked_at = now()
  FROM (SELECT token FROM device_tokens
         WHERE business_id = $1 AND customer_id = $2 AND revoked_at IS NULL
         ORDER BY last_seen_at DESC, token DESC OFFSET $3) AS old
 WHERE d.business_id = $1 AND d.token = old.token
"""


class DeviceTokenStore:
    """Register, revoke and list the push tokens of a business's customers."""

    def __init__(
        self, pool: asyncpg.Pool, tokens_per_customer_max: int = device_tokens_per_customer_max
    ) -> None:
        if tokens_per_customer_max < 1:
            raise ValueError("tokens_per_customer_max must be at least 1")
        self._pool = pool
        self._tokens_per_customer_max = tokens_per_customer_max

    async def register(
        self, business_id: int, customer_id: int, token: str, platform: Platform
    ) -> bool:
        """Record `token` as the customer's live token; False when the customer is not a
        member of the business (nothing is written)."""
        if not 1 <= len(token) <= token_characters_max:
            raise ValueError(f"a device token has 1 to {token_characters_max} characters")
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"device_tokens {business_id} {customer_id}",
            )
            registered = await connection.fetchval(
                _register, business_id, customer_id, token, platform.value
            )
            if registered is None:
                return False
            await connection.execute(
                _revoke_beyond_limit, business_id, customer_id, self._tokens_per_customer_max
            )
        return True

    async def revoke(self, business_id: int, customer_id: int, token: str) -> bool:
        """Revoke one of the customer's live tokens; False when there was none such."""
        status: str = await self._pool.execute(
            "UPDATE device_tokens SET revoked_at = now()"
            " WHERE business_id = $1 AND token = $3 AND customer_id = $2"
            "   AND revoked_at IS NULL",
            business_id,
            customer_id,
            token,
        )
        return status.endswith(" 1")

    async def revoke_unregistered(self, business_id: int, tokens: Sequence[str]) -> int:
        """Revoke tokens the push gateway no longer knows, whoever holds them."""
        if not tokens:
            return 0
        status: str = await self._pool.execute(
            "UPDATE device_tokens SET revoked_at = now()"
            " WHERE business_id = $1 AND token = ANY($2::text[]) AND revoked_at IS NULL",
            business_id,
            list(tokens),
        )
        return int(status.rsplit(" ", maxsplit=1)[-1])

    async def live(self, business_id: int, customer_id: int) -> list[DeviceToken]:
        """The customer's live tokens, the most recently seen first."""
        rows = await self._pool.fetch(
            "SELECT token, platform, created_at, last_seen_at FROM device_tokens"
            " WHERE business_id = $1 AND customer_id = $2 AND revoked_at IS NULL"
            " ORDER BY last_seen_at DESC, token DESC",
            business_id,
            customer_id,
        )
        return [
            DeviceToken(
                row["token"], Platform(row["platform"]), row["created_at"], row["last_seen_at"]
            )
            for row in rows
        ]
