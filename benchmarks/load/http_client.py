"""A small HTTP/1.1 client for the load generator: POSTs on kept-alive connections.

Contract:

- `HttpConnections` holds up to `connections_max` connections to one address, opened as
  calls need them and kept alive between calls; a call takes an idle one, or opens one
  while fewer are open, or waits for one to come back (the wait is part of the call).
  One request at a time per connection (no pipelining), as browsers and HTTP libraries
  send.
- A request is sent as prepared bytes (`HttpRequest`: the head written once, each call
  adding its Content-Length and body); a response is read by httptools' parser (the
  C parser Purse's HTTP server uses), so Content-Length and chunked bodies both end it.
  Only the status and the body are kept.
- A connection whose answer ends it (`Connection: close`, an error of the parser, the peer
  closing) is closed and forgotten; the next call opens a new one.
- `code_name(status, body)` turns an answer into the gRPC status code name the load
  report counts calls by: OK for 2xx, else the Connect error JSON's `code`, else the
  Connect protocol's code for the HTTP status alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast

import httptools
import orjson

# The Connect protocol's code for an HTTP status when the body carries none (its
# specification's "HTTP to Error Code" table); any other status is UNKNOWN.
CODE_BY_HTTP_STATUS: Mapping[int, str] = {
    400: "INTERNAL",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    429: "UNAVAILABLE",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}
# The Connect codes, as gRPC names them (Connect writes them in lower case).
_code_names = frozenset(
    {
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)


def code_name(status: int, body: bytes) -> str:
    """The gRPC status code name of an answer: OK for 2xx; otherwise the `code` of its
    Connect error JSON, or, when the body is not one, the Connect code of `status`."""
    if 200 <= status < 300:
        return "OK"
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    code = document.get("code") if isinstance(document, dict) else None
    if isinstance(code, str) and code.upper() in _code_names:
        return code.upper()
    return CODE_BY_HTTP_STATUS.get(status, "UNKNOWN")


class HttpRequest:
    """POST requests to one path, their head prepared once."""

    def __init__(self, address: str, path: str, headers: Mapping[str, str]) -> None:
        lines = [f"POST {path} HTTP/1.1", f"host: {address}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\ncontent-length: ").encode("latin-1")

    def bytes_for(self, body: bytes) -> bytes:
        return b"%b%d\r\n\r\n%b" % (self._head, len(body), body)


class ConnectionClosed(ConnectionError):
    """The connection ended before its answer did."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection: a request written, its response parsed as it comes."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are its kind.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionClosed(f"an answer HTTP cannot parse: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(ConnectionClosed("the server closed the connection"))

    # httptools' callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.close()
        answer, self._answer = self._answer, None
        body, self._body = b"".join(self._body), []
        if answer is not None and not answer.done():
            answer.set_result((self._parser.get_status_code(), body))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send `request`; its answer's status and body."""
        assert self._transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._answer

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _fail(self, error: ConnectionClosed) -> None:
        self.close()
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)


class HttpConnections:
    """Up to `connections_max` kept-alive connections to `host:port`, lent one call each."""

    def __init__(self, address: str, connections_max: int) -> None:
        host, _, port = address.rpartition(":")
        self._host = host
        self._port = int(port)
        self._lent = asyncio.Semaphore(connections_max)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """One request on a connection of the pool; its answer's status and body.
        Raises ConnectionError (the connection is dropped) or the caller's cancellation."""
        async with self._lent:
            connection = await self._connection()
            try:
                answer = await connection.exchange(request)
            except BaseException:
                self._drop(connection)
                raise
            if connection.reusable:
                self._idle.append(connection)
            else:
                self._drop(connection)
            return answer

    async def _connection(self) -> _Connection:
        """An idle connection still open, or a new one."""
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:
                return connection
            self._drop(connection)  # closed by the server while it was idle
        connection = _Connection()
        self._open.add(connection)
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: connection, self._host, self._port
            )
        except BaseException:
            self._open.discard(connection)
            raise
        return connection

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def close(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
