"""Building the Redis client with explicit options."""

from __future__ import annotations

import redis.asyncio as redis


def create_client(url: str, connections_max: int, timeout_seconds: float) -> redis.Redis:
    """A client over a bounded pool; nothing connects until the first command."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=connections_max,
        timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        decode_responses=False,
    )
    return redis.Redis(connection_pool=pool)
