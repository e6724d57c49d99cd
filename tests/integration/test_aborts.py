"""An aborted call is freed when it ends, without the cyclic garbage collector: a gRPC
server in this process, on loopback, whose handler aborts the way servicers do (from an
except block, through frames that hold the context)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from purse.api.grpc.common.aborts import AbortRelease

aborted_calls = 50
_method = "/purse.test.Aborts/Refuse"


class _Refusal(Exception):
    pass


async def _refuse(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    try:
        raise _Refusal("no")
    except _Refusal:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "refused")
    raise AssertionError("abort returned")


class _Handlers(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        if details.method != _method:
            return None
        return grpc.unary_unary_rpc_method_handler(_refuse)


def _live_call_states() -> int:
    return sum(type(item).__name__ == "RPCState" for item in gc.get_objects())


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Only reference counting frees anything while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("collector_off")
async def test_aborted_calls_leave_no_call_state_for_the_collector() -> None:
    server = grpc.aio.server(interceptors=[AbortRelease()])
    server.add_generic_rpc_handlers([_Handlers()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        before = _live_call_states()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            refuse: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_method)
            for _ in range(aborted_calls):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await refuse(b"", timeout=5)
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert refused.value.details() == "refused"
        await asyncio.sleep(0.2)  # the server's tasks for the last calls finish
        # One call state is always waiting for the next call.
        assert _live_call_states() - before <= 1
    finally:
        await server.stop(None)
