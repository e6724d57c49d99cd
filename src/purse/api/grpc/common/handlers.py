"""One set of method handlers for every transport.

The generated `add_*Servicer_to_server` functions build a service's method handlers and hand
them to a server. `MethodTable` stands in for that server and keeps them, so the HTTP/JSON
surface serves exactly the handlers gRPC serves: the same servicer methods, behind the same
interceptors' wrappers (`behind`), applied in the same order as the gRPC server applies them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from purse.api.grpc.common.interceptors import Handler, WrappingInterceptor


class MethodTable:
    """The handlers of the services added to it, by full method path
    (`/purse.v1.TerminalService/IdentifyCustomer`)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def add_generic_rpc_handlers(self, generic_handlers: Iterable[Any]) -> None:
        # The generated code also registers each method by name (below): that is the one kept.
        return

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Handler]
    ) -> None:
        for name, handler in method_handlers.items():
            self.handlers[f"/{service_name}/{name}"] = handler


def behind(interceptors: Sequence[WrappingInterceptor], method: str, handler: Handler) -> Handler:
    """`handler` wrapped by `interceptors` as grpc.aio wraps it: the first one outermost."""
    for interceptor in reversed(interceptors):
        handler = interceptor.wrap(method, handler)
    return handler
