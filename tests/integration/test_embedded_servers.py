"""The embedded PostgreSQL and Redis: found again after a crash, and stoppable by anyone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import redis.asyncio as redis

from purse.store import embedded
from purse.store.embedded import EmbeddedPostgres, EmbeddedRedis
from purse.store.redis.client import create_client


def test_servers_left_running_are_found_again_and_stopped_from_a_new_handle(
    tmp_path: Path,
) -> None:
    first_postgres, first_redis = EmbeddedPostgres(tmp_path), EmbeddedRedis(tmp_path)
    database_url, redis_url = first_postgres.start(), first_redis.start()
    try:
        # A new process after a crash knows nothing but the data directory.
        again_postgres, again_redis = EmbeddedPostgres(tmp_path), EmbeddedRedis(tmp_path)
        assert again_postgres.start() == database_url
        assert again_redis.start() == redis_url
        assert asyncio.run(_answers(database_url, redis_url)) == (1, True)
        EmbeddedPostgres(tmp_path).stop()
        EmbeddedRedis(tmp_path).stop()
        assert not EmbeddedPostgres(tmp_path).running_port()
        assert not EmbeddedRedis(tmp_path).running_port()
    finally:
        first_postgres.stop()
        first_redis.stop()


async def _answers(database_url: str, redis_url: str) -> tuple[int, bool]:
    connection = await asyncpg.connect(database_url)
    client = redis.Redis.from_url(redis_url)
    try:
        return await connection.fetchval("SELECT 1"), bool(await client.ping())
    finally:
        await connection.close()
        await client.aclose()


def test_a_free_port_is_below_the_ephemeral_range_so_no_outgoing_connection_takes_it() -> None:
    import socket

    from purse.store import embedded

    first_ephemeral = int(Path(embedded.ephemeral_port_range_path).read_text().split()[0])
    ports = {embedded.free_port() for _ in range(20)}
    assert all(embedded.free_port_lowest <= port < first_ephemeral for port in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", ports.pop()))


async def test_a_pooled_redis_connection_survives_a_redis_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    client = create_client(server.start(), 4, 2.0)
    try:
        await client.set("greeting", b"hello")
        server.stop()
        server.start()  # the same port; the pooled connection is now closed by the server
        assert await client.ping() is True
    finally:
        await client.aclose()
        server.stop()


async def test_the_embedded_postgresql_runs_with_its_settings_and_may_count_statements(
    tmp_path: Path,
) -> None:
    server = EmbeddedPostgres(tmp_path, statement_statistics=True)
    url = await asyncio.to_thread(server.start)
    try:
        connection = await asyncpg.connect(url)
        try:
            shown = {
                name: await connection.fetchval(
                    "SELECT setting FROM pg_settings WHERE name = $1", name
                )
                for name in ("synchronous_commit", "fsync", "wal_compression", "checkpoint_timeout")
            }
            await connection.fetchval("SELECT 1")
            counted = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_statements WHERE query = 'SELECT $1'"
            )
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(server.stop)
    # Durable commits whatever else is tuned; checkpoints by time (seconds), pages compressed.
    assert shown == {
        "synchronous_commit": "on",
        "fsync": "on",
        "wal_compression": embedded.postgres_settings["wal_compression"],
        "checkpoint_timeout": "900",
    }
    assert counted == 1
