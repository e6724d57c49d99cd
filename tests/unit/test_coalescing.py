"""Adaptive batching: together while busy, at once when idle, bounded, drained on close."""

from __future__ import annotations

import asyncio

import pytest

from purse.domain.errors import Overloaded
from purse.service.coalescing import Coalescer


class Recorder:
    """A flush that records its batches and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.open = asyncio.Event()
        self.open.set()

    async def flush(self, items: list[int]) -> None:
        self.batches.append(items)
        await self.open.wait()


async def test_an_item_on_an_idle_coalescer_leaves_at_once() -> None:
    recorder = Recorder()
    coalescer: Coalescer[int] = Coalescer(recorder.flush, 100, 100, 1)
    coalescer.start()
    await coalescer.put(1, None)
    await asyncio.sleep(0.01)
    assert recorder.batches == [[1]]
    await coalescer.close()


async def test_items_arriving_while_a_flush_runs_leave_together() -> None:
    recorder = Recorder()
    recorder.open.clear()
    coalescer: Coalescer[int] = Coalescer(recorder.flush, 100, 100, 1)
    coalescer.start()
    await coalescer.put(0, None)
    await asyncio.sleep(0.01)
    for item in range(1, 51):
        await coalescer.put(item, None)
    recorder.open.set()
    await coalescer.close()
    assert recorder.batches == [[0], list(range(1, 51))]


async def test_batches_never_exceed_their_bound() -> None:
    recorder = Recorder()
    recorder.open.clear()
    coalescer: Coalescer[int] = Coalescer(recorder.flush, 10, 100, 1)
    coalescer.start()
    await coalescer.put(0, None)
    await asyncio.sleep(0.01)
    for item in range(1, 26):
        await coalescer.put(item, None)
    recorder.open.set()
    await coalescer.close()
    assert [len(batch) for batch in recorder.batches] == [1, 10, 10, 5]
    assert sorted(item for batch in recorder.batches for item in batch) == list(range(26))


async def test_a_full_queue_refuses_once_the_deadline_passes() -> None:
    recorder = Recorder()
    recorder.open.clear()
    coalescer: Coalescer[int] = Coalescer(recorder.flush, 1, 2, 1)
    coalescer.start()
    await coalescer.put(0, None)
    await asyncio.sleep(0.01)  # the flush of 0 holds the only slot
    await coalescer.put(1, None)  # taken by the runner, waiting for the slot
    await coalescer.put(2, None)
    await coalescer.put(3, None)
    with pytest.raises(Overloaded) as refused:
        await coalescer.put(4, 0.05)
    assert refused.value.reason == "QUEUE_FULL"
    recorder.open.set()
    await coalescer.close()
    assert sorted(item for batch in recorder.batches for item in batch) == [0, 1, 2, 3]


async def test_closing_flushes_everything_accepted_and_refuses_the_rest() -> None:
    recorder = Recorder()
    recorder.open.clear()
    coalescer: Coalescer[int] = Coalescer(recorder.flush, 100, 1_000, 1)
    coalescer.start()
    for item in range(100):
        await coalescer.put(item, None)
    closing = asyncio.ensure_future(coalescer.close())
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded) as refused:
        await coalescer.put(100, None)
    assert refused.value.reason == "SHUTTING_DOWN"
    assert not closing.done()
    recorder.open.set()
    await closing
    assert sorted(item for batch in recorder.batches for item in batch) == list(range(100))


async def test_background_items_take_at_most_their_share_of_a_batch_after_the_first_lane() -> None:
    recorder = Recorder()
    recorder.open.clear()
    coalescer: Coalescer[int] = Coalescer(
        recorder.flush, 10, 100, 1, background_items_max=3, queue_background_items_max=100
    )
    coalescer.start()
    await coalescer.put(0, None)
    await asyncio.sleep(0.01)  # the flush of 0 holds the only slot
    for item in range(100, 120):
        await coalescer.put_background(item, None)
    for item in range(1, 9):
        await coalescer.put(item, None)
    recorder.open.set()
    await coalescer.close()
    first_lane = [[item for item in batch if item < 100] for batch in recorder.batches]
    background = [[item for item in batch if item >= 100] for batch in recorder.batches]
    assert first_lane[:2] == [[0], list(range(1, 9))]
    assert background[1] == [100, 101]  # the room the tills left, within the share
    assert all(len(batch) <= 3 for batch in background)
    assert sorted(item for batch in background for item in batch) == list(range(100, 120))
