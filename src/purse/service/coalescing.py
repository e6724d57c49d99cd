"""Adaptive batching: items from concurrent callers leave together, without a fixed wait.

When a flush slot is free, whatever has queued leaves at once, so an idle system adds no
latency. While `concurrent_flushes_max` flushes are in flight, new items queue and leave
together in the next one, up to `items_max`: the busier the system, the larger the
batches. The queue is bounded; `put` waits for room until the caller's deadline.
`close()` takes nothing new and returns once everything accepted has been flushed.

A second, background lane (`put_background`) carries work that must never starve the
callers of the first: each batch takes the first lane's items first and then at most
`background_items_max` of the background lane's, in the room left. So a batch is never
more than that share background work, and background work still moves whenever the
first lane leaves room (which, below saturation, it always does).

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
        background_items_max: int = 0,
        queue_background_items_max: int = 1,
    ) -> None:
        assert items_max > 0 and concurrent_flushes_max > 0
        assert 0 <= background_items_max <= items_max
        self._flush = flush
        self._items_max = items_max
        self._background_items_max = background_items_max
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue(queue_items_max)
        self._background: asyncio.Queue[Item] = asyncio.Queue(queue_background_items_max)
        # Set whenever either lane gets an item; the runner clears it before waiting.
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrent_flushes_max)
        self._flushes: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run())

    def queued(self) -> tuple[int, int]:
        """Items waiting to leave: on the first lane, and on the background lane."""
        return self._queue.qsize(), self._background.qsize()

    async def put(self, item: Item, timeout_seconds: float | None) -> None:
        """Queue `item`; Overloaded if there is no room before the deadline or on shutdown."""
        if self._closing or self._runner is None:
            raise Overloaded(
                "the server is shutting down; retry on another", reason="SHUTTING_DOWN"
            )
        await self._put(self._queue, item, timeout_seconds)

    async def put_background(self, item: Item, timeout_seconds: float | None) -> None:
        """Queue `item` on the background lane (as `put`); its batches carry at most
        `background_items_max` of them."""
        assert self._background_items_max > 0, "this coalescer has no background lane"
        if self._closing or self._runner is None:
            raise Overloaded(
                "the server is shutting down; retry on another", reason="SHUTTING_DOWN"
            )
        await self._put(self._background, item, timeout_seconds)

    async def _put(
        self,
        queue: asyncio.Queue[Item | None] | asyncio.Queue[Item],
        item: Item,
        timeout_seconds: float | None,
    ) -> None:
        if not queue.full():
            queue.put_nowait(item)  # no task for a deadline that cannot be met
            self._arrived.set()
            return
        try:
            await asyncio.wait_for(queue.put(item), timeout_seconds)
        except TimeoutError as error:
            raise Overloaded(
                "the queue stayed full until the deadline", reason="QUEUE_FULL"
            ) from error
        self._arrived.set()

    async def close(self) -> None:
        if self._runner is None or self._closing:
            return
        self._closing = True
        await self._queue.put(None)
        self._arrived.set()
        await self._runner
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    async def _run(self) -> None:
        closed = False
        while True:
            while self._queue.empty() and self._background.empty():
                if closed:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            # Taken before waiting for a slot: the queue has room again meanwhile.
            batch = self._drain(self._items_max)
            await self._slots.acquire()
            if None not in batch:
                batch += self._drain(self._items_max - len(batch))
            items = [item for item in batch if item is not None]
            closed = closed or len(items) < len(batch)
            items += self._drain_background(
                min(self._background_items_max, self._items_max - len(items))
            )
            if not items:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._flush(items))
            self._flushes.add(task)
            task.add_done_callback(self._flushed)

    def _drain_background(self, limit: int) -> list[Item]:
        items: list[Item] = []
        while len(items) < limit and not self._background.empty():
            items.append(self._background.get_nowait())
        return items

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
