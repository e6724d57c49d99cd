"""Building the Redis client with explicit options: one server, or a Redis Cluster.

`PURSE_REDIS_URL` names one Redis server; with `PURSE_REDIS_CLUSTER=true` it names a node
of a Redis Cluster instead, and the client learns every node and which slots each serves
from it (CLUSTER SLOTS), then follows the cluster's changes: a command answered MOVED
(after a failover or a resharding) goes to the new owner and the map is read again.
Every key of a business carries its hash tag (`keys.py`), so every script and command
Purse sends names keys of one slot, which is what a cluster requires.

Both clients let at most `connections_max` commands wait for Redis at once; a command
that finds none free waits up to `timeout_seconds` for one, then fails as a connection
error. (The cluster client keeps a pool per node that refuses at once when full, so it
is given a gate of that size in front of all its nodes.)
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT

# A pooled connection that Redis closed (a restart, a failover) fails on its first use:
# the command is sent once more on a new connection (in a cluster, after the map of
# slots is read again). Once only, with no pause: an outage still fails fast. A command
# that reached Redis before the connection broke may run twice; every script Purse runs
# counts attempts or spends codes, so a repeat errs on the strict side.
connection_retries_max = 1
health_check_interval_seconds = 30

RedisClient: TypeAlias = redis.Redis | RedisCluster


def create_client(
    url: str, connections_max: int, timeout_seconds: float, cluster: bool = False
) -> RedisClient:
    """A client over bounded connections; nothing connects until the first command."""
    options: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "health_check_interval": health_check_interval_seconds,
        "decode_responses": False,
        "retry": Retry(NoBackoff(), connection_retries_max),
        "retry_on_error": [RedisConnectionError],
    }
    if cluster:
        return GatedRedisCluster.from_url(
            url,
            max_connections=connections_max,
            commands_max=connections_max,
            wait_seconds=timeout_seconds,
            **options,
        )
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=connections_max, timeout=timeout_seconds, **options
    )
    return redis.Redis(connection_pool=pool)


class GatedRedisCluster(RedisCluster):
    """A RedisCluster whose commands wait for one of `commands_max` places, as the single
    server's blocking pool waits for a connection, instead of failing when a node's pool
    is full (its pools hold `commands_max` connections each, so a place always finds one)."""

    def __init__(self, *args: Any, commands_max: int, wait_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._places = asyncio.Semaphore(commands_max)
        self._wait_seconds = wait_seconds

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        if self._places.locked():
            try:
                await asyncio.wait_for(self._places.acquire(), self._wait_seconds)
            except TimeoutError:
                raise RedisConnectionError("no free connection to the Redis Cluster") from None
        else:
            await self._places.acquire()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._places.release()


async def is_cluster_node(url: str, timeout_seconds: float) -> bool:
    """Whether the server at `url` runs with cluster-enabled (INFO cluster), asked of that
    one server whatever the settings say."""
    node = redis.Redis.from_url(
        url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
    )
    try:
        info = await node.info("cluster")
    finally:
        await node.aclose()
    return bool(info.get("cluster_enabled"))
