"""Expand, migrate, contract (deploy/migrations.md): the previous release's server keeps
serving while this release's migrations apply, and after them, beside this release's.

The previous release is the newest `v*` tag, or before the first the commit
deploy/previous-release names. Its `src` (and the client package's) is taken out of git
into a directory of its own and served from there as plain Python (nothing of it is
compiled), on this environment's libraries, against a database of the test's own:
migrated through the previous release's migrations, then through this release's while the
previous server takes sales, PIN confirmations and refunds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
from admin_support import customer_with_points, five_percent_back, set_program
from support import (
    ServerProcess,
    Tenant,
    assert_audit_is_clean,
    bearer,
    command_seconds_max,
    make_business_through_api,
)
from test_invariants import external
from test_transactions import points_of, sale, sent_pin

from purse.config import Settings
from purse.store.postgres import database
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

repository = Path(__file__).resolve().parents[2]
previous_release_path = repository / "deploy" / "previous-release"
# What of the previous release is served: the server's package and the client package's.
served_folders = ("src", "clients/python/src")
migrations_folder = "src/purse/store/postgres/migrations"


def previous_release() -> str:
    """The newest release tag, or the commit deploy/previous-release names."""
    tag = subprocess.run(
        ["git", "-C", str(repository), "describe", "--tags", "--abbrev=0", "--match", "v*"],
        check=False,
        capture_output=True,
        text=True,
        timeout=command_seconds_max,
    )
    if tag.returncode == 0:
        return tag.stdout.strip()
    lines = previous_release_path.read_text().splitlines()
    return next(line for line in lines if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def previous_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's served folders, taken out of git."""
    if not (repository / ".git").exists():
        pytest.skip("not a git checkout: the previous release cannot be taken out")
    release = previous_release()
    archived = subprocess.run(
        ["git", "-C", str(repository), "archive", "--format=tar", release, *served_folders],
        check=False,
        capture_output=True,
        timeout=command_seconds_max,
    )
    assert archived.returncode == 0, f"git archive {release}: {archived.stderr.decode()}"
    archive = archived.stdout
    destination = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def migrations_of(source: Path) -> int:
    """The number of the newest migration in a source tree."""
    names = (source / migrations_folder).glob("*.sql")
    return max(database.migration_number(name.stem) for name in names)


@pytest.fixture
async def upgraded_database(infrastructure: Settings, pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A database of the test's own on the session's PostgreSQL, dropped afterwards."""
    name = f"purse_upgrade_{os.getpid()}"
    await pool.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await pool.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(infrastructure.database_url)._replace(path=f"/{name}"))
    yield url
    await pool.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def imported_engine(environment: dict[str, str]) -> Path:
    """Where a Purse process in `environment` imports the engine from."""
    return Path(
        subprocess.run(
            [sys.executable, "-c", "import purse.domain.engine as e; print(e.__file__)"],
            env={**os.environ, **environment},
            check=True,
            capture_output=True,
            text=True,
            timeout=command_seconds_max,
        ).stdout.strip()
    )


@pytest.fixture
async def previous_server(
    previous_source: Path, upgraded_database: str, infrastructure: Settings, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    """The previous release's `purse serve` on the test's database, migrated as far as that
    release knows (its server does not migrate: the release's migration step does)."""
    await database.migrate(upgraded_database, through=migrations_of(previous_source))
    environment = external(
        infrastructure,
        PURSE_DATABASE_URL=upgraded_database,
        PURSE_MIGRATE_ON_START="false",
        PYTHONPATH=os.pathsep.join(str(previous_source / folder) for folder in served_folders),
    )
    # The previous release's code is what that environment imports, not this release's.
    served = await asyncio.to_thread(imported_engine, environment)
    assert served == previous_source / "src/purse/domain/engine.py"
    server = await asyncio.to_thread(ServerProcess(environment, tmp_path / "previous").start)
    yield server
    server.kill()


async def test_the_previous_release_serves_on_while_this_release_migrates_and_beside_it(
    previous_server: ServerProcess,
    previous_source: Path,
    upgraded_database: str,
    infrastructure: Settings,
    tmp_path: Path,
) -> None:
    assert migrations_of(previous_source) < migrations_of(repository)
    pool = await database.create_pool(upgraded_database, 1, 2, 10_000, 10.0)
    try:
        async with grpc.aio.insecure_channel(previous_server.target) as previous:
            business = await make_business_through_api(previous, pool)
            await set_program(
                previous,
                business,
                rules=(five_percent_back,),
                points_redemption_limit_without_pin=0,
            )
            await till_calls(previous, pool, business, "before")
            applied = await database.migrate(upgraded_database)
            assert applied, "this release has migrations the previous one has not"
            await till_calls(previous, pool, business, "during")
            current = ServerProcess(
                external(infrastructure, PURSE_DATABASE_URL=upgraded_database), tmp_path / "new"
            ).start()
            try:
                async with grpc.aio.insecure_channel(current.target) as new:
                    await till_calls(new, pool, business, "beside")
                    await till_calls(previous, pool, business, "after")
            finally:
                current.stop()
        await assert_audit_is_clean(upgraded_database, business.business_id)
    finally:
        await pool.close()


async def till_calls(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant, name: str
) -> None:
    """A new customer credited points, a sale earning points, one redeeming points
    confirmed by PIN, and a refund of the first: each answered as this release answers
    it, the points where they should be."""
    stub = TerminalServiceStub(channel)
    auth = bearer(business.cash_desk.api_key)
    phone = await customer_with_points(channel, business, 10_000)
    earned = await stub.ProcessCheck(sale(f"{name}-1", phone), metadata=auth)
    assert earned.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
    accrued = earned.transaction.receipt.points_accrued_hundredths
    assert accrued == 500  # 5 % of 100.00
    held = await stub.ProcessCheck(sale(f"{name}-2", phone, redeem=1_000), metadata=auth)
    assert held.transaction.status == pb.TRANSACTION_STATUS_PENDING
    transaction_id = held.transaction.transaction_id
    pin = await sent_pin(pool, business, transaction_id)
    confirmed = await stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=pin), metadata=auth
    )
    assert confirmed.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
    redeemed_sale_accrual = confirmed.transaction.receipt.points_accrued_hundredths
    await stub.RefundTransaction(
        pb.RefundTransactionRequest(
            transaction_id=earned.transaction.transaction_id, refund_number=f"{name}-refund"
        ),
        metadata=auth,
    )
    assert await points_of(pool, business, phone) == (9_000 + redeemed_sale_accrual, 0)
