"""The ceiling: an empty unary call on the very gRPC server Purse builds.

    python -m benchmarks.load.echo_server --port P --http-port H

serves `/purse.bench.v1.Echo/Empty` (any request bytes in, empty bytes out, nothing
decoded) on 127.0.0.1:P on uvloop until SIGTERM or SIGINT, and Prometheus `/metrics` on
127.0.0.1:H. The server object comes from `purse.bootstrap.Application._grpc_server()`
itself, so it has Purse's option list, concurrency limit and metrics interceptor, and
follows any change to them; the application is only constructed (placeholder database
and Redis URLs, never connected), never started.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc

from benchmarks.load.generator import echo_service
from purse.bootstrap import Application, require_fast_protobuf
from purse.config import load_settings

# Never connected to: Application asserts that the URLs are set before it is built.
_unused_database_url = "postgresql://unused@127.0.0.1:1/unused"
_unused_redis_url = "redis://127.0.0.1:1/0"
shutdown_grace_seconds = 1.0


async def _empty(request: bytes, context: Any) -> bytes:
    return b""


async def serve(port: int, http_port: int) -> None:
    settings = load_settings(
        environment={},
        database_url=_unused_database_url,
        redis_url=_unused_redis_url,
        grpc_host="127.0.0.1",
        grpc_port=port,
        http_host="127.0.0.1",
        http_port=http_port,
    )
    application = Application(settings)
    server = application._grpc_server()
    # No serializers: the handler gets and returns bytes, the cheapest call gRPC has.
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                echo_service, {"Empty": grpc.unary_unary_rpc_method_handler(_empty)}
            ),
        )
    )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if bound != port:
        raise SystemExit(f"could not bind 127.0.0.1:{port}")
    await server.start()
    metrics = application._http_server({})
    await metrics.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop(shutdown_grace_seconds)
        await metrics.stop()


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="gRPC port on 127.0.0.1")
    parser.add_argument("--http-port", type=int, required=True, help="/metrics port")
    arguments = parser.parse_args()
    require_fast_protobuf()
    uvloop.run(serve(arguments.port, arguments.http_port))


if __name__ == "__main__":
    main()
