"""The shape every Purse server interceptor shares: wrap a method's handler once.

A method's handler is wrapped the first time the method is called and served from a
dictionary after; only methods the server has are remembered, so unknown method names
sent by a caller cannot grow it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    # Generic only in the type stubs; at run time the class takes no parameters.
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Calls `wrap` once per method and serves what it returned from then on."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def wrap(self, method: str, handler: Handler) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        wrapped = self._handlers.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._handlers[method] = self.wrap(method, handler)
        return wrapped
