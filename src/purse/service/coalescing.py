"""Adaptive batching: items from concurrent callers leave together, without a fixed wait.

When a flush slot is free, whatever has queued leaves at once, so an idle system adds no
latency. While `concurrent_flushes_max` flushes are in flight, new items queue and leave
together in the next one, up to `items_max`: the busier the system, the larger the
batches. The queue is bounded; `put` waits for room until the caller's deadline.
`close()` takes nothing new and returns once everything accepted has been flushed.

The batch writer (group commit) and the unary ProcessCheck front (reads shared by calls
that arrive together) are both built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Generic, TypeVar

from purse.domain.errors import Overloaded

Item = TypeVar("Item")


class Coalescer(Generic[Item]):
    """Hands batches of queued items to `flush`, at most `concurrent_flushes_max` at once."""

    def __init__(
        self,
        flush: Callable[[list[Item]], Coroutine[object, object, None]],
        items_max: int,
        queue_items_max: int,
        concurrent_flushes_max: int,
    ) -> None:
        assert items_max > 0 and concurrent_flushes_max > 0
        self._flush = flush
        self._items_max = items_max
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue(queue_items_max)
        self._slots = asyncio.Semaphore(concurrent_flushes_max)
        self._flushes: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def put(self, item: Item, timeout_seconds: float | None) -> None:
        """Queue `item`; Overloaded if there is no room before the deadline or on shutdown."""
        if self._closing or self._runner is None:
            raise Overloaded(
                "the server is shutting down; retry on another", reason="SHUTTING_DOWN"
            )
        if not self._queue.full():
            self._queue.put_nowait(item)  # no task for a deadline that cannot be met
            return
        try:
            await asyncio.wait_for(self._queue.put(item), timeout_seconds)
        except TimeoutError as error:
            raise Overloaded(
                "the queue stayed full until the deadline", reason="QUEUE_FULL"
            ) from error

    async def close(self) -> None:
        if self._runner is None or self._closing:
            return
        self._closing = True
        await self._queue.put(None)
        await self._runner
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first, *self._drain(self._items_max - 1)]
            await self._slots.acquire()
            batch += self._drain(self._items_max - len(batch))
            items = [item for item in batch if item is not None]
            task = asyncio.get_running_loop().create_task(self._flush(items))
            self._flushes.add(task)
            task.add_done_callback(self._flushed)
            if len(items) < len(batch):
                return

    def _drain(self, limit: int) -> list[Item | None]:
        items: list[Item | None] = []
        while len(items) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            items.append(item)
            if item is None:
                break
        return items

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._slots.release()
