"""Gauges of what is waiting: the batch writer's queue, the outbox's unsent messages, and
the holds waiting for a PIN.

Prometheus reads gauges when it scrapes, and two of these are counts in PostgreSQL that
a scrape cannot wait for, so the server samples all of them every
`metrics_sample_seconds` (`Backlogs.sample`) and a scrape shows the last sample. They
are totals, with no label but the writer's lane: a business or a terminal as a label
would make a series for every one of them.

With several workers (prometheus_client's multiprocess mode) each worker samples its own
queue, summed over the live workers; only the first worker counts in the database
(`outbox` and `holds` given), and the largest value of any worker is shown, so the
others, which never set theirs, show nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Gauge


class Backlogs:
    """The gauges, and `sample()` to fill them."""

    def __init__(
        self,
        registry: CollectorRegistry,
        queued: Callable[[], tuple[int, int]],
        outbox: Callable[[], Awaitable[tuple[int, float]]] | None,
        holds: Callable[[], Awaitable[int]] | None,
    ) -> None:
        self._queued = queued
        self._outbox = outbox
        self._holds = holds
        queue = Gauge(
            "purse_batch_queue_operations",
            "Operations waiting for the batch writer, by lane (calls, background: bulk actions)",
            ("lane",),
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._calls_queue = queue.labels("calls")
        self._background_queue = queue.labels("background")
        self._outbox_waiting = Gauge(
            "purse_outbox_pending_messages",
            "Outbox messages of every business not yet sent (due or waiting for a retry)",
            registry=registry,
            multiprocess_mode="max",
        )
        self._outbox_overdue = Gauge(
            "purse_outbox_overdue_seconds",
            "How long the most overdue unsent outbox message has been due (0: none is due)",
            registry=registry,
            multiprocess_mode="max",
        )
        self._pending_holds = Gauge(
            "purse_pending_holds",
            "Pending transactions of every business: points held until a PIN confirms them",
            registry=registry,
            multiprocess_mode="max",
        )

    async def sample(self) -> None:
        """Set every gauge from what is waiting now."""
        calls, background = self._queued()
        self._calls_queue.set(calls)
        self._background_queue.set(background)
        if self._outbox is not None:
            waiting, overdue_seconds = await self._outbox()
            self._outbox_waiting.set(waiting)
            self._outbox_overdue.set(overdue_seconds)
        if self._holds is not None:
            self._pending_holds.set(await self._holds())
