"""A real `purse serve` process on the session's PostgreSQL and Redis, and a channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from support import (
    ServerProcess,
    metrics_connection_timeout_seconds,
    steward_code_lifetime_seconds,
    stream_idle_seconds_max,
    terminal_token_lifetime_seconds,
)

from purse.config import Settings
from purse.v1 import terminal_service_pb2_grpc


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
            "PURSE_METRICS_CONNECTION_TIMEOUT_SECONDS": str(metrics_connection_timeout_seconds),
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
