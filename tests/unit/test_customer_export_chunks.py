"""The export's chunks: bounded, ending at line breaks, the whole file in order; nothing
before rows come, so a failure of the query is still an error of the call; the store
held back while the reader is; a few exports at once; a reader gone stops the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import pytest

from purse.domain.errors import InvalidArgument, RateLimited, invalid
from purse.domain.segments import CustomerColumn, Filter, Sort
from purse.service.admin.customer_export import CustomerExport
from purse.service.admin.segments import SegmentSelection
from purse.store.postgres.customer_export import Write
from purse.store.postgres.customer_export import header as store_header
from purse.store.postgres.customer_list import ListScope

chunk_bytes_max = 100
header = "\ufeffcustomer_id,given_name\n".encode()


def row(number: int) -> bytes:
    """Rows of different lengths, some with letters of two bytes."""
    return f"{number},{'Олена' * (number % 4)}{'x' * (number % 7)}\n".encode()


class Store:
    """Writes the header and `rows` rows a write each, then fails with `failure` if set;
    records how far it got and whether it was stopped."""

    def __init__(self, rows: int, failure: Exception | None = None) -> None:
        self.rows = rows
        self.failure = failure
        self.written = 0
        self.stopped = False

    async def export(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        now: datetime,
        write: Write,
    ) -> int:
        try:
            await write(header)
            for number in range(self.rows):
                await write(row(number))
                self.written += len(row(number))
        except asyncio.CancelledError:
            self.stopped = True
            raise
        if self.failure is not None:
            raise self.failure
        return self.rows


class NoSegments:
    async def selection(self, business_id: int, segment_id: int) -> SegmentSelection:
        raise AssertionError("no segment is named")


def exporter(store: Store, concurrent_max: int = 2) -> CustomerExport:
    return CustomerExport(
        store,
        NoSegments(),
        concurrent_max,
        lambda: datetime(2024, 5, 1, tzinfo=UTC),
        chunk_bytes_max,
    )


def chunks_of(export: CustomerExport) -> AsyncGenerator[bytes, None]:
    return export.chunks(1, ListScope(), None, Sort())


async def test_chunks_are_bounded_end_at_line_breaks_and_make_the_whole_file() -> None:
    store = Store(200)

    chunks = [chunk async for chunk in chunks_of(exporter(store))]

    assert b"".join(chunks) == header + b"".join(row(number) for number in range(200))
    assert all(len(chunk) <= chunk_bytes_max and chunk.endswith(b"\n") for chunk in chunks)
    assert all(chunk.decode() for chunk in chunks)  # each is UTF-8 on its own
    assert len(chunks) > 10


async def test_an_empty_selection_is_one_chunk_the_header() -> None:
    assert [chunk async for chunk in chunks_of(exporter(Store(0)))] == [header]


async def test_a_failure_before_a_chunk_is_full_comes_before_any_chunk() -> None:
    refused = invalid("filter.all[0]", "a group holds at least one filter", "FILTER_INVALID")
    received: list[bytes] = []

    with pytest.raises(InvalidArgument) as raised:
        async for chunk in chunks_of(exporter(Store(2, failure=refused))):
            received.append(chunk)

    assert received == [] and raised.value is refused


async def test_a_failure_after_chunks_were_handed_on_ends_the_iteration_after_them() -> None:
    received: list[bytes] = []

    with pytest.raises(ConnectionResetError):
        async for chunk in chunks_of(exporter(Store(50, failure=ConnectionResetError()))):
            received.append(chunk)

    assert received and b"".join(received).startswith(header)


async def test_the_store_is_held_back_while_the_reader_takes_nothing() -> None:
    store = Store(10_000)
    chunks = chunks_of(exporter(store))
    taken = 0
    ahead_most = 0
    async for chunk in chunks:
        taken += len(chunk)
        for _ in range(20):  # let the store run as far as it can
            await asyncio.sleep(0)
        ahead_most = max(ahead_most, store.written + len(header) - taken)
        if taken > 50 * chunk_bytes_max:
            break
    await chunks.aclose()

    # At most the chunk waiting to be read, and a chunk's worth gathering, ahead.
    assert 0 < ahead_most <= 3 * chunk_bytes_max
    assert store.written < 60 * chunk_bytes_max and store.stopped


async def test_exports_beyond_the_limit_are_refused_until_one_ends() -> None:
    export = exporter(Store(10_000), concurrent_max=2)
    first, second, third = chunks_of(export), chunks_of(export), chunks_of(export)
    await anext(first)
    await anext(second)

    with pytest.raises(RateLimited) as busy:
        await anext(third)
    await first.aclose()
    fourth = chunks_of(export)
    started = await anext(fourth)

    assert busy.value.reason == "EXPORTS_BUSY" and busy.value.retry_after_seconds > 0
    assert started.startswith(header)
    await second.aclose()
    await fourth.aclose()


async def test_a_reader_gone_stops_the_store_before_close_returns() -> None:
    store = Store(10_000)
    chunks = chunks_of(exporter(store))
    await anext(chunks)

    await chunks.aclose()

    assert store.stopped and store.written < store.rows * len(row(9))


def test_the_header_names_every_column_of_the_list_and_money_in_the_currency() -> None:
    names = store_header("EUR").decode().removeprefix("\ufeff").removesuffix("\n").split(",")

    assert len(names) == len(CustomerColumn) and names[0] == "customer_id"
    assert "sales_sum_EUR" in names and "average_check_EUR" in names
    assert "points_expiring_time" in names and "create_time" in names
