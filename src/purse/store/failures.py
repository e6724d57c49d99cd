"""The exceptions that mean "a storage dependency is down or slow", not "the request is
wrong": the API answers them UNAVAILABLE, and group mechanisms do not try to isolate a
culprit among their members for them (every member would meet the same outage)."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.exceptions

DEPENDENCY_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.AdminShutdownError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # A Redis Cluster in a failover: the slot's master is down or not yet replaced, or no
    # node answered when the client read the map of slots again.
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.RedisClusterUnreachableError,
    redis.exceptions.TryAgainError,
)
