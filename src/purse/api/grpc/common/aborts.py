"""An aborted call is released when it ends, not when the garbage collector next runs.

grpc.aio's `context.abort()` keeps the AbortError it raises on the call's state, and
grpc-core keeps the call's HTTP/2 stream allocated until that state is freed. The
exception's traceback holds every Python frame it passed on its way out, each holding
the call's context, and the refusal it was raised for (`__context__`) holds the same
frames: the state refers to itself, so only the cyclic garbage collector frees it.
A connection with more streams allocated than `grpc.max_concurrent_streams` refuses
every new stream (HTTP/2 REFUSED_STREAM, UNAVAILABLE to the caller, nothing in the
server log); a flood of refused sign-ins left a thousand aborted calls waiting for a
collection, and the connection refused everything for as long as nothing allocated
enough to start one (tens of seconds after the flood).

`AbortRelease`, the outermost interceptor, catches the AbortError of every handler
(unary, answered by a stream, bidirectional), drops its traceback and chained exceptions
(the only way back to the call), and returns: grpc raises the abort it finds on the
call's state again itself (a suppressed abort still ends the call with the status already
sent), through its own frames, which hold no Python locals. The call is then freed by
reference counting the moment it ends. Every abort is covered, whoever raised it
(servicers, the request surface, health checking).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import grpc

from purse.api.grpc.common.interceptors import Handler, WrappingInterceptor

Context = grpc.aio.ServicerContext[Any, Any]


def forget_frames(aborted: BaseException) -> None:
    """Drop what ties an exception to the frames it passed (and their locals)."""
    aborted.__traceback__ = None
    aborted.__context__ = None
    aborted.__cause__ = None


class AbortRelease(WrappingInterceptor):
    """Wraps every handler so that an abort leaves no cycle."""

    def wrap(self, method: str, handler: Handler) -> Handler:
        # grpc.aio hands async behaviors over; the stubs type them as the sync API's.
        if handler.unary_unary is not None:
            unary: Any = handler.unary_unary

            async def released(request: Any, context: Context) -> Any:
                try:
                    return await unary(request, context)
                except grpc.aio.AbortError as aborted:
                    forget_frames(aborted)
                    return None

            return grpc.unary_unary_rpc_method_handler(
                released,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _released(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _released(handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _released(behavior: Any) -> Callable[[Any, Context], AsyncGenerator[Any, None]]:
    """A handler that answers with a stream (to a request, or to a stream of them) whose
    abort is released (see the module's docstring)."""

    async def released(request_or_requests: Any, context: Context) -> AsyncGenerator[Any, None]:
        try:
            async with aclosing(behavior(request_or_requests, context)) as responses:
                async for response in responses:
                    yield response
        except grpc.aio.AbortError as aborted:
            forget_frames(aborted)

    return released
