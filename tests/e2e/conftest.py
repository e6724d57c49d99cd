"""A real `purse serve` process on the session's PostgreSQL and Redis, and a channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from support import ServerProcess

from purse.config import Settings
from purse.v1 import terminal_service_pb2_grpc

# Short enough that the expiry test waits little, long enough for any other use.
steward_code_lifetime_seconds = 3
# Tokens expire fast here so that the client's re-sign-in is exercised for real.
terminal_token_lifetime_seconds = 2
# Streams idle longer than this are closed; metrics connections silent this long dropped.
stream_idle_seconds_max = 3
metrics_connection_timeout_seconds = 1


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


@pytest.fixture(scope="session")
def terminal_stub(channel: grpc.aio.Channel) -> terminal_service_pb2_grpc.TerminalServiceStub:
    return terminal_service_pb2_grpc.TerminalServiceStub(channel)
