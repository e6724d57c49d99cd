"""One unit of work owns "commit, then tell the caches, then answer".

A write path outside the batch writer runs its database change inside
`UnitOfWork.changing(business_id)` and names, on the `Changed` it is handed, the
customers (and identifier hints) the change touched. The stores commit their own
database transactions inside the block. On a clean exit — after that commit, before the
call answers — the balance cache forgets what was named, so a terminal that identifies
right after sees the change. When the block raises, nothing is forgotten. Telling the
cache never raises: the change is committed, and the caller must answer so.

The batch writer, which commits a batch at a time, calls `committed` — the same step —
once a batch has committed. No other code forgets by hand.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager

from purse.service.ports import BalanceForgets

_logger = logging.getLogger(__name__)


class Changed:
    """What a block changed: customers whose cached memberships are stale, and identifier
    hints that no longer name the customer they named."""

    __slots__ = ("customer_ids", "hints")

    def __init__(self) -> None:
        self.customer_ids: set[int] = set()
        self.hints: set[str] = set()

    def customers(self, customer_ids: Iterable[int | None], hints: Iterable[str] = ()) -> None:
        """Name changed customers (None, a sale without a customer, is skipped) and hints."""
        self.customer_ids.update(each for each in customer_ids if each is not None)
        self.hints.update(hints)


class UnitOfWork:
    """Built once at the composition root; without a cache it only runs the blocks."""

    def __init__(self, cache: BalanceForgets | None = None) -> None:
        self._cache = cache

    @asynccontextmanager
    async def changing(self, business_id: int) -> AsyncIterator[Changed]:
        """Run a change of `business_id`; forget what it names once it has exited cleanly."""
        changed = Changed()
        yield changed
        await self.committed(business_id, changed.customer_ids, changed.hints)

    async def committed(
        self, business_id: int, customer_ids: Iterable[int | None], hints: Collection[str] = ()
    ) -> None:
        """After a commit: the cache forgets these customers and hints. Never raises."""
        known = sorted({each for each in customer_ids if each is not None})
        if self._cache is None or not (known or hints):
            return
        try:
            await self._cache.forget(business_id, known, hints)
        except Exception as error:  # the change is committed: the caller answers so
            _logger.warning("the balance cache missed a change (%s)", type(error).__name__)
