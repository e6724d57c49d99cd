"""Starting up as a newcomer meets it: one server per data directory, health that follows
PostgreSQL, bounded waits for dependencies, settings checked at start, tools that refuse
to read a folder without data, and the CLI dialling the server of its data directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import stat
from pathlib import Path

import asyncpg
import pytest
import redis
from grpc_health.v1 import health_pb2
from support import (
    ServerProcess,
    Tenant,
    run_purse,
    side_server,
    stop_embedded_servers,
    wait_for_health,
)

from purse.config import Settings
from purse.store.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

embedded = {"PURSE_DATABASE_URL": "", "PURSE_REDIS_URL": ""}
health_change_seconds_max = 20.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _environment(**variables: str) -> dict[str, str]:
    """This process's environment without any PURSE_* setting, plus `variables`."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PURSE_")}
    return {**clean, **variables}


def test_a_second_server_on_the_same_data_directory_refuses_and_the_first_keeps_serving(
    tmp_path: Path,
) -> None:
    first = ServerProcess(embedded, tmp_path).start()
    try:
        assert first.process is not None
        second = run_purse(
            _environment(
                PURSE_DATA_DIR=str(tmp_path),
                PURSE_GRPC_PORT=str(free_port()),
                PURSE_HTTP_PORT=str(free_port()),
            ),
            "serve",
        )
        assert second.returncode != 0
        assert "a Purse server is already running on this data directory" in second.stderr
        assert f"pid {first.process.pid}" in second.stderr
        assert EmbeddedPostgres(tmp_path).running_port(), "the second server stopped PostgreSQL"
        demo = run_purse(_environment(PURSE_DATA_DIR=str(tmp_path)), "demo")
        assert demo.returncode == 0, demo.stderr
        identify = run_purse(
            _environment(PURSE_DATA_DIR=str(tmp_path)),
            "terminal", "identify", "--card", "DEMO0001",
        )  # fmt: skip
        assert identify.returncode == 0, identify.stderr
        assert first.stop() == 0, first.log()
    finally:
        first.kill()
        stop_embedded_servers(tmp_path)


def test_health_is_not_serving_while_postgres_is_down_and_serving_once_it_is_back(
    tmp_path: Path,
) -> None:
    server = ServerProcess(embedded, tmp_path).start()
    try:
        EmbeddedPostgres(tmp_path).stop()
        wait_for_health(server.target, NOT_SERVING, health_change_seconds_max)
        # The process itself is alive: a liveness probe restarts nothing for an outage.
        alive = run_purse(
            _environment(), "health", "--target", server.target, "--service", "purse.Process"
        )
        assert alive.returncode == 0, alive.stderr
        EmbeddedPostgres(tmp_path).start()
        wait_for_health(server.target, SERVING, health_change_seconds_max)
        assert server.stop() == 0, server.log()
    finally:
        server.kill()
        stop_embedded_servers(tmp_path)


def test_a_server_that_cannot_reach_its_database_retries_then_exits_with_one_line(
    infrastructure: Settings, tmp_path: Path
) -> None:
    nobody = f"postgresql://purse@127.0.0.1:{free_port()}/purse"
    finished = run_purse(
        _environment(
            PURSE_DATA_DIR=str(tmp_path),
            PURSE_DATABASE_URL=nobody,
            PURSE_REDIS_URL=infrastructure.redis_url,
            PURSE_GRPC_PORT=str(free_port()),
            PURSE_LOG_FORMAT="text",
            PURSE_START_DEPENDENCY_WAIT_SECONDS="2",
        ),
        "serve",
    )
    assert finished.returncode != 0
    output = finished.stdout + finished.stderr
    assert "Traceback" not in output
    assert output.count("waiting for PostgreSQL at 127.0.0.1") >= 2
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("purse serve: cannot reach PostgreSQL at 127.0.0.1")
    assert "PURSE_START_DEPENDENCY_WAIT_SECONDS" in last


def test_a_misspelt_setting_stops_the_server_naming_the_variable(tmp_path: Path) -> None:
    finished = run_purse(
        _environment(PURSE_DATA_DIR=str(tmp_path), PURSE_NOTIFY_PROVIDER="webhok"), "serve"
    )
    assert finished.returncode != 0
    assert "PURSE_NOTIFY_PROVIDER: 'webhok' is not one of console, webhook" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "postgres").exists(), "started servers before checking settings"


async def test_purse_migrate_prints_the_migrations_it_applied(
    infrastructure: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    name = f"fresh_{secrets.token_hex(4)}"
    await pool.execute(f"CREATE DATABASE {name}")
    url = infrastructure.database_url.rsplit("/", 1)[0] + f"/{name}"
    environment = _environment(
        PURSE_DATA_DIR=str(tmp_path),
        PURSE_DATABASE_URL=url,
        PURSE_REDIS_URL=infrastructure.redis_url,
    )
    first = await asyncio.to_thread(run_purse, environment, "migrate")
    assert first.returncode == 0, first.stderr
    assert "0001_foundation" in first.stdout
    assert "nothing" not in first.stdout
    again = await asyncio.to_thread(run_purse, environment, "migrate")
    assert "nothing, the schema is current" in again.stdout


def test_purse_audit_refuses_a_folder_without_purse_data(tmp_path: Path) -> None:
    finished = run_purse(_environment(), "audit", cwd=tmp_path)
    assert finished.returncode != 0
    assert "no Purse data in ./.purse; run from the folder where the server runs" in (
        finished.stderr
    )
    assert not (tmp_path / ".purse" / "postgres").exists(), "an empty database was started"


async def test_purse_terminal_dials_the_server_of_its_data_directory_on_any_port(
    infrastructure: Settings, business: Tenant, tmp_path: Path
) -> None:
    server = side_server(infrastructure.database_url, infrastructure.redis_url, tmp_path)
    await asyncio.to_thread(server.start)
    try:
        finished = await asyncio.to_thread(
            run_purse,
            _environment(
                PURSE_DATA_DIR=str(tmp_path), PURSE_TERMINAL_API_KEY=business.cash_desk.api_key
            ),
            "terminal", "settings",
        )  # fmt: skip
        assert finished.returncode == 0, finished.stderr
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()
    assert not (tmp_path / "server-target").exists()


def test_the_embedded_servers_ask_for_the_passwords_kept_private_in_the_data_directory(
    tmp_path: Path,
) -> None:
    postgres, redis_server = EmbeddedPostgres(tmp_path), EmbeddedRedis(tmp_path)
    try:
        database_url = postgres.start()
        redis_url = redis_server.start()
        for secret in (postgres.password_path, redis_server.password_path):
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        without_password = f"postgresql://postgres@127.0.0.1:{postgres.port}/purse"

        async def attempts() -> None:
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(without_password)
            connection = await asyncpg.connect(database_url)
            await connection.close()

        asyncio.run(attempts())
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=redis_server.port).ping()
        assert redis.Redis.from_url(redis_url).ping()
        password = postgres.password_path.read_text().strip()
        assert password not in " ".join(_command_lines())
        assert redis_server.password_path.read_text().strip() not in " ".join(_command_lines())
    finally:
        redis_server.stop()
        postgres.stop()


def _command_lines() -> list[str]:
    """The command line of every process on this machine, as `ps` shows them."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return lines
