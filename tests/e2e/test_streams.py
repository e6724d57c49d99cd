"""ProcessChecks streams live no longer than their credentials, and not forever."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from support import (
    Tenant,
    bearer,
    disable_terminal,
    error_reason,
    new_phone,
    new_terminal,
    side_server,
)
from test_transactions import sale

from purse.config import Settings
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

# Generous bounds on every wait, so that a stream the server keeps open fails the test.
read_seconds_max = 10.0


async def transactions_with_number(pool: asyncpg.Pool, business: Tenant, number: str) -> int:
    count = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE business_id = $1 AND check_number = $2",
        business.business_id,
        number,
    )
    return int(count)


async def test_a_stream_ends_permission_denied_when_its_terminal_is_disabled_and_applies_no_more(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    kiosk = await new_terminal(channel, business)
    stream = terminal_stub.ProcessChecks(metadata=bearer(kiosk.api_key), timeout=30)
    await stream.write(pb.ProcessChecksRequest(checks=[sale("S-1", new_phone())]))
    first = await asyncio.wait_for(stream.read(), read_seconds_max)
    assert isinstance(first, pb.ProcessChecksResponse)  # not EOF (typed as object)
    assert first.results[0].HasField("processed")
    await disable_terminal(channel, business, kiosk.terminal_id)
    await asyncio.sleep(0.3)  # the server caches terminals for 0.2 s in this suite
    await stream.write(pb.ProcessChecksRequest(checks=[sale("S-2", new_phone())]))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(stream.read(), read_seconds_max)
    assert ended.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(ended.value) == "TERMINAL_DISABLED"
    assert await transactions_with_number(pool, business, "S-1") == 1
    assert await transactions_with_number(pool, business, "S-2") == 0


async def test_a_stream_opened_with_a_token_ends_unauthenticated_when_the_token_expires(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    terminal = await new_terminal(channel, business)
    signed_in = await terminal_stub.SignIn(
        pb.SignInRequest(login=terminal.login, password=terminal.password)
    )
    stream = terminal_stub.ProcessChecks(metadata=bearer(signed_in.token), timeout=30)
    await stream.write(pb.ProcessChecksRequest(checks=[sale("T-1", new_phone())]))
    answer = await asyncio.wait_for(stream.read(), read_seconds_max)
    assert isinstance(answer, pb.ProcessChecksResponse)  # not EOF (typed as object)
    assert answer.results[0].HasField("processed")
    await asyncio.sleep(2.5)  # tokens live 2 s in this suite (streams may idle 3 s)
    await stream.write(pb.ProcessChecksRequest(checks=[sale("T-2", new_phone())]))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(stream.read(), read_seconds_max)
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(ended.value) == "TOKEN_EXPIRED"
    assert await transactions_with_number(pool, business, "T-2") == 0


async def test_a_stream_without_messages_is_closed_after_the_idle_limit(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    stream = terminal_stub.ProcessChecks(metadata=bearer(business.cash_desk.api_key), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(stream.read(), read_seconds_max)
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_reason(ended.value) == "STREAM_IDLE"


async def test_a_busy_stream_is_closed_after_its_lifetime_between_messages(
    infrastructure: Settings, tmp_path: Path, business: Tenant
) -> None:
    server = side_server(
        infrastructure.database_url,
        infrastructure.redis_url,
        tmp_path,
        STREAM_LIFETIME_SECONDS_MAX="1.5",
    ).start()
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = TerminalServiceStub(channel)
            stream = stub.ProcessChecks(metadata=bearer(business.cash_desk.api_key), timeout=30)
            answered = 0
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                for number in range(20):
                    await stream.write(
                        pb.ProcessChecksRequest(checks=[sale(f"L-{number}", new_phone())])
                    )
                    await asyncio.wait_for(stream.read(), read_seconds_max)
                    answered += 1
                    await asyncio.sleep(0.25)
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(stream.read(), read_seconds_max)
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert error_reason(ended.value) == "STREAM_LIFETIME_OVER"
            assert 2 <= answered < 20
    finally:
        assert server.stop() == 0, server.log()
