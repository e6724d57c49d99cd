"""The customer list as one CSV file, handed on in bounded chunks while the store writes it.

Contract:

* `chunks(business_id, scope, tree, sort, segment_id)` yields the file the store writes
  (header, then rows) in chunks of at most `export_chunk_bytes_max` bytes, each ending at
  a line break, so that each chunk is UTF-8 on its own (a line longer than the limit,
  which no row can be, would be cut at the limit). The selection is the customer list's
  (`customer_list.selected`: the scope and filter, or a saved segment's), always scoped
  by the business given; relative moments resolve against this use case's clock.
* Nothing is yielded before the store has begun writing rows (or finished): a refusal or a
  failure of the query comes before the first chunk, so a caller can still answer it as
  an error. One after it ends the iteration with that exception.
* Backpressure: the store's writes wait while a chunk waits for the caller, and at most
  one chunk waits; memory stays within a few chunks whatever the selection's size.
* At most `concurrent_max` exports at once; another is refused at once (RateLimited
  `EXPORTS_BUSY`), since each holds a database connection for as long as it streams.
* Closing the iteration early (a caller gone) cancels the store's export and waits for it
  to end, so its connection is back in the pool when `aclose` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress
from datetime import UTC, datetime
from typing import Final, Protocol

from purse.domain.errors import RateLimited
from purse.domain.segments import Filter, Sort
from purse.service.admin.customer_list import SegmentSelections, selected
from purse.store.postgres.customer_export import Write
from purse.store.postgres.customer_list import ListScope

export_chunk_bytes_max: Final = 64 * 1024
# When every export slot is taken: how long until trying again makes sense.
exports_busy_retry_seconds: Final = 10


class CustomerExportWrites(Protocol):
    """`purse.store.postgres.customer_export.CustomerExportStore`."""

    async def export(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        now: datetime,
        write: Write,
    ) -> int: ...


def _now() -> datetime:
    return datetime.now(UTC)


class _Chunks:
    """What the store writes, cut into chunks for one reader: `write` waits while a chunk
    waits to be read. The header alone is far below a chunk, so the first chunk is handed
    on only once rows have come (or at `finish`)."""

    def __init__(self, chunk_bytes_max: int) -> None:
        self._chunk_bytes_max = chunk_bytes_max
        self._pending = bytearray()
        self.ready: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)

    async def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= self._chunk_bytes_max:
            end = self._pending.rfind(b"\n", 0, self._chunk_bytes_max) + 1 or self._chunk_bytes_max
            chunk = bytes(self._pending[:end])
            del self._pending[:end]
            await self.ready.put(chunk)

    async def finish(self) -> None:
        if self._pending:
            await self.ready.put(bytes(self._pending))
            self._pending.clear()


class CustomerExport:
    def __init__(
        self,
        store: CustomerExportWrites,
        segments: SegmentSelections,
        concurrent_max: int,
        clock: Callable[[], datetime] = _now,
        chunk_bytes_max: int = export_chunk_bytes_max,
    ) -> None:
        assert concurrent_max > 0
        self._store = store
        self._segments = segments
        self._concurrent_max = concurrent_max
        self._clock = clock
        self._chunk_bytes_max = chunk_bytes_max
        self._running = 0

    async def chunks(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        segment_id: int = 0,
    ) -> AsyncGenerator[bytes, None]:
        scope, tree = await selected(self._segments, business_id, scope, tree, segment_id)
        if self._running >= self._concurrent_max:
            raise RateLimited(
                f"{self._concurrent_max} exports are running; try again shortly",
                reason="EXPORTS_BUSY",
                retry_after_seconds=exports_busy_retry_seconds,
            )
        self._running += 1
        chunks = _Chunks(self._chunk_bytes_max)
        now = self._clock()

        async def produce() -> None:
            await self._store.export(business_id, scope, tree, sort, now, chunks.write)
            await chunks.finish()

        producer = asyncio.create_task(produce())
        try:
            async with aclosing(_relayed(chunks.ready, producer)) as relayed:
                async for chunk in relayed:
                    yield chunk
        finally:
            self._running -= 1
            if not producer.done():
                producer.cancel()
                with suppress(asyncio.CancelledError):
                    await producer


async def _relayed(
    ready: asyncio.Queue[bytes], producer: asyncio.Task[None]
) -> AsyncGenerator[bytes, None]:
    """The chunks `producer` puts on `ready`, until it ends; its failure raised after the
    chunks it put before it."""
    while True:
        taken = asyncio.ensure_future(ready.get())
        try:
            await asyncio.wait((taken, producer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # A get not done yet has taken nothing: what is on `ready` stays there.
            got = taken.done()
            if not got:
                taken.cancel()
        if got:
            yield taken.result()
            continue
        while not ready.empty():
            yield ready.get_nowait()
        producer.result()
        return
