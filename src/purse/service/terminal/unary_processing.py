"""Unary ProcessCheck calls that arrive together share their reads.

Group commit batches the writes of concurrent checks; this batches their reads. Calls
queue in a `Coalescer`; each flush hands the calls of one terminal to
`Checkout.process_many`, which reads the stored answers, the members and the
calculation inputs of the whole group in three queries instead of three per call. When
the server is idle a call flushes alone at once, so nothing waits; under load the
groups grow. Each call still gets exactly the answer (or refusal) `process` would give.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from purse.domain.errors import DomainError
from purse.domain.terminals import TerminalContext
from purse.service.coalescing import Coalescer
from purse.service.terminal.answers import Answer
from purse.service.terminal.checkout import Checkout, ProcessRequest


@dataclass(slots=True)
class _Call:
    terminal: TerminalContext
    request: ProcessRequest
    future: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class UnaryProcessing:
    """The front of ProcessCheck: one call in, its own answer out, reads shared."""

    def __init__(
        self,
        checkout: Checkout,
        group_checks_max: int,
        queue_checks_max: int,
        concurrent_groups_max: int,
    ) -> None:
        self._checkout = checkout
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
        await self._coalescer.put(call, timeout_seconds)
        return await asyncio.shield(call.future)

    async def _flush(self, calls: list[_Call]) -> None:
        by_terminal: dict[int, list[_Call]] = defaultdict(list)
        for call in calls:
            by_terminal[call.terminal.terminal_id].append(call)
        await asyncio.gather(*(self._group(group) for group in by_terminal.values()))

    async def _group(self, calls: list[_Call]) -> None:
        try:
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
