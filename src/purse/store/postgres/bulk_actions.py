"""Bulk operations as stored: drafts with their frozen selection, their members' progress,
and the set-based changes of the actions that do not go through the ledger.

Contract:

* Every statement filters by the business, except `running` (the runner's look across
  businesses for work) — and that one returns business ids with the operation ids.
* `create_draft` writes the operation and its members (the selection's customers, each
  once) in one transaction and answers the operation's id and how many it froze.
* A member moves from 'pending' exactly once: every statement that settles members
  updates only pending ones, and counts into the operation's `done`, `failed` and
  `rejected` only the rows it moved, in the same transaction. So two runners of one
  operation (which the runner's advisory lock prevents anyway) could not count a member
  twice; a category change, an access type change or a message is written in the
  transaction that settles its member, so it is made at most once.
* A running operation with no member pending is finished 'succeeded' by `finish`; a
  cancelled one keeps its pending members pending for the record (they were not reached).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import asyncpg

from purse.domain.administrators import Actor
from purse.domain.bulk_actions import MemberState, OperationState
from purse.domain.segments import CompiledSql

if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
else:
    Connection = asyncpg.pool.PoolConnectionProxy

# The advisory lock namespace of a running operation ('bulk' as 32 bits): the session
# that holds (namespace, operation id) runs it.
runner_lock_namespace: Final = 0x62756C6B
members_read_batch_max: Final = 5_000


@dataclass(frozen=True, slots=True)
class OperationRow:
    business_id: int
    operation_id: int
    action: dict[str, Any]
    selection: dict[str, Any]
    estimate: dict[str, int]
    state: OperationState
    terminal_id: int | None
    administrator_id: int | None
    actor: str
    total: int
    done: int
    failed: int
    rejected: int
    created_at: datetime
    draft_expires_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    token_digest: bytes


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """A member as a chunk (or the dry run) needs them, read when it is reached."""

    customer_id: int
    phone: str
    language: str
    given_name: str
    access_type: str
    participation_confirmed: bool
    has_device: bool
    points_balance: int


_operation_columns = """business_id, operation_id, action, parameters, selection, estimate,
       state, terminal_id, administrator_id, actor, total, done, failed, rejected,
       created_at, draft_expires_at, started_at, finished_at, token_digest"""

_member_facts = """
SELECT m.customer_id, c.phone, m.language, m.given_name, m.access_type,
       m.participation_confirmed,
       EXISTS (SELECT 1 FROM device_tokens d
                WHERE d.business_id = $1 AND d.customer_id = m.customer_id
                  AND d.revoked_at IS NULL) AS has_device,
       coalesce(p.balance, 0) AS points_balance
  FROM bulk_operation_members b
  JOIN memberships m ON m.business_id = b.business_id AND m.customer_id = b.customer_id
  JOIN customers c ON c.customer_id = b.customer_id
  LEFT JOIN pockets p
    ON p.business_id = $1 AND p.customer_id = b.customer_id AND p.account_type_id = 0
 WHERE b.business_id = $1 AND b.operation_id = $2 AND b.customer_id > $3
"""


def _operation(record: asyncpg.Record) -> OperationRow:
    values = dict(record)  # documents arrive decoded (the pool's jsonb codec)
    values["action"] = values.pop("parameters")
    values["state"] = OperationState(values["state"])
    return OperationRow(**values)


def _facts(record: asyncpg.Record) -> MemberFacts:
    return MemberFacts(**dict(record))


@dataclass(frozen=True, slots=True)
class Draft:
    business_id: int
    actor: Actor
    action: dict[str, Any]
    selection: dict[str, Any]
    terminal_id: int | None
    token_digest: bytes
    draft_expires_at: datetime


class BulkActionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_draft(self, draft: Draft, members: CompiledSql) -> tuple[int, int]:
        """Write the draft and freeze `members` (a statement selecting `customer_id`s of
        the business whose parameters follow the business id): (operation id, total)."""
        async with self._pool.acquire() as connection, connection.transaction():
            operation_id: int = await connection.fetchval(
                "INSERT INTO bulk_operations (business_id, action, parameters, selection,"
                " estimate, state, token_digest, terminal_id, administrator_id, actor, total,"
                " draft_expires_at)"
                " VALUES ($1, $2, $3, $4, '{}', 'draft', $5, $6, $7, $8, 0, $9)"
                " RETURNING operation_id",
                draft.business_id,
                draft.action["kind"],
                draft.action,
                draft.selection,
                draft.token_digest,
                draft.terminal_id,
                draft.actor.administrator_id,
                draft.actor.name,
                draft.draft_expires_at,
            )
            number = len(members.parameters) + 1
            frozen = await connection.execute(
                "INSERT INTO bulk_operation_members (business_id, operation_id, customer_id)"
                f" SELECT DISTINCT $1::bigint, ${number}::bigint, customer_id"
                f" FROM ({members.text}) selected",
                *members.parameters,
                operation_id,
            )
            total = int(frozen.rsplit(" ", 1)[1])
            await connection.execute(
                "UPDATE bulk_operations SET total = $3"
                " WHERE business_id = $1 AND operation_id = $2",
                draft.business_id,
                operation_id,
                total,
            )
        return operation_id, total

    async def members(
        self, business_id: int, operation_id: int, pending_only: bool
    ) -> AsyncIterator[list[MemberFacts]]:
        """The operation's members with their facts, in batches, in customer order."""
        after = 0
        pending = " AND b.state = 'pending'" if pending_only else ""
        while True:
            async with self._pool.acquire() as connection:
                records = await connection.fetch(
                    f"{_member_facts}{pending} ORDER BY b.customer_id LIMIT $4",
                    business_id,
                    operation_id,
                    after,
                    members_read_batch_max,
                )
            if not records:
                return
            yield [_facts(record) for record in records]
            after = records[-1]["customer_id"]

    @asynccontextmanager
    async def locked(
        self, business_id: int, operation_id: int
    ) -> AsyncIterator[OperationSession | None]:
        """The operation's runner session, holding its advisory lock on a connection of
        its own; None when another session holds it. A pooled connection keeps no
        session state: one that cannot unlock (cancelled, broken) is closed, which
        unlocks it."""
        key = operation_id & 0x7FFFFFFF
        async with self._pool.acquire() as connection:
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", runner_lock_namespace, key
            )
            if not locked:
                yield None
                return
            try:
                yield OperationSession(connection, business_id, operation_id)
            finally:
                try:
                    await connection.execute(
                        "SELECT pg_advisory_unlock($1, $2)", runner_lock_namespace, key
                    )
                except BaseException:
                    connection.terminate()
                    raise

    async def pending_chunk(
        self, business_id: int, operation_id: int, after_customer_id: int, limit: int
    ) -> list[MemberFacts]:
        """The next `limit` pending members after that customer, in customer order, with
        their facts now. On a connection of its own: the runner reads the next chunk
        while the one before is written and settled."""
        async with self._pool.acquire() as connection:
            records = await connection.fetch(
                f"{_member_facts} AND b.state = 'pending' ORDER BY b.customer_id LIMIT $4",
                business_id,
                operation_id,
                after_customer_id,
                limit,
            )
        return [_facts(record) for record in records]

    async def set_estimate(
        self, business_id: int, operation_id: int, estimate: dict[str, int]
    ) -> OperationRow:
        async with self._pool.acquire() as connection:
            record = await connection.fetchrow(
                "UPDATE bulk_operations SET estimate = $3"
                " WHERE business_id = $1 AND operation_id = $2"
                f" RETURNING {_operation_columns}",
                business_id,
                operation_id,
                estimate,
            )
        assert record is not None, "the draft was written by the caller"
        return _operation(record)

    async def operation(self, business_id: int, operation_id: int) -> OperationRow | None:
        async with self._pool.acquire() as connection:
            record = await connection.fetchrow(
                f"SELECT {_operation_columns} FROM bulk_operations"
                " WHERE business_id = $1 AND operation_id = $2",
                business_id,
                operation_id,
            )
        return None if record is None else _operation(record)

    async def page(self, business_id: int, before_id: int, limit: int) -> list[OperationRow]:
        """The business's operations newest first, older than `before_id` (0: from the
        newest)."""
        async with self._pool.acquire() as connection:
            records = await connection.fetch(
                f"SELECT {_operation_columns} FROM bulk_operations"
                " WHERE business_id = $1 AND ($2 = 0 OR operation_id < $2)"
                " ORDER BY operation_id DESC LIMIT $3",
                business_id,
                before_id,
                limit,
            )
        return [_operation(record) for record in records]

    async def start(
        self,
        business_id: int,
        operation_id: int,
        now: datetime,
        audit: dict[str, Any],
        actor: Actor,
    ) -> OperationRow | None:
        """Draft → running, with its audit entry; None when it is no longer a live draft."""
        async with self._pool.acquire() as connection, connection.transaction():
            record = await connection.fetchrow(
                "UPDATE bulk_operations SET state = 'running', started_at = $3"
                " WHERE business_id = $1 AND operation_id = $2 AND state = 'draft'"
                "   AND draft_expires_at > $3"
                f" RETURNING {_operation_columns}",
                business_id,
                operation_id,
                now,
            )
            if record is None:
                return None
            await _record(connection, actor, "start_bulk_action", operation_id, None, audit)
        return _operation(record)

    async def cancel(
        self, business_id: int, operation_id: int, now: datetime, actor: Actor
    ) -> OperationRow | None:
        """A draft or running operation → cancelled, with its audit entry; None when it
        was not one (it is answered as it is)."""
        async with self._pool.acquire() as connection, connection.transaction():
            record = await connection.fetchrow(
                "UPDATE bulk_operations SET state = 'cancelled', finished_at = $3"
                " WHERE business_id = $1 AND operation_id = $2"
                "   AND state IN ('draft', 'running')"
                f" RETURNING {_operation_columns}",
                business_id,
                operation_id,
                now,
            )
            if record is None:
                return None
            after = {"done": record["done"], "failed": record["failed"]}
            await _record(connection, actor, "cancel_bulk_action", operation_id, None, after)
        return _operation(record)

    async def running(self) -> list[tuple[int, int]]:
        """(business id, operation id) of every running operation, oldest first."""
        async with self._pool.acquire() as connection:
            records = await connection.fetch(
                "SELECT business_id, operation_id FROM bulk_operations"
                " WHERE state = 'running' ORDER BY operation_id"
            )
        return [(record["business_id"], record["operation_id"]) for record in records]

    async def analyze_ledger_tables(self) -> None:
        """Fresh planner statistics for the tables a bulk credit grows (a sample each:
        a fraction of a second on millions of rows)."""
        async with self._pool.acquire() as connection:
            await connection.execute("ANALYZE points_lots, pockets, ledger_entries, transactions")

    async def category_live(self, business_id: int, category_id: int) -> bool:
        """Whether the business has this category, not archived."""
        async with self._pool.acquire() as connection:
            found: bool = await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM customer_categories WHERE business_id = $1"
                " AND category_id = $2 AND archived_at IS NULL)",
                business_id,
                category_id,
            )
        return found

    async def coupons_left(self, business_id: int, series_id: int) -> int | None:
        """How many more coupons the series allows; None without a cap."""
        async with self._pool.acquire() as connection:
            left: int | None = await connection.fetchval(
                "SELECT coupons_max - coupons_issued FROM coupon_series"
                " WHERE business_id = $1 AND series_id = $2",
                business_id,
                series_id,
            )
        return left

    async def expire_drafts(self, now: datetime) -> int:
        """Forget the frozen members of drafts past their expiry (the drafts stay, as
        records of dry runs); how many members were removed."""
        async with self._pool.acquire() as connection:
            status = await connection.execute(
                "DELETE FROM bulk_operation_members b USING bulk_operations o"
                " WHERE o.state = 'draft' AND o.draft_expires_at <= $1"
                "   AND b.business_id = o.business_id AND b.operation_id = o.operation_id",
                now,
            )
        return int(status.rsplit(" ", 1)[1])


@dataclass(frozen=True, slots=True)
class BulkMessageRow:
    customer_id: int
    channel: str
    phone: str
    language: str
    body: str
    # 'pending', or 'rejected' (with its reason) for a customer the message cannot reach:
    # kept as a record, at no cost.
    status: str = "pending"
    reason: str = ""


class OperationSession:
    """One running operation's statements, on the connection that holds its lock."""

    def __init__(self, connection: Connection, business_id: int, operation_id: int) -> None:
        self._connection = connection
        self._business_id = business_id
        self._operation_id = operation_id

    async def settle(self, settled: Sequence[tuple[int, MemberState, str]]) -> OperationState:
        """Move pending members to their states (customer, state, reason), counting only
        those moved; the operation's state after (cancelled meanwhile, say)."""
        state: str = await self._connection.fetchval(
            """
WITH moved AS (
    UPDATE bulk_operation_members b SET state = s.state, reason = s.reason
      FROM unnest($3::bigint[], $4::text[], $5::text[]) AS s(customer_id, state, reason)
     WHERE b.business_id = $1 AND b.operation_id = $2 AND b.customer_id = s.customer_id
       AND b.state = 'pending'
 RETURNING b.state)
UPDATE bulk_operations SET
       done = done + (SELECT count(*) FROM moved WHERE state = 'done'),
       failed = failed + (SELECT count(*) FROM moved WHERE state = 'failed'),
       rejected = rejected + (SELECT count(*) FROM moved WHERE state = 'rejected')
 WHERE business_id = $1 AND operation_id = $2
RETURNING state""",
            self._business_id,
            self._operation_id,
            [customer_id for customer_id, _, _ in settled],
            [state.value for _, state, _ in settled],
            [reason for _, _, reason in settled],
        )
        return OperationState(state)

    async def finish(self, now: datetime) -> bool:
        """Running with no member pending → succeeded, with the audit entry; whether it
        did."""
        business_id, operation_id = self._business_id, self._operation_id
        async with self._connection.transaction():
            record = await self._connection.fetchrow(
                "UPDATE bulk_operations o SET state = 'succeeded', finished_at = $3"
                " WHERE o.business_id = $1 AND o.operation_id = $2 AND o.state = 'running'"
                "   AND NOT EXISTS (SELECT 1 FROM bulk_operation_members b"
                "                    WHERE b.business_id = $1 AND b.operation_id = $2"
                "                      AND b.state = 'pending')"
                " RETURNING administrator_id, actor, done, failed, rejected",
                business_id,
                operation_id,
                now,
            )
            if record is None:
                return False
            # In the name of who started it: the runner finishes on their behalf.
            actor = Actor(business_id, record["administrator_id"], record["actor"])
            after = {key: record[key] for key in ("done", "failed", "rejected")}
            await _record(self._connection, actor, "finish_bulk_action", operation_id, None, after)
        return True

    async def change(
        self, column: str, value: object, customer_ids: Sequence[int], actor_name: str
    ) -> OperationState:
        """Set `column` ("category_id" or "access_type": the code's, never input) to
        `value` on these pending members' memberships, with one audit entry each, and
        settle them done — one transaction."""
        assert column in ("category_id", "access_type")
        async with self._connection.transaction():
            await self._connection.execute(
                f"""
WITH changed AS (
    UPDATE memberships m SET {column} = $4, profile_version = m.profile_version + 1
      FROM bulk_operation_members b
     WHERE b.business_id = $1 AND b.operation_id = $2 AND b.customer_id = ANY($3::bigint[])
       AND b.state = 'pending'
       AND m.business_id = $1 AND m.customer_id = b.customer_id
 RETURNING m.customer_id)
INSERT INTO audit_log (business_id, administrator_id, actor, action, resource, resource_id,
                       before, after)
SELECT $1, o.administrator_id, $5, 'update_customer', 'memberships', c.customer_id::text,
       NULL, jsonb_build_object('{column}', $4::text, 'bulk_operation_id', $2::bigint)
  FROM changed c
  JOIN bulk_operations o ON o.business_id = $1 AND o.operation_id = $2""",
                self._business_id,
                self._operation_id,
                list(customer_ids),
                value,
                actor_name,
            )
            return await self.settle(
                [(customer_id, MemberState.DONE, "") for customer_id in customer_ids]
            )

    async def message(
        self,
        messages: Sequence[BulkMessageRow],
        settled: Sequence[tuple[int, MemberState, str]],
    ) -> OperationState:
        """Write the messages of these pending members to the outbox and settle them — one
        transaction; a member settled before gets no second message (and the outbox's key
        on the operation and customer refuses one all the same)."""
        async with self._connection.transaction():
            await self._connection.execute(
                """
INSERT INTO outbox_messages (business_id, customer_id, channel, purpose, phone, language,
                             body, status, reason, bulk_operation_id)
SELECT $1, s.customer_id, s.channel, 'bulk', s.phone, s.language, s.body, s.status,
       s.reason, $2
  FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
              $9::text[])
       AS s(customer_id, channel, phone, language, body, status, reason)
  JOIN bulk_operation_members b
    ON b.business_id = $1 AND b.operation_id = $2 AND b.customer_id = s.customer_id
   AND b.state = 'pending'
ON CONFLICT DO NOTHING""",
                self._business_id,
                self._operation_id,
                [message.customer_id for message in messages],
                [message.channel for message in messages],
                [message.phone for message in messages],
                [message.language for message in messages],
                [message.body for message in messages],
                [message.status for message in messages],
                [message.reason for message in messages],
            )
            return await self.settle(settled)


async def _record(
    connection: Connection,
    actor: Actor,
    action: str,
    operation_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await connection.execute(
        "INSERT INTO audit_log (business_id, administrator_id, actor, action, resource,"
        " resource_id, before, after) VALUES ($1, $2, $3, $4, 'bulk_operations', $5, $6, $7)",
        actor.business_id,
        actor.administrator_id,
        actor.name,
        action,
        str(operation_id),
        before,
        after,
    )
