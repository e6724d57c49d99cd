"""Building the Redis client with explicit options."""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# A pooled connection that Redis closed (a restart, a failover) fails on its first use:
# the command is sent once more on a new connection. Once only, with no pause: an outage
# still fails fast. A command that reached Redis before the connection broke may run
# twice; every script Purse runs counts attempts or spends codes, so a repeat errs on
# the strict side.
connection_retries_max = 1


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
        retry=Retry(NoBackoff(), connection_retries_max),
        retry_on_error=[RedisConnectionError],
    )
    return redis.Redis(connection_pool=pool)
