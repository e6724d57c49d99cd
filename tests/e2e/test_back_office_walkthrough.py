"""The back office's "done when": from an empty database, a script using only the public
API (examples/first_business.py) founds a business with the operator's key, sets it up as
its owner, and sells through its terminal: identify, calculate, process, process again."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as redis
from support import assert_audit_is_clean, command_seconds_max, run_purse, side_server

from purse.config import Settings

example = Path(__file__).parents[2] / "examples" / "first_business.py"
public_packages = ("purse.v1", "purse.admin.v1", "purse.platform.v1")
phone = "+380501112233"
# Server start, the operator key, the script: each bounded on its own, all well inside this.
walkthrough_seconds_max = 90


@asynccontextmanager
async def empty_instance(infrastructure: Settings) -> AsyncIterator[tuple[str, str]]:
    """(database URL, Redis URL) of an instance of this test's own: a new database on the
    session's PostgreSQL, dropped afterwards, and another logical database of its Redis,
    emptied afterwards (ids start again at 1 in the new database, so sharing the session's
    Redis keys would mix two businesses 1)."""
    name = f"purse_walkthrough_{secrets.token_hex(6)}"
    database_url = urlunsplit(urlsplit(infrastructure.database_url)._replace(path=f"/{name}"))
    redis_parts = urlsplit(infrastructure.redis_url)
    session_index = int(redis_parts.path.strip("/") or 0)
    redis_url = urlunsplit(redis_parts._replace(path=f"/{(session_index + 1) % 16}"))
    server = await asyncpg.connect(infrastructure.database_url)
    cache = redis.Redis.from_url(redis_url)
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        try:
            yield database_url, redis_url
        finally:
            await server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await cache.flushdb()
        await cache.aclose()
        await server.close()


def _environment(data_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PURSE_")}
    return {
        **clean,
        "PURSE_DATA_DIR": str(data_dir),
        "PURSE_DATABASE_URL": database_url,
        "PURSE_REDIS_URL": redis_url,
    }


def _script(
    environment: dict[str, str], target: str, operator_key: str
) -> subprocess.CompletedProcess[str]:
    """`python examples/first_business.py --target TARGET`, bounded in time."""
    return subprocess.run(
        [sys.executable, str(example), "--target", target],
        env={**environment, "PURSE_OPERATOR_KEY": operator_key},
        capture_output=True, text=True, timeout=command_seconds_max, check=False,
    )  # fmt: skip


def _line(output: str, step: str) -> str:
    """The one line the script printed for `step`."""
    lines = [line for line in output.splitlines() if line.startswith(f"{step}: ")]
    assert len(lines) == 1, f"{step}: {lines}\n{output}"
    return lines[0]


async def test_a_script_on_the_public_api_takes_an_empty_database_to_a_processed_check(
    infrastructure: Settings, tmp_path: Path
) -> None:
    started = time.monotonic()
    async with empty_instance(infrastructure) as (database_url, redis_url):
        server = side_server(database_url, redis_url, tmp_path)
        try:
            await asyncio.to_thread(server.start)  # migrates the new database as it starts
            database = await asyncpg.connect(database_url)
            try:
                environment = _environment(tmp_path, database_url, redis_url)
                business_id = await _walk_through(server.target, database, environment)
            finally:
                await database.close()
        finally:
            assert await asyncio.to_thread(server.stop) == 0, server.log()
        await assert_audit_is_clean(database_url, business_id)
    assert time.monotonic() - started < walkthrough_seconds_max


async def _walk_through(
    target: str, database: asyncpg.Connection, environment: dict[str, str]
) -> int:
    """The operator's key, a refused run, the script's run and what it left; the business."""
    assert await database.fetchval("SELECT count(*) FROM businesses") == 0
    created = await asyncio.to_thread(
        run_purse, environment, "operator-key", "create", "--name", "walkthrough"
    )
    assert created.returncode == 0, created.stderr
    unknown_key = f"purse_key_{secrets.token_urlsafe(32)}"  # of the form, but nobody's
    refused = await asyncio.to_thread(_script, environment, target, unknown_key)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    first, reason = refused.stderr.splitlines()
    assert first.startswith("CreateBusiness failed: UNAUTHENTICATED: unknown or revoked operator")
    assert reason == "  reason: OPERATOR_KEY_INVALID (domain purse)"
    assert await database.fetchval("SELECT count(*) FROM businesses") == 0

    script = await asyncio.to_thread(_script, environment, target, created.stdout.strip())
    assert script.returncode == 0, script.stdout + script.stderr
    output = script.stdout
    assert "SignIn: owner-" in _line(output, "SignIn")
    identified = _line(output, "IdentifyCustomer")
    customer_id = int(re.findall(r"customer (\d+)", identified)[0])
    assert f"({phone}), newly enrolled: True" in identified
    assert _line(output, "CalculateCheck") == (
        "CalculateCheck: sum 190.00, discount 6.00, to pay 184.00, points to accrue 9.20"
    )
    first, again = _line(output, "ProcessCheck"), _line(output, "ProcessCheck again")
    transaction = re.findall(r"is transaction (\d+) TRANSACTION_STATUS_COMPLETED", first)
    assert transaction, first
    assert f"is transaction {transaction[0]} TRANSACTION_STATUS_COMPLETED" in again
    for processed in (first, again):
        assert processed.endswith("points accrued 9.20, points balance 9.20")
    assert _line(output, "GetCustomer").startswith(
        f"GetCustomer: customer {customer_id} has 9.20 points, 1 sale(s)"
    )

    assert await database.fetchval("SELECT count(*) FROM businesses") == 1
    assert await database.fetchval("SELECT count(*) FROM transactions") == 1
    entries = await database.fetchval("SELECT count(*) FROM audit_log")
    assert _line(output, "ListAuditEntries") == (
        f"ListAuditEntries: {entries} entries in the business's audit log"
    )
    business_id: int = await database.fetchval("SELECT business_id FROM businesses")
    return business_id


def test_the_script_imports_nothing_of_purse_but_the_generated_stubs() -> None:
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(example.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    of_purse = {name for name in imported if name and name.split(".")[0] == "purse"}
    assert of_purse, imported
    assert {name for name in of_purse if not name.startswith(public_packages)} == set()
