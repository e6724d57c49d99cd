"""The notification outbox (`outbox_messages`): claiming due messages and recording results.

Claiming is one statement: it picks due pending messages (`status = 'pending'` and
`next_attempt_at <= now()`) oldest first with `FOR UPDATE SKIP LOCKED` — so concurrent
dispatchers in any number of processes pick disjoint rows — and, in the same statement,
moves their `next_attempt_at` forward by a *lease*. The lease is what keeps a message
claimed after that short transaction commits and while it is being sent: no other
dispatcher sees it as due until the lease ends. If the claiming process dies, the
message becomes due again when its lease ends (delivery is at least once; the webhook
carries an idempotency key for that case).

The lease's end (`claimed_until`) is also the fencing token: `record` changes a message
only while it is still pending with exactly that `next_attempt_at`, so a dispatcher
whose lease ran out cannot overwrite what a later claimant did. Recording is one
statement for the whole batch (unnest); a message that leaves 'pending' loses its
`sealed_secret`. Every statement matches rows by business id together with message id.

A claimed push or smart message comes with its customer's live device tokens (most
recently seen first) and its business's name (the push title); an SMS comes with none.
A result names the channel that sent or delivered the message (`delivery_channel`; for a
smart message still pending, 'sms' once it has fallen back).

Finished messages (sent, delivered, rejected, failed) are kept for a retention period, then
`delete_finished` removes them, a bounded number at a time, oldest first.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"


class MessagePurpose(enum.StrEnum):
    PIN = "pin"
    TRANSACTION = "transaction"
    BULK = "bulk"


@dataclass(frozen=True, slots=True)
class DueMessage:
    """A claimed message, with whether its customer confirmed participation."""

    business_id: int
    message_id: int
    customer_id: int
    channel: str
    purpose: MessagePurpose
    phone: str
    language: str
    body: str
    sealed_secret: bytes | None
    attempts: int
    participation_confirmed: bool
    claimed_until: datetime
    # Push and smart messages only: the customer's live tokens and the push title.
    device_tokens: tuple[str, ...] = ()
    business_name: str = ""
    delivery_channel: str | None = None

    def __repr__(self) -> str:
        # Neither the body nor the sealed PIN belongs in a repr.
        return (
            f"DueMessage(business_id={self.business_id}, message_id={self.message_id},"
            f" purpose={self.purpose.value}, attempts={self.attempts})"
        )


@dataclass(frozen=True, slots=True)
class MessageResult:
    """The new state of one claimed message; `retry_delay_ms` counts for PENDING only."""

    business_id: int
    message_id: int
    claimed_until: datetime
    status: MessageStatus
    reason: str
    attempts: int
    retry_delay_ms: int = 0
    delivery_channel: str | None = None


_claim_due = """
WITH due AS (
    SELECT business_id, message_id
      FROM outbox_messages
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, business_id, message_id
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE outbox_messages o
       SET next_attempt_at = now() + make_interval(secs => $2::bigint / 1000.0)
      FROM due
     WHERE o.business_id = due.business_id AND o.message_id = due.message_id
    RETURNING o.business_id, o.message_id, o.customer_id, o.channel, o.purpose, o.phone,
              o.language, o.body, o.sealed_secret, o.attempts, o.next_attempt_at,
              o.delivery_channel
)
SELECT claimed.*, coalesce(m.participation_confirmed, false) AS participation_confirmed,
       CASE WHEN claimed.channel <> 'sms' THEN ARRAY(
           SELECT d.token FROM device_tokens d
            WHERE d.business_id = claimed.business_id AND d.customer_id = claimed.customer_id
              AND d.revoked_at IS NULL
            ORDER BY d.last_seen_at DESC, d.token DESC
       ) END AS device_tokens,
       CASE WHEN claimed.channel <> 'sms' THEN (
           SELECT b.name FROM businesses b WHERE b.business_id = claimed.business_id
       ) END AS business_name
  FROM claimed
  LEFT JOIN memberships m
    ON m.business_id = claimed.business_id AND m.customer_id = claimed.customer_id
 ORDER BY claimed.business_id, claimed.message_id
"""

# Results are matched by primary key (`= ANY` on both columns).
_record = """
UPDATE outbox_messages o
   SET status = r.status,
       reason = r.reason,
       attempts = r.attempts,
       next_attempt_at = now() + make_interval(secs => r.retry_delay_ms / 1000.0),
       sent_at = CASE WHEN r.status IN ('sent', 'delivered') THEN now() ELSE o.sent_at END,
       sealed_secret = CASE WHEN r.status = 'pending' THEN o.sealed_secret END,
       delivery_channel = r.delivery_channel
  FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[],
              $6::integer[], $7::bigint[], $8::text[])
       AS r(business_id, message_id, claimed_until, status, reason, attempts, retry_delay_ms,
            delivery_channel)
 WHERE o.business_id = ANY($1::bigint[]) AND o.message_id = ANY($2::bigint[])
   AND o.business_id = r.business_id AND o.message_id = r.message_id
   AND o.status = 'pending'
   -- Still this claimant's lease. `IS TRUE` keeps the comparison from being an index
   -- condition: every message of a claim shares one lease, so probing the `due` index by
   -- it returned the whole claim for each result (the square of the claim).
   AND (o.next_attempt_at = r.claimed_until) IS TRUE
"""


def _due_message(row: asyncpg.Record) -> DueMessage:
    return DueMessage(
        business_id=row["business_id"],
        message_id=row["message_id"],
        customer_id=row["customer_id"],
        channel=row["channel"],
        purpose=MessagePurpose(row["purpose"]),
        phone=row["phone"],
        language=row["language"],
        body=row["body"],
        sealed_secret=row["sealed_secret"],
        attempts=row["attempts"],
        participation_confirmed=row["participation_confirmed"],
        claimed_until=row["next_attempt_at"],
        device_tokens=tuple(row["device_tokens"] or ()),
        business_name=row["business_name"] or "",
        delivery_channel=row["delivery_channel"],
    )


class OutboxStore:
    """Claims and settles outbox messages of every business (the dispatcher's view)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_due(self, limit: int, lease_ms: int) -> list[DueMessage]:
        """Up to `limit` due messages, claimed for `lease_ms` (one round trip)."""
        if limit <= 0:
            return []
        rows = await self._pool.fetch(_claim_due, limit, lease_ms)
        return [_due_message(row) for row in rows]

    async def backlog(self) -> tuple[int, float]:
        """Messages of every business waiting to be sent, and how many seconds the most
        overdue of them has been due (0 when none is due yet); read from the index of
        pending messages."""
        row = await self._pool.fetchrow(
            "SELECT count(*) AS waiting,"
            "       greatest(coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0), 0)"
            "         AS overdue_seconds"
            "  FROM outbox_messages WHERE status = 'pending'"
        )
        assert row is not None
        return int(row["waiting"]), float(row["overdue_seconds"])

    async def delete_finished(self, retention_days: int, limit: int) -> int:
        """Delete up to `limit` finished messages created more than `retention_days` ago."""
        assert retention_days > 0 and limit > 0
        status: str = await self._pool.execute(
            "DELETE FROM outbox_messages o USING ("
            "  SELECT business_id, message_id FROM outbox_messages"
            "   WHERE status <> 'pending' AND created_at < now() - make_interval(days => $1)"
            "   ORDER BY created_at LIMIT $2"
            ") AS old"
            " WHERE o.business_id = old.business_id AND o.message_id = old.message_id",
            retention_days,
            limit,
        )
        return int(status.rsplit(" ", maxsplit=1)[-1])

    async def record(self, results: Sequence[MessageResult]) -> int:
        """Store every result in one statement; returns how many messages changed.

        Fewer than `len(results)` means some leases ran out before the results came
        back; those messages were left as a later claimant made them.
        """
        if not results:
            return 0
        status: str = await self._pool.execute(
            _record,
            [result.business_id for result in results],
            [result.message_id for result in results],
            [result.claimed_until for result in results],
            [result.status.value for result in results],
            [result.reason for result in results],
            [result.attempts for result in results],
            [result.retry_delay_ms for result in results],
            [result.delivery_channel for result in results],
        )
        return int(status.rsplit(" ", maxsplit=1)[-1])
