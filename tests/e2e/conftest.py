"""A real `purse serve` process on the session's PostgreSQL and Redis, a channel to it, and
each test's business made through its API (tests/conftest.py makes them in the database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import grpc
import pytest
from support import (
    ServerProcess,
    Tenant,
    TerminalAccess,
    audit_unless_set_by_hand,
    http_head_seconds_max,
    make_business_through_api,
    new_terminal,
    steward_code_lifetime_seconds,
    stream_idle_seconds_max,
    terminal_token_lifetime_seconds,
)

from purse.config import Settings
from purse.v1 import terminal_service_pb2, terminal_service_pb2_grpc


@pytest.fixture(scope="session")
def server(
    infrastructure: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "PURSE_DATABASE_URL": infrastructure.database_url,
            "PURSE_REDIS_URL": infrastructure.redis_url,
            "PURSE_STEWARD_CODE_LIFETIME_SECONDS": str(steward_code_lifetime_seconds),
            "PURSE_TERMINAL_CACHE_SECONDS": "0.2",
            # Tests read sealed PINs from the outbox; test_notifications runs a dispatcher.
            "PURSE_NOTIFY_ENABLED": "false",
            "PURSE_TERMINAL_TOKEN_LIFETIME_SECONDS": str(terminal_token_lifetime_seconds),
            "PURSE_STREAM_IDLE_SECONDS_MAX": str(stream_idle_seconds_max),
            "PURSE_HTTP_HEAD_SECONDS_MAX": str(http_head_seconds_max),
        },
        tmp_path_factory.mktemp("server"),
    ).start()
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="session")
async def channel(server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.target) as opened:
        yield opened


# On a grpc.aio channel the stub is the async one; TerminalServiceAsyncStub exists only in the
# generated .pyi, so tests import it under TYPE_CHECKING and name it in annotations only.
@pytest.fixture(scope="session")
def terminal_stub(channel: grpc.aio.Channel) -> terminal_service_pb2_grpc.TerminalServiceAsyncStub:
    return terminal_service_pb2_grpc.TerminalServiceStub(channel)


@pytest.fixture
async def business(
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    infrastructure: Settings,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Tenant]:
    """tests/conftest.py's `business`, made through the server's API as a real business is
    made: the operator founds it, its owner sets it up. The same audit follows the test."""
    tenant = await make_business_through_api(channel, pool)
    yield tenant
    await audit_unless_set_by_hand(request, infrastructure.database_url, tenant.business_id)


@pytest.fixture
async def steward(channel: grpc.aio.Channel, business: Tenant) -> TerminalAccess:
    """tests/conftest.py's `steward`, made by the business's owner through the API."""
    return await new_terminal(channel, business, terminal_service_pb2.TERMINAL_KIND_STEWARD)
