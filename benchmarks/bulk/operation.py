"""One bulk credit through AdminService: dry-run, started, watched to its end, and its
durability checked in the database.

Contract:

* `credit_request(terminal_id, customer_ids)`: the dry run's request for the benchmark's
  action, 50 special points valid 14 days (no message), to the customers whose ids are in
  `customer_ids` (a range) — a filter of two conditions on the customer id, so that it
  selects exactly the memberships built by COPY, whatever else the business holds.
* `BulkClient` talks to AdminService as the business's owner on a blocking channel (safe
  to share between threads): `back_office_terminal()` makes the online terminal the
  credits go through, `dry_run` returns a `Draft` (operation, token, customers counted,
  the call's seconds), `start_watched` sends StartBulkAction and returns its `Watcher`.
* `Watcher` is a thread that calls GetOperation every `poll_interval_seconds` until the
  operation is no longer running (then calls its `on_end`), or `operation_seconds_max`
  passed; it keeps (seconds since the start call was sent, done) samples, prints
  progress once a second, and says
  how many were done by a moment (`done_by`, the last sample at or before it: a lower
  bound) and when it saw the end (`finished_seconds`).
* `durability(database_url, business_id, operation_id)`: the operation's row as stored
  (state, counts, started_at and finished_at) and, for its members, their transactions
  (check number `~bulk:<operation>:<customer>`) and the ledger entries those wrote: how
  many members have exactly one transaction with exactly one entry (an adjustment of the
  amount credited, with an expiry).
* `statement_costs(...)`: with pg_stat_statements in the database, its counts reset
  before a phase and the costliest statements read after it; none without it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import grpc

from benchmarks.load.run import log, metrics_timeout_seconds, raise_if_interrupted
from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import bulk_actions_pb2 as bulk
from purse.admin.v1 import customers_pb2 as lists
from purse.admin.v1 import setup_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import terminal_service_pb2 as terminal_pb

# The credit: 50 special points valid 14 days.
points_credited_hundredths = 50_00
points_valid_days = 14
poll_interval_seconds = 0.1
progress_interval_seconds = 1.0
operation_seconds_max = 900.0
# A dry run freezes the whole selection in one transaction: 100,000 rows take seconds.
dry_run_seconds_max = 300.0
call_seconds_max = 30.0
statements_shown_max = 12
statement_text_characters_max = 110


def credit_request(terminal_id: int, customer_ids: range) -> admin.DryRunBulkActionRequest:
    """The dry run of the credit to the customers with these ids."""
    integer_column = lists.CUSTOMER_COLUMN_CUSTOMER_ID

    def condition(operator: lists.FilterOperator.ValueType, value: int) -> lists.Filter:
        return lists.Filter(
            condition=lists.Condition(
                column=integer_column, operator=operator, value=lists.FilterValue(integer=value)
            )
        )

    selection = lists.Filter(
        all=[
            condition(lists.FILTER_OPERATOR_MORE_THAN, customer_ids.start - 1),
            condition(lists.FILTER_OPERATOR_LESS_THAN, customer_ids.stop),
        ]
    )
    return admin.DryRunBulkActionRequest(
        action=bulk.BulkAction(
            credit_points=lists.PointsCreditOperation(
                points_hundredths=points_credited_hundredths, valid_days=points_valid_days
            )
        ),
        selection=bulk.BulkSelection(filter=selection),
        terminal_id=terminal_id,
    )


@dataclass(frozen=True)
class Draft:
    operation_id: int
    token: str
    customers: int  # the dry run's count
    seconds: float  # the DryRunBulkAction call, client side


class BulkClient:
    """AdminService as the business's owner, over a blocking channel."""

    def __init__(self, address: str, administrator_api_key: str) -> None:
        self._channel = grpc.insecure_channel(address)
        self._stub: Any = AdminServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {administrator_api_key}"),)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: Any, seconds: float = call_seconds_max) -> Any:
        return getattr(self._stub, method)(request, metadata=self._metadata, timeout=seconds)

    def back_office_terminal(self) -> int:
        """A new online terminal at the business's first point of sale, the one bulk
        credits go through (they stay out of the cash desk's transaction log)."""
        shops = self._call("ListPointsOfSale", setup_pb2.ListPointsOfSaleRequest())
        shop = shops.points_of_sale[0]
        created = self._call(
            "CreateTerminal",
            setup_pb2.CreateTerminalRequest(
                terminal=setup_pb2.Terminal(
                    point_of_sale_id=shop.point_of_sale_id,
                    name="Back office",
                    kind=terminal_pb.TERMINAL_KIND_ONLINE,
                    login=f"back-office-{secrets.token_hex(4)}",
                ),
                password=secrets.token_urlsafe(16),
            ),
        )
        return int(created.terminal.terminal_id)

    def dry_run(self, request: admin.DryRunBulkActionRequest) -> Draft:
        started = time.perf_counter()
        answer = self._call("DryRunBulkAction", request, dry_run_seconds_max)
        seconds = time.perf_counter() - started
        operation = answer.operation
        return Draft(operation.operation_id, answer.token, operation.estimate.customers, seconds)

    def start_watched(
        self, draft: Draft, label: str, on_end: Callable[[], None] | None = None
    ) -> Watcher:
        """Start the draft; a `Watcher` of it, already watching, that calls `on_end` once
        it sees the operation ended."""
        request = admin.StartBulkActionRequest(operation_id=draft.operation_id, token=draft.token)
        started = time.monotonic()
        self._call("StartBulkAction", request)
        watcher = Watcher(self, draft, label, started, on_end)
        watcher.start()
        return watcher

    def operation(self, operation_id: int) -> bulk.Operation:
        answer = self._call("GetOperation", admin.GetOperationRequest(operation_id=operation_id))
        found: bulk.Operation = answer.operation
        return found


class Watcher(threading.Thread):
    """GetOperation every `poll_interval_seconds` until the operation is no longer running."""

    def __init__(
        self,
        client: BulkClient,
        draft: Draft,
        label: str,
        started: float,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        """`started`: when StartBulkAction was sent (time.monotonic); the thread is
        started once it answered, so that it never sees the draft."""
        super().__init__(name="bulk-watcher", daemon=True)
        self._client = client
        self._draft = draft
        self._label = label
        self._on_end = on_end
        self.started = started
        self.samples: list[tuple[float, int]] = [(0.0, 0)]
        self.final: bulk.Operation | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self._watch()
        except BaseException as error:  # handed to whoever waits for the watcher
            self.failure = error

    def _watch(self) -> None:
        deadline = self.started + operation_seconds_max
        next_progress = self.started + progress_interval_seconds
        while time.monotonic() < deadline:
            operation = self._client.operation(self._draft.operation_id)
            now = time.monotonic()
            self.samples.append((now - self.started, operation.done))
            if operation.state != bulk.OPERATION_STATE_RUNNING:
                self.final = operation
                if self._on_end is not None:
                    self._on_end()
                return
            if now >= next_progress:
                next_progress += progress_interval_seconds
                self._progress(now - self.started)
            time.sleep(poll_interval_seconds)

    def _progress(self, seconds: float) -> None:
        recent = [sample for sample in self.samples if sample[0] >= seconds - 1.0]
        rate = (recent[-1][1] - recent[0][1]) / max(recent[-1][0] - recent[0][0], 1e-9)
        done = self.samples[-1][1]
        log(
            f"  [{seconds:5.1f}s] {self._label:<30} {rate:>10,.0f} customers/s"
            f"  done {done:,} of {self._draft.customers:,}"
        )

    def wait(self) -> bulk.Operation:
        """The operation as last seen once it ended; raises when it did not end in time."""
        while self.is_alive():
            self.join(progress_interval_seconds)
            raise_if_interrupted()
        if self.failure is not None:
            raise RuntimeError(f"watching the operation failed: {self.failure!r}")
        if self.final is None:
            raise RuntimeError(
                f"operation {self._draft.operation_id} still ran after {operation_seconds_max} s"
            )
        return self.final

    def done_by(self, moment: float) -> int:
        """Members done by `moment` (time.monotonic) as last seen at or before it."""
        seconds = moment - self.started
        return max(done for at, done in self.samples if at <= seconds)

    def finished_seconds(self) -> float | None:
        """Seconds from its start until it saw the operation ended."""
        return self.samples[-1][0] if self.final is not None else None


@dataclass(frozen=True)
class Durability:
    """One operation as stored, and its members' transactions and ledger entries."""

    state: str
    total: int
    done: int
    failed: int
    rejected: int
    started_at: datetime | None
    finished_at: datetime | None
    members: int
    # Members with exactly one transaction of theirs for the operation, and exactly one
    # ledger entry of that transaction: the amount credited, with an expiry.
    credited_once: int
    transactions: int
    ledger_entries: int

    @property
    def seconds(self) -> float | None:
        """From started_at to finished_at, as the database recorded them."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def holds(self) -> bool:
        return (
            self.state == "succeeded"
            and self.done == self.total == self.members == self.credited_once
            and self.transactions == self.ledger_entries == self.total
            and self.failed == self.rejected == 0
        )


_operation_sql = """
SELECT state, total, done, failed, rejected, started_at, finished_at
  FROM bulk_operations WHERE business_id = $1 AND operation_id = $2
"""
# Per member of the operation: its transactions with the operation's check number, and
# the ledger entries of those; a member credited once has one of each, as credited.
_members_sql = """
WITH credits AS (
    SELECT t.customer_id, count(DISTINCT t.transaction_id) AS transactions,
           count(l.entry_id) AS entries,
           bool_and(l.kind = 'adjust' AND l.amount = $4 AND l.expires_at IS NOT NULL)
               AS as_credited
      FROM transactions t
      LEFT JOIN ledger_entries l
        ON l.business_id = t.business_id AND l.transaction_id = t.transaction_id
     WHERE t.business_id = $1 AND t.check_number LIKE $3
     GROUP BY t.customer_id)
SELECT count(*) AS members,
       count(*) FILTER (WHERE c.transactions = 1 AND c.entries = 1 AND c.as_credited)
           AS credited_once,
       (SELECT coalesce(sum(transactions), 0) FROM credits) AS transactions,
       (SELECT coalesce(sum(entries), 0) FROM credits) AS ledger_entries
  FROM bulk_operation_members m
  LEFT JOIN credits c ON c.customer_id = m.customer_id
 WHERE m.business_id = $1 AND m.operation_id = $2
"""


async def durability(database_url: str, business_id: int, operation_id: int) -> Durability:
    from purse.domain.bulk_actions import member_check_number_prefix

    connection = await asyncpg.connect(database_url, timeout=metrics_timeout_seconds)
    try:
        # Hash joins whatever the statistics say: right after a credit, before autovacuum
        # has counted its 100,000 new rows, the planner nested its loops over them and
        # one check took minutes.
        await connection.execute("SET enable_nestloop = off")
        operation = await connection.fetchrow(_operation_sql, business_id, operation_id)
        members = await connection.fetchrow(
            _members_sql,
            business_id,
            operation_id,
            f"{member_check_number_prefix}{operation_id}:%",
            points_credited_hundredths,
        )
    finally:
        await connection.close()
    if operation is None or members is None:
        raise RuntimeError(f"operation {operation_id} of business {business_id} is not stored")
    return Durability(
        state=operation["state"],
        total=operation["total"],
        done=operation["done"],
        failed=operation["failed"],
        rejected=operation["rejected"],
        started_at=operation["started_at"],
        finished_at=operation["finished_at"],
        members=int(members["members"]),
        credited_once=int(members["credited_once"]),
        transactions=int(members["transactions"]),
        ledger_entries=int(members["ledger_entries"]),
    )


@dataclass(frozen=True)
class StatementCost:
    text: str
    calls: int
    total_ms: float
    rows: int
    wal_bytes: int


@dataclass
class StatementCosts:
    """What PostgreSQL's statements cost during a phase (pg_stat_statements)."""

    statements: list[StatementCost] = field(default_factory=list)
    total_ms: float = 0.0
    wal_bytes: int = 0


_statements_sql = """
SELECT query, calls, total_exec_time, rows, wal_bytes FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY total_exec_time DESC
"""


async def _statements_available(connection: asyncpg.Connection) -> bool:
    found = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')"
    return bool(await connection.fetchval(found))


async def reset_statement_costs(database_url: str) -> bool:
    """Zero pg_stat_statements' counts; False when the database does not keep them."""
    connection = await asyncpg.connect(database_url, timeout=metrics_timeout_seconds)
    try:
        if not await _statements_available(connection):
            return False
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await connection.execute("SELECT pg_stat_statements_reset()")
            return True
        return False
    finally:
        await connection.close()


async def statement_costs(database_url: str) -> StatementCosts:
    """The costliest statements since the reset, their text on one line."""
    connection = await asyncpg.connect(database_url, timeout=metrics_timeout_seconds)
    try:
        records = await connection.fetch(_statements_sql)
    finally:
        await connection.close()
    costs = StatementCosts(
        total_ms=sum(float(record["total_exec_time"]) for record in records),
        wal_bytes=sum(int(record["wal_bytes"]) for record in records),
    )
    for record in records[:statements_shown_max]:
        text = " ".join(str(record["query"]).split())
        if len(text) > statement_text_characters_max:
            text = text[: statement_text_characters_max - 1] + "…"
        costs.statements.append(
            StatementCost(
                text,
                int(record["calls"]),
                float(record["total_exec_time"]),
                int(record["rows"]),
                int(record["wal_bytes"]),
            )
        )
    return costs
