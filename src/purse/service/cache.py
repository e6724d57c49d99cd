"""A small in-process cache with a time to live and a bounded number of entries."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class ExpiringCache(Generic[Value]):
    """Entries live `lifetime_seconds`; past `entries_max` the oldest insertions go first."""

    def __init__(
        self,
        lifetime_seconds: float,
        entries_max: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert entries_max > 0
        self._lifetime_seconds = lifetime_seconds
        self._entries_max = entries_max
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Value]] = {}

    def get(self, key: Hashable) -> Value | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return value

    def put(self, key: Hashable, value: Value) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self._entries_max:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + self._lifetime_seconds, value)

    def pop(self, key: Hashable) -> None:
        """Forget `key` (nothing happens when it is not there)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
