"""Checks of one customer take turns within a server process.

Concurrent calls and stream messages may carry checks of the same customer. Each must be
calculated on what the previous one committed, as if they had been sent one by one. A
group takes the turns of all its customers (in customer-id order, so two groups never
wait for each other in a cycle) before it calculates, and gives them back once its
checks are answered. A group that had to share a customer with another one re-reads
that customer's membership after taking the turn. Across processes the settlement check
of the balances a check was calculated on does the same job (see
`purse.domain.transactions`); these turns spare it the retries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection


class CustomerTurns:
    """One asyncio lock per customer with checks in flight; none for anyone else."""

    def __init__(self) -> None:
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        self._users: dict[tuple[int, int], int] = {}

    @contextlib.asynccontextmanager
    async def taken(
        self, business_id: int, customer_ids: Collection[int]
    ) -> AsyncIterator[set[int]]:
        """Hold the turns of `customer_ids`; yields those another group also wanted."""
        wanted = [(business_id, customer_id) for customer_id in sorted(set(customer_ids))]
        shared: set[int] = set()
        for key in wanted:
            self._users[key] = self._users.get(key, 0) + 1
            self._locks.setdefault(key, asyncio.Lock())
        held: list[asyncio.Lock] = []
        try:
            for key in wanted:
                if self._users[key] > 1:
                    shared.add(key[1])
                lock = self._locks[key]
                await lock.acquire()
                held.append(lock)
            yield shared
        finally:
            for lock in held:
                lock.release()
            for key in wanted:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key]
                    del self._locks[key]
