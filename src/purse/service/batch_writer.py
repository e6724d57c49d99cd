"""Group commit: operations from all concurrent calls, written a batch at a time.

Callers hand an operation over and await its own outcome; the outcome arrives only after
the batch that carried it has committed. Batching adapts to load (`coalescing.Coalescer`)
instead of waiting a fixed time: no added latency when idle, larger batches while
`concurrent_batches_max` flushes are in flight. Once a batch has committed, the balance
cache forgets its customers (`UnitOfWork.committed`, the post-commit step every write
path shares), then the callers get their outcomes. The queue is bounded; a caller who
cannot enqueue before its deadline is refused with Overloaded (RESOURCE_EXHAUSTED).
`close()` stops taking new operations and writes every one already accepted.

Operations handed over together (`submit_many`: a stream message's checks) share one
future: resolving a future wakes its awaiting task through the event loop, which cost
about as much per check as the check's own settlement. Each operation is still queued,
batched and answered on its own.

Background work (`submit_background`: a bulk action's chunk) queues on a lane of its own
and takes at most `background_operations_max` places of a batch, after the calls waiting
on the first lane: tills keep their batches, and their latency, while a bulk action runs.

Within a batch, operations of one business go in one database transaction; two sales
with the same idempotency key share the first one's outcome. A batch that fails on a
deadlock is retried; one that fails for any other reason but an outage is split in
halves, written in order, so that a bad operation fails alone and never its neighbours.

Traced (when given a tracer, `purse.tracing`): each batch written is a span of its own,
since it serves many calls' traces: linked to the span that handed each group of its
operations over, which in turn is linked to the batch once it is settled. The statements
of the batch are its children. Without a tracer, no span context is even looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Histogram

from purse.domain.errors import Overloaded
from purse.service.coalescing import Coalescer
from purse.service.operations import Outcome, Sale, Transition
from purse.service.ports import BatchApply
from purse.service.unit_of_work import UnitOfWork
from purse.store.failures import DEPENDENCY_FAILURES
from purse.store.postgres.conflicts import CONFLICT_FAILURES
from purse.tracing import current_span_context, linked_span

_logger = logging.getLogger(__name__)
batch_retries_on_deadlock_max = 3


class _Group:
    """The outcomes of operations handed over together, and the one future that delivers
    them once every operation's batch has committed (or failed)."""

    __slots__ = ("batches", "future", "left", "origin", "results")

    def __init__(self, size: int, origin: trace.SpanContext | None = None) -> None:
        self.results: list[Outcome | BaseException | None] = [None] * size
        self.left = size
        self.future: asyncio.Future[list[Outcome | BaseException | None]] = (
            asyncio.get_running_loop().create_future()
        )
        # Traced only: the span that handed the operations over, and the batches'.
        self.origin = origin
        self.batches: list[trace.SpanContext] = []

    def settle(self, index: int, result: Outcome | BaseException) -> None:
        if self.results[index] is not None:
            return
        self.results[index] = result
        self.left -= 1
        if not self.left and not self.future.done():
            self.future.set_result(self.results)


@dataclass(slots=True)
class _Pending:
    business_id: int
    operation: Sale | Transition
    group: _Group
    index: int

    def result(self) -> Outcome | BaseException | None:
        return self.group.results[self.index]

    def settle(self, result: Outcome | BaseException) -> None:
        self.group.settle(self.index, result)


class BatchWriter:
    """Collects operations and writes them through a `BatchApply` (the BatchStore)."""

    def __init__(
        self,
        store: BatchApply,
        batch_operations_max: int,
        queue_operations_max: int,
        concurrent_batches_max: int,
        registry: CollectorRegistry | None = None,
        changes: UnitOfWork | None = None,
        background_operations_max: int = 0,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._store = store
        self._tracer = tracer
        self._changes = changes or UnitOfWork()
        self._coalescer: Coalescer[_Pending] = Coalescer(
            self._flush,
            batch_operations_max,
            queue_operations_max,
            concurrent_batches_max,
            background_operations_max,
            # Room for two batches' share: one being written, the next one waiting.
            queue_background_items_max=max(1, 2 * background_operations_max),
        )
        self._sizes = Histogram(
            "purse_batch_operations",
            "Operations written per database transaction by the batch writer",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self._seconds = Histogram(
            "purse_batch_write_seconds",
            "Time to write one batch, from BEGIN to COMMIT",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=registry,
        )

    def start(self) -> None:
        self._coalescer.start()

    def queued(self) -> tuple[int, int]:
        """Operations waiting for a batch: the calls', and the background lane's."""
        return self._coalescer.queued()

    async def close(self) -> None:
        """Take nothing new; write everything accepted; return when it is committed."""
        await self._coalescer.close()

    async def submit(
        self, business_id: int, operation: Sale | Transition, timeout_seconds: float | None
    ) -> Outcome:
        """The operation's outcome once its batch has committed."""
        (result,) = await self.submit_many(business_id, [operation], timeout_seconds)
        if isinstance(result, BaseException):
            raise result
        return result

    async def submit_many(
        self,
        business_id: int,
        operations: Sequence[Sale | Transition],
        timeout_seconds: float | None,
    ) -> list[Outcome | BaseException]:
        """Each operation's outcome, or the failure of the batch that carried it, once all
        of them are settled. They are queued in order, so they are written in order."""
        return await self._submit(business_id, operations, timeout_seconds, background=False)

    async def submit_background(
        self, business_id: int, operations: Sequence[Sale | Transition]
    ) -> list[Outcome | BaseException]:
        """As `submit_many`, on the background lane, waiting for room as long as it takes."""
        return await self._submit(business_id, operations, None, background=True)

    async def _submit(
        self,
        business_id: int,
        operations: Sequence[Sale | Transition],
        timeout_seconds: float | None,
        background: bool,
    ) -> list[Outcome | BaseException]:
        traced = self._tracer is not None
        group = _Group(len(operations), current_span_context() if traced else None)
        put = self._coalescer.put_background if background else self._coalescer.put
        for index, operation in enumerate(operations):
            try:
                await put(_Pending(business_id, operation, group, index), timeout_seconds)
            except Overloaded as refusal:
                # Those already accepted are written and answered; the rest are refused.
                for refused in range(index, len(operations)):
                    group.settle(refused, refusal)
                break
        # The outcomes are awaited without a deadline of ours: once accepted, an operation
        # is written; a caller that gives up can retry and get the stored answer.
        results = await asyncio.shield(group.future)
        if traced:
            handing_over = trace.get_current_span()
            for batch in group.batches:
                handing_over.add_link(batch)
        return [result for result in results if result is not None]

    async def _flush(self, batch: list[_Pending]) -> None:
        by_business: dict[int, list[_Pending]] = defaultdict(list)
        for item in batch:
            by_business[item.business_id].append(item)
        await asyncio.gather(*(self._write(items) for items in by_business.values()))

    async def _write(self, items: list[_Pending]) -> None:
        leaders, followers = _leaders(items)
        await self._write_isolated(leaders)
        for follower, leader in followers:
            _follow(follower, leader)

    async def _write_isolated(self, leaders: list[_Pending]) -> None:
        """Write `leaders`; when the batch fails for a reason other than an outage, write
        its halves in order instead, down to the one operation that fails alone. Nothing
        was committed by a failed batch, so its operations are simply written again."""
        self._sizes.observe(len(leaders))
        try:
            with self._seconds.time(), self._batch_span(leaders):
                await self._apply_with_retries(leaders)
        except (*DEPENDENCY_FAILURES, *CONFLICT_FAILURES) as error:
            # An outage, or deadlocks that outlasted the retries: no one operation's fault.
            _resolve_failure(leaders, error)
        except Exception as error:
            if len(leaders) == 1:
                _logger.error("an operation failed alone", exc_info=error)
                _resolve_failure(leaders, error)
                return
            _logger.warning("a batch of %d failed (%s); writing it in halves", len(leaders), error)
            middle = len(leaders) // 2
            await self._write_isolated(leaders[:middle])
            await self._write_isolated(leaders[middle:])

    def _batch_span(self, leaders: list[_Pending]) -> contextlib.AbstractContextManager[Any]:
        """The batch's span, linked to the span of each group it carries (and each group
        told of it); nothing when not traced."""
        if self._tracer is None:
            return contextlib.nullcontext()
        groups = list({id(item.group): item.group for item in leaders}.values())
        span = linked_span(
            self._tracer,
            "batch write",
            (group.origin for group in groups),
            {"purse.batch.operations": len(leaders), "purse.business_id": leaders[0].business_id},
        )
        return _telling(span, groups)

    async def _apply_with_retries(self, items: Sequence[_Pending]) -> None:
        sales = [item for item in items if isinstance(item.operation, Sale)]
        transitions = [item for item in items if isinstance(item.operation, Transition)]
        for attempt in range(batch_retries_on_deadlock_max):
            try:
                sale_outcomes, transition_outcomes = await self._store.apply(
                    items[0].business_id,
                    [item.operation for item in sales],  # type: ignore[misc]
                    [item.operation for item in transitions],  # type: ignore[misc]
                )
                break
            except asyncpg.DeadlockDetectedError:
                if attempt + 1 == batch_retries_on_deadlock_max:
                    raise
        # Before answering: a terminal that identifies right after sees the new balance.
        await self._changes.committed(
            items[0].business_id, {item.operation.customer_id for item in items}
        )
        for item, outcome in zip(
            [*sales, *transitions], [*sale_outcomes, *transition_outcomes], strict=True
        ):
            item.settle(outcome)


@contextlib.contextmanager
def _telling(span: contextlib.AbstractContextManager[trace.Span], groups: list[_Group]) -> Any:
    with span as started:
        written = started.get_span_context()
        for group in groups:
            group.batches.append(written)
        yield started


def _leaders(items: list[_Pending]) -> tuple[list[_Pending], list[tuple[_Pending, _Pending]]]:
    """Sales with a key already in the batch follow the first one with that key."""
    leaders: list[_Pending] = []
    followers: list[tuple[_Pending, _Pending]] = []
    first_by_key: dict[tuple[int, str], _Pending] = {}
    for item in items:
        operation = item.operation
        if isinstance(operation, Sale):
            key = (operation.terminal_id, operation.check_number)
            leader = first_by_key.get(key)
            if leader is not None:
                followers.append((item, leader))
                continue
            first_by_key[key] = item
        leaders.append(item)
    return leaders, followers


def _follow(follower: _Pending, leader: _Pending) -> None:
    """A follower gets the leader's outcome and digest (the service compares digests: the
    same request gets the same answer, another request under the key is refused)."""
    outcome = leader.result()
    assert outcome is not None, "a leader is settled before its followers"
    if isinstance(outcome, BaseException):
        follower.settle(outcome)
        return
    assert isinstance(leader.operation, Sale)
    follower.settle(replace(outcome, leader_digest=leader.operation.request_digest))


def _resolve_failure(items: Sequence[_Pending], error: BaseException) -> None:
    for item in items:
        item.settle(error)
