"""Unary ProcessCheck calls that arrive together share their reads.

Group commit batches the writes of concurrent checks; this batches their reads. Calls
queue in a `Coalescer`; each flush hands the calls of one terminal to
`Checkout.process_many`, which reads the stored answers, the members and the
calculation inputs of the whole group in three queries instead of three per call. When
the server is idle a call flushes alone at once, so nothing waits; under load the
groups grow. Each call still gets exactly the answer (or refusal) `process` would give.

Traced (when given a tracer, `purse.tracing`): a group of one call does its work in that
call's trace, its statements children of the call's span, as if it had not queued; a
group of several is a span of its own, linked to each call's span, since its reads serve
them all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from opentelemetry import context, trace

from purse.domain.errors import DomainError
from purse.domain.terminals import TerminalContext
from purse.service.coalescing import Coalescer
from purse.service.terminal.answers import Answer
from purse.service.terminal.checkout import Checkout, ProcessRequest
from purse.tracing import linked_span


@dataclass(slots=True)
class _Call:
    terminal: TerminalContext
    request: ProcessRequest
    future: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # Traced only: the caller's context, whose span the call's work belongs to.
    origin: context.Context | None = None


class UnaryProcessing:
    """The front of ProcessCheck: one call in, its own answer out, reads shared."""

    def __init__(
        self,
        checkout: Checkout,
        group_checks_max: int,
        queue_checks_max: int,
        concurrent_groups_max: int,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._checkout = checkout
        self._tracer = tracer
        self._coalescer: Coalescer[_Call] = Coalescer(
            self._flush, group_checks_max, queue_checks_max, concurrent_groups_max
        )

    def start(self) -> None:
        self._coalescer.start()

    async def close(self) -> None:
        await self._coalescer.close()

    async def process(
        self, terminal: TerminalContext, request: ProcessRequest, timeout_seconds: float | None
    ) -> Answer:
        self._checkout.validate(request)
        call = _Call(terminal, request)
        if self._tracer is not None:
            call.origin = context.get_current()
        await self._coalescer.put(call, timeout_seconds)
        return await asyncio.shield(call.future)

    async def _flush(self, calls: list[_Call]) -> None:
        by_terminal: dict[int, list[_Call]] = defaultdict(list)
        for call in calls:
            by_terminal[call.terminal.terminal_id].append(call)
        await asyncio.gather(*(self._group(group) for group in by_terminal.values()))

    async def _group(self, calls: list[_Call]) -> None:
        try:
            with self._traced(calls):
                results = await self._checkout.process_group(
                    calls[0].terminal, [call.request for call in calls]
                )
        except Exception as failure:  # an outage: every call meets it
            for call in calls:
                if not call.future.done():
                    call.future.set_exception(failure)
            return
        for call, result in zip(calls, results, strict=True):
            if call.future.done():
                continue
            if isinstance(result, DomainError):
                call.future.set_exception(result)
            else:
                call.future.set_result(result)

    def _traced(self, calls: list[_Call]) -> contextlib.AbstractContextManager[None]:
        """The group's work in its one call's context, or under a span of its own linked to
        each call's span; as it is when not traced."""
        if self._tracer is None:
            return contextlib.nullcontext()
        return self._in_trace(self._tracer, calls)

    @staticmethod
    @contextlib.contextmanager
    def _in_trace(tracer: trace.Tracer, calls: list[_Call]) -> Iterator[None]:
        if len(calls) == 1 and calls[0].origin is not None:
            token = context.attach(calls[0].origin)
            try:
                yield
            finally:
                context.detach(token)
            return
        origins = (
            trace.get_current_span(call.origin).get_span_context() if call.origin else None
            for call in calls
        )
        with linked_span(tracer, "ProcessCheck group", origins, {"purse.calls": len(calls)}):
            yield
