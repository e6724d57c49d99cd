"""The HTTP endpoint Prometheus scrapes: `/metrics` on its own port.

Bounded like everything else: each connection is served by a thread of its own, at most
`connections_max` at once (more are closed at once), and a connection that sends nothing,
or reads nothing, for `connection_timeout_seconds` is dropped, so half-open connections
cannot pile up threads (settings `PURSE_METRICS_CONNECTIONS_MAX`,
`PURSE_METRICS_CONNECTION_TIMEOUT_SECONDS`).
"""

from __future__ import annotations

import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class _QuietHandler(WSGIRequestHandler):
    """No access log; a socket timeout on every read and write (set per endpoint)."""

    def log_message(self, format: str, *args: Any) -> None:
        return


class _BoundedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False

    connections_max = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(self.connections_max)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class MetricsEndpoint:
    """Serves a registry over HTTP in a background thread; `stop()` closes the socket."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        connections_max: int,
        connection_timeout_seconds: float,
    ) -> None:
        self._registry = registry
        self._connections_max = connections_max
        self._connection_timeout_seconds = connection_timeout_seconds
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        endpoint = self

        class _Server(_BoundedServer):
            address_family = family
            connections_max = endpoint._connections_max

        class _Handler(_QuietHandler):
            timeout = endpoint._connection_timeout_seconds

        self._server = make_server(
            self._host,
            self._port,
            make_wsgi_app(self._registry),
            _Server,
            handler_class=_Handler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
