"""Shared fixtures: a real PostgreSQL and a real Redis for the whole session.

With PURSE_DATABASE_URL and PURSE_REDIS_URL set, the suite uses those servers; otherwise
it starts the embedded ones under a temporary directory and stops them at the end.
Tests isolate themselves by creating their own business (tenant) rather than by
truncating tables, which is also how production isolates businesses.
"""

from __future__ import annotations

# Before anything imports Purse: the parity run's plain Python modules (see pure_python).
import pure_python  # noqa: F401

# isort: split
import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from redis_cluster import LocalRedisCluster
from support import (
    Tenant,
    TerminalAccess,
    audit_unless_set_by_hand,
    make_business,
    make_terminal,
)

from purse.bootstrap import Infrastructure
from purse.config import Settings, load_settings
from purse.domain.terminals import TerminalKind
from purse.store.postgres import database
from purse.store.postgres.provisioning import Provisioning
from purse.store.redis.client import RedisClient, create_client


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings whose URLs point at running servers, migrated."""
    settings = load_settings(
        environment={
            key: value
            for key, value in os.environ.items()
            if key in ("PURSE_DATABASE_URL", "PURSE_REDIS_URL")
        },
        data_dir=tmp_path_factory.mktemp("purse-data"),
    )
    servers = Infrastructure(settings)
    resolved = servers.start()
    try:
        asyncio.run(database.migrate(resolved.database_url))
        yield resolved
    finally:
        servers.stop()


@pytest.fixture(scope="session")
async def pool(infrastructure: Settings) -> AsyncIterator[asyncpg.Pool]:
    created = await database.create_pool(infrastructure.database_url, 1, 10, 10_000, 10.0)
    yield created
    await created.close()


@pytest.fixture(scope="session")
async def redis_client(infrastructure: Settings) -> AsyncIterator[RedisClient]:
    client = create_client(infrastructure.redis_url, 32, 5.0)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A real Redis Cluster, three masters with a replica each (tests/redis_cluster.py),
    started the first time a test asks for it. Tests may fail masters over: the cluster
    is healthy again when each returns."""
    assert shutil.which("redis-server"), (
        "Debian's redis-server is needed: make cluster-tools (apt-get install redis-server)"
    )
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
async def business(
    pool: asyncpg.Pool, infrastructure: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[Tenant]:
    """A business of this test's own, with a cash desk. Whatever the test did with its
    money, every pocket still equals its ledger afterwards (unless the test wrote pockets
    by hand)."""
    tenant = await make_business(pool)
    yield tenant
    await audit_unless_set_by_hand(request, infrastructure.database_url, tenant.business_id)


@pytest.fixture
async def steward(pool: asyncpg.Pool, business: Tenant) -> TerminalAccess:
    """A steward terminal (a waiter's app) at the business's point of sale."""
    return await make_terminal(
        Provisioning(pool), business.business_id, business.point_of_sale_id, TerminalKind.STEWARD
    )
