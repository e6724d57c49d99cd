"""The runner of bulk operations: every running operation, a chunk at a time, to the end.

One runner per server process. It looks for running operations when woken (a start on
this process) and every `poll_seconds`; it runs one only while holding its PostgreSQL
advisory lock on a connection of its own, so a running operation has one runner at a
time across processes and hosts, and a runner that dies (SIGKILL) releases the lock with
its connection: the next look of any runner — a restarted server's first — resumes it.

A chunk is at most `chunk_customers_max` pending members in customer order, read with
their facts as they are now. Exactly once per member:

* a credit or coupon is a transaction of the operation's terminal with the check number
  `member_check_number(operation, customer)`, written through the batch writer's
  background lane (its named share of every batch, behind the tills). A member whose
  transaction was committed before a crash, but not yet settled, is submitted again and
  the writer answers with the stored transaction instead of writing it twice; its message
  went with it, in the same database transaction;
* a category or access type change, or a message without a credit, is written in the
  transaction that settles its member, and only for members still pending.

Members are then settled (done, failed with the refusal's reason, or rejected: a
blacklisted customer gets no credit; a message that cannot reach the customer is kept as
rejected, at no cost). An outage leaves the chunk pending and ends the round; the next
round tries again. A cancelled operation stops after the chunk in hand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from purse.domain.administrators import Actor
from purse.domain.bulk_actions import (
    AccessTypeChange,
    BulkAction,
    CategoryChange,
    MemberState,
    NewsNotice,
    OperationState,
    Recipient,
    action_from_document,
    member_check_number,
    member_refusal,
    member_request_digest,
    message_route,
)
from purse.domain.checks import AccessType
from purse.domain.customer_operations import (
    AccountCredit,
    CouponIssue,
    PointsCredit,
    effects_of_operation,
    operation_document,
)
from purse.domain.errors import DomainError, NotFound, Overloaded
from purse.domain.news import NewsDraft
from purse.domain.transactions import TransactionStatus
from purse.service.admin.bulk_actions import NewsReads
from purse.service.admin.bulk_texts import member_text
from purse.service.operations import AuditNote, Notice, Outcome, Sale
from purse.service.ports import BackgroundWriter, CustomerOperationReads
from purse.service.unit_of_work import UnitOfWork
from purse.store.failures import DEPENDENCY_FAILURES
from purse.store.postgres.bulk_actions import (
    BulkActionStore,
    BulkMessageRow,
    MemberFacts,
    OperationRow,
    OperationSession,
)

_logger = logging.getLogger(__name__)

Settled = list[tuple[int, MemberState, str]]
# Members whose records are built between two turns of the event loop (about 2 ms).
_members_between_yields = 50


@dataclass(frozen=True, slots=True)
class _Run:
    """What every chunk of one operation is built from."""

    row: OperationRow
    action: BulkAction
    actor: Actor
    point_of_sale_id: int
    started_at: datetime
    # A news notification's item as the runner found it published; None otherwise, or
    # when it is no longer published (its members then fail NEWS_ITEM_NOT_FOUND).
    news: NewsDraft | None = None


class BulkRunner:
    def __init__(
        self,
        store: BulkActionStore,
        writer: BackgroundWriter,
        references: CustomerOperationReads,
        changes: UnitOfWork,
        news: NewsReads | None,
        new_coupon_code: Callable[[], str],
        chunk_customers_max: int,
        poll_seconds: float,
        chunk_pause_seconds: float = 0.0,
        analyze_after_members: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._writer = writer
        self._references = references
        self._changes = changes
        self._news = news
        self._new_coupon_code = new_coupon_code
        self._chunk_customers_max = chunk_customers_max
        self._poll_seconds = poll_seconds
        self._chunk_pause_seconds = chunk_pause_seconds
        self._analyze_after_members = analyze_after_members
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        """Look for running operations now (one was just started)."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Rounds until `stopping` is set; an operation in hand stops after its chunk."""
        self._stopping = stopping
        while not stopping.is_set():
            self._wake.clear()
            try:
                await self.run_once()
            except DEPENDENCY_FAILURES as error:
                _logger.warning("bulk operations wait for the database: %s", error)
            except Exception:
                _logger.exception("a round of bulk operations failed; the next one retries")
            waits = {
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stopping.wait()),
            }
            _, pending = await asyncio.wait(
                waits, timeout=self._poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiting in pending:
                waiting.cancel()

    async def run_once(self) -> None:
        """Run every running operation this runner can lock, each to its end."""
        await self._store.expire_drafts(self._now())
        for business_id, operation_id in await self._store.running():
            if self._stopping.is_set():
                return
            await self._run_locked(business_id, operation_id)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _run_locked(self, business_id: int, operation_id: int) -> None:
        async with self._store.locked(business_id, operation_id) as session:
            if session is None:
                return  # another runner has it
            row = await self._store.operation(business_id, operation_id)
            if row is None or row.state is not OperationState.RUNNING:
                return
            run = await self._prepared(row)
            following = self._chunk_after(run, 0)
            reached = 0
            try:
                while not self._stopping.is_set():
                    chunk = await following
                    if not chunk:
                        await session.finish(self._now())
                        return
                    # The next chunk is read while this one is written and settled.
                    following = self._chunk_after(run, chunk[-1].customer_id)
                    state = await self._apply(session, run, chunk)
                    if state is not OperationState.RUNNING:
                        return
                    reached += len(chunk)
                    if reached - len(chunk) < self._analyze_after_members <= reached:
                        await self._analyzed(run)
                    if self._chunk_pause_seconds:
                        await asyncio.sleep(self._chunk_pause_seconds)
            finally:
                following.cancel()

    async def _analyzed(self, run: _Run) -> None:
        """A credit of special points fills `points_lots` far faster than autovacuum
        samples it: measured, a first large credit into a table never analysed ran at a
        third of the speed, and the tills' cached plans scanned every lot for each
        customer (statement timeouts) until the table was analysed. So once a run has
        reached `analyze_after_members` members, the tables it grows are analysed."""
        if isinstance(run.action.change, PointsCredit | AccountCredit | CouponIssue):
            await self._store.analyze_ledger_tables()

    def _chunk_after(self, run: _Run, customer_id: int) -> asyncio.Task[list[MemberFacts]]:
        return asyncio.ensure_future(
            self._store.pending_chunk(
                run.row.business_id,
                run.row.operation_id,
                customer_id,
                self._chunk_customers_max,
            )
        )

    async def _prepared(self, row: OperationRow) -> _Run:
        point_of_sale_id = 0
        if row.terminal_id is not None:
            found = await self._references.circumstances(
                row.business_id, row.terminal_id, 0, None, None
            )
            if found.terminal is not None:
                point_of_sale_id = found.terminal.point_of_sale_id
        assert row.started_at is not None, "a running operation has started"
        action = action_from_document(row.action)
        news = None
        if isinstance(action.change, NewsNotice) and self._news is not None:
            try:
                item = await self._news.published(
                    row.business_id, action.change.news_item_id, self._now()
                )
                news = item.settings
            except NotFound:
                news = None
        return _Run(
            row,
            action,
            Actor(row.business_id, row.administrator_id, row.actor),
            point_of_sale_id,
            row.started_at,
            news,
        )

    async def _apply(
        self, session: OperationSession, run: _Run, chunk: list[MemberFacts]
    ) -> OperationState | None:
        """Apply the action to one chunk; the operation's state after, or None when an
        outage left the chunk pending."""
        business_id = run.row.business_id
        change = run.action.change
        if run.action.kind.through_ledger:
            settled, interrupted = await self._through_ledger(run, chunk)
            state = await session.settle(settled)
            return None if interrupted else state
        if isinstance(change, CategoryChange | AccessTypeChange):
            column, value = (
                ("category_id", change.category_id)
                if isinstance(change, CategoryChange)
                else ("access_type", change.access_type.value)
            )
            ids = [member.customer_id for member in chunk]
            async with self._changes.changing(business_id) as changed:
                state = await session.change(column, value, ids, run.actor.name)
                changed.customers(ids)
            return state
        messages, settled = _messages(run, chunk)
        return await session.message(messages, settled)

    async def _through_ledger(self, run: _Run, chunk: list[MemberFacts]) -> tuple[Settled, bool]:
        """Each member's result, and whether some were left pending (not written)."""
        settled: Settled = []
        sales: list[Sale] = []
        members: list[MemberFacts] = []
        for number, member in enumerate(chunk, 1):
            refusal = member_refusal(run.action, AccessType(member.access_type))
            if refusal is not None:
                settled.append((member.customer_id, MemberState.REJECTED, refusal))
                continue
            sales.append(self._sale(run, member))
            members.append(member)
            if number % _members_between_yields == 0:
                # The tills' calls share this event loop: a chunk's records are built a
                # slice at a time, never holding the loop for the whole chunk.
                await asyncio.sleep(0)
        outcomes = await self._writer.submit_background(run.row.business_id, sales)
        interrupted = False
        for member, outcome in zip(members, outcomes, strict=True):
            if isinstance(outcome, (*DEPENDENCY_FAILURES, Overloaded)):
                # Not written (an outage, or the server stopping): stays pending.
                interrupted = True
                continue
            settled.append((member.customer_id, *_member_result(outcome)))
        if interrupted:
            _logger.warning("bulk operation %d paused", run.row.operation_id)
        return settled, interrupted

    def _sale(self, run: _Run, member: MemberFacts) -> Sale:
        change = run.action.change
        assert isinstance(change, PointsCredit | AccountCredit | CouponIssue), "a ledger action"
        operation: PointsCredit | AccountCredit | CouponIssue = change
        if isinstance(change, PointsCredit) and change.valid_days:
            # From the operation's start: every member's lot expires at the same moment,
            # whenever (and however many times) the runner reaches them.
            expires_at = run.started_at + timedelta(days=change.valid_days)
            operation = PointsCredit(change.points_hundredths, expires_at)
        if isinstance(change, CouponIssue):
            operation = CouponIssue(change.series_id, self._new_coupon_code())
        operation_id, customer_id = run.row.operation_id, member.customer_id
        check_number = member_check_number(operation_id, customer_id)
        document = operation_document(operation)
        assert run.row.terminal_id is not None
        return Sale(
            terminal_id=run.row.terminal_id,
            point_of_sale_id=run.point_of_sale_id,
            check_number=check_number,
            request_digest=member_request_digest(operation_id, customer_id),
            customer_id=customer_id,
            status=TransactionStatus.COMPLETED,
            receipt=None,
            sum_minor_units=0,
            effects=effects_of_operation(operation, customer_id),
            operation=document,
            audit=AuditNote(
                run.actor,
                change.kind.value,
                change.kind.resource,
                str(customer_id),
                {
                    "operation": document,
                    "terminal_id": run.row.terminal_id,
                    "check_number": check_number,
                    "bulk_operation_id": operation_id,
                },
            ),
            notice=_notice(run, member, operation),
            refusals_final=True,
        )


def _notice(
    run: _Run, member: MemberFacts, operation: PointsCredit | AccountCredit | CouponIssue
) -> Notice | None:
    message = run.action.message
    if message is None:
        return None
    code = operation.code if isinstance(operation, CouponIssue) else None
    points_credit = isinstance(operation, PointsCredit)

    def text(balance_after: int) -> str:
        # Only a points credit changes the points balance the text names.
        return member_text(run.action, member, code, balance_after if points_credit else None)

    return Notice(
        member.customer_id,
        message.channel.value,
        member.phone,
        member.language,
        0,
        0,
        purpose="bulk",
        text=text,
    )


def _member_result(outcome: Outcome | BaseException) -> tuple[MemberState, str]:
    if isinstance(outcome, DomainError):
        return MemberState.FAILED, outcome.reason
    if isinstance(outcome, BaseException):
        _logger.error("a bulk member failed", exc_info=outcome)
        return MemberState.FAILED, "INTERNAL"
    if outcome.existing:
        stored = outcome.stored
        if stored is None:
            return MemberState.FAILED, "CONCURRENT_UPDATE"
        if stored["status"] == TransactionStatus.REJECTED.value:
            return MemberState.FAILED, str((stored.get("refusal") or {}).get("reason", ""))
        return MemberState.DONE, ""
    if outcome.refusal is not None:
        return MemberState.FAILED, str(getattr(outcome.refusal, "value", outcome.refusal))
    return MemberState.DONE, ""


def _messages(run: _Run, chunk: list[MemberFacts]) -> tuple[list[BulkMessageRow], Settled]:
    message = run.action.sent
    assert message is not None, "an action without the ledger or a change sends a message"
    rows: list[BulkMessageRow] = []
    settled: Settled = []
    if isinstance(run.action.change, NewsNotice) and run.news is None:
        reason = "NEWS_ITEM_NOT_FOUND"
        return [], [(member.customer_id, MemberState.FAILED, reason) for member in chunk]
    for member in chunk:
        recipient = Recipient(
            member.customer_id,
            AccessType(member.access_type),
            member.participation_confirmed,
            member.has_device,
        )
        route = message_route(message.channel, recipient)
        text = member_text(run.action, member, None, member.points_balance, run.news)
        row = BulkMessageRow(
            member.customer_id, message.channel.value, member.phone, member.language, text
        )
        if route is None:
            reason = (
                "PARTICIPATION_NOT_CONFIRMED" if not member.participation_confirmed else "NO_DEVICE"
            )
            rows.append(replace(row, status="rejected", reason=reason))
            settled.append((member.customer_id, MemberState.REJECTED, reason))
        else:
            rows.append(row)
            settled.append((member.customer_id, MemberState.DONE, ""))
    return rows, settled
