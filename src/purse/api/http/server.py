"""The HTTP port's server: uvicorn, on the event loop the gRPC server shares, bounded.

uvicorn (with httptools' parser) is the kept ASGI server; its own limits are passed
explicitly: connections and requests at once (`connections_max`; past it a request is
answered 503 at once), and how long a kept-alive connection may idle. It has no limit of
its own on a request's head, so `BoundedHttpProtocol` adds two: the head (request line and
headers) must arrive within `head_seconds_max` of the connection opening or of its first
byte, or the connection is closed (a client that opens connections and sends nothing, or
a byte at a time, cannot hold them), and a head larger than `head_bytes_max` is answered
431 and the connection closed. The body's limits are the application's (`app.py`).

Several workers share the port with SO_REUSEPORT, as they share the gRPC port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_logger = logging.getLogger(__name__)
_head_too_large = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class BoundedHttpProtocol(HttpToolsProtocol):
    """httptools' protocol with a deadline and a size limit on each request's head.

    The head is measured twice: by what the parser hands over (the URL and each header,
    so a head that arrives with its body in one read is measured exactly), and by the
    bytes received while it is incomplete (so one endless header, which the parser keeps
    to itself until it ends, is stopped too). A refused head never reaches the
    application: it is answered 431 and the rest of what the connection sends is dropped."""

    head_seconds_max = 10.0
    head_bytes_max = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._received_bytes = 0
        self._reading_head = True
        self._refused = False
        self._answered_refusal = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # after a refused head: read and dropped (see _refuse_head)
        if self._reading_head:
            self._received_bytes += len(data)
            self._arm_head_timer()
        super().data_received(data)
        if self._reading_head and self._received_bytes > self.head_bytes_max:
            self._refused = True
        if self._refused and not self._answered_refusal:
            self._answered_refusal = True
            self._disarm_head_timer()
            self._refuse_head()

    def _refuse_head(self) -> None:
        """431, then the end of what Purse sends; what the client still sends is read and
        dropped until it closes (or the head's time runs out again): closing a socket with
        unread data would reset the connection, and the client might lose the answer."""
        if self.transport.is_closing():
            return
        self.transport.write(_head_too_large)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._head_timer = self.loop.call_later(self.head_seconds_max, self.transport.close)
        else:
            self.transport.close()

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm_head_timer()
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        self._reading_head = True
        self._received_bytes = 0
        super().on_response_complete()

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.head_bytes_max:
            self._refused = True

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_seconds_max, self._head_overdue)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            self.transport.close()


class HttpServer:
    """Serves an ASGI application on (host, port) until `stop()`."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        connections_max: int,
        idle_seconds_max: float,
        head_seconds_max: float,
        head_bytes_max: int,
        shutdown_grace_seconds: float,
        share_port: bool,
    ) -> None:
        protocol = type(
            "HttpProtocol",
            (BoundedHttpProtocol,),
            {"head_seconds_max": head_seconds_max, "head_bytes_max": head_bytes_max},
        )
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=protocol,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            # Purse reads no client address from a request, so no proxy's header is trusted.
            proxy_headers=False,
            limit_concurrency=connections_max,
            timeout_keep_alive=int(max(idle_seconds_max, 1)),
            timeout_graceful_shutdown=int(max(shutdown_grace_seconds, 1)),
        )
        self._server = uvicorn.Server(self._config)
        self._share_port = share_port
        self._socket: socket.socket | None = None
        self.port = 0

    async def start(self) -> int:
        """Bind and serve; returns the bound port."""
        family = socket.AF_INET6 if ":" in self._config.host else socket.AF_INET
        bound = socket.socket(family, socket.SOCK_STREAM)
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._share_port:
            bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        bound.bind((self._config.host, self._config.port))
        bound.setblocking(False)
        self._socket = bound
        self.port = bound.getsockname()[1]
        self._config.load()
        self._server.lifespan = self._config.lifespan_class(self._config)
        await self._server.startup(sockets=[bound])
        return self.port

    async def stop(self) -> None:
        """Stop taking connections and let requests in flight finish (up to the grace)."""
        if self._socket is None:
            return
        await self._server.shutdown(sockets=[self._socket])
        self._socket = None
