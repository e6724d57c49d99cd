"""The HTTP port: every RPC as HTTP/JSON (`rpc.py`; an export as a file to save,
`downloads.py`), and `/metrics` for Prometheus.

An ASGI application; `server.py` serves it. Routes are not written per method: every
method of the services given is served at its gRPC path, from the handlers the gRPC server
serves. Anything else is answered as a Connect error too (404 for an unknown path, 405 for
a method other than POST on an RPC's path, 415 for a content type the method does not
take, 413 for a body over `request_bytes_max`), so a client sees one error shape.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing, suppress
from typing import Any

import grpc
import orjson
from google.protobuf.message import Message
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from purse.api.grpc.common.surface import Refused
from purse.api.http import json_requests
from purse.api.http.downloads import DOWNLOADS, Download
from purse.api.http.json_answers import message_to_dict
from purse.api.http.rpc import (
    HttpCallContext,
    Receive,
    RpcMethod,
    Scope,
    Send,
    json_content_type,
    metadata_of,
    ndjson_content_type,
    ndjson_requests,
    proto_content_type,
    run_unary,
    transport_error,
)

# Connect-Timeout-Ms longer than this many digits is refused (it is at most 10 digits).
_timeout_digits_max = 10
_logger = logging.getLogger(__name__)
Document = tuple[bytes, str]


class HttpSurface:
    """The ASGI application of the HTTP port."""

    def __init__(
        self,
        methods: Mapping[str, RpcMethod],
        metrics: CollectorRegistry,
        request_bytes_max: int,
        call_seconds_max: float,
        documents: Callable[[str], Document | None] = lambda path: None,
    ) -> None:
        streamed = {path for path, method in methods.items() if method.answered_by_stream}
        assert streamed <= DOWNLOADS.keys(), f"answered by streams, not downloads: {streamed}"
        self._methods = methods
        self._metrics = metrics
        self._request_bytes_max = request_bytes_max
        self._call_seconds_max = call_seconds_max
        self._documents = documents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method = self._methods.get(path)
        if method is None:
            await self._get(scope, send, path)
            return
        if scope["method"] != "POST":
            _, body = transport_error(
                grpc.StatusCode.UNIMPLEMENTED,
                "an RPC is called with POST",
                "HTTP_METHOD_NOT_ALLOWED",
            )
            await _answer(send, 405, body, headers=[(b"allow", b"POST")])
            return
        media_type = _media_type(scope)
        if method.streaming:
            if media_type != ndjson_content_type:
                await _unsupported(send, method, ndjson_content_type)
                return
            await self._stream(method, scope, receive, send)
            return
        if media_type not in (json_content_type, proto_content_type):
            await _unsupported(send, method, json_content_type, proto_content_type)
            return
        if method.answered_by_stream:
            await self._download(method, scope, receive, send, media_type)
            return
        await self._unary(method, scope, receive, send, media_type)

    async def _get(self, scope: Scope, send: Send, path: str) -> None:
        if scope["method"] in ("GET", "HEAD"):
            if path == "/metrics":
                await _answer(send, 200, generate_latest(self._metrics), CONTENT_TYPE_LATEST)
                return
            document = self._documents(path)
            if document is not None:
                await _answer(send, 200, document[0], document[1])
                return
        await _answer(
            send,
            *transport_error(
                grpc.StatusCode.NOT_FOUND, f"nothing is served at {path}", "NOT_FOUND"
            ),
        )

    async def _unary(
        self, method: RpcMethod, scope: Scope, receive: Receive, send: Send, media_type: bytes
    ) -> None:
        seconds = _timeout_seconds(scope, self._call_seconds_max)
        if seconds is None:
            await _answer(
                send,
                *transport_error(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Connect-Timeout-Ms takes a positive whole number of milliseconds",
                    "INVALID_ARGUMENT",
                ),
            )
            return
        context = HttpCallContext(metadata_of(scope), time.monotonic() + seconds)
        request = await self._request(method, scope, receive, send, media_type)
        if request is None:
            return
        status, error, response = await run_unary(method, request, context)
        if response is None:
            await _answer(send, status, error)
        elif media_type == json_content_type:
            await _answer(send, 200, _json(response))
        else:
            await _answer(send, 200, response.SerializeToString(), proto_content_type.decode())

    async def _request(
        self, method: RpcMethod, scope: Scope, receive: Receive, send: Send, media_type: bytes
    ) -> Message | Refused | None:
        """The request message of the body (or its refusal); None when the body was too
        large, which is answered here."""
        body = await _body(scope, receive, self._request_bytes_max)
        if body is None:
            await _too_large(send, self._request_bytes_max)
            return None
        if media_type == json_content_type:
            return json_requests.decode(body, method.request_class)
        deserializer: Any = method.handler.request_deserializer
        decoded: Message | Refused = deserializer(body)
        return decoded

    async def _download(
        self, method: RpcMethod, scope: Scope, receive: Receive, send: Send, media_type: bytes
    ) -> None:
        """A method answered by a stream, as the file its responses' pieces make
        (downloads.py). The call ends when the client goes away: the stream is closed, and
        whatever produces it stops."""
        request = await self._request(method, scope, receive, send, media_type)
        if request is None:
            return
        context = HttpCallContext(metadata_of(scope), math.inf)
        behavior: Any = method.handler.unary_stream
        download = DOWNLOADS[method.path]
        pieces = _pieces(behavior(request, context), download.field)
        sending = asyncio.create_task(_send_file(pieces, context, send, method.path, download))
        gone = asyncio.create_task(_disconnected(receive))
        try:
            await asyncio.wait((sending, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not sending.done():
                sending.cancel()
            with suppress(asyncio.CancelledError):
                await sending

    async def _stream(self, method: RpcMethod, scope: Scope, receive: Receive, send: Send) -> None:
        context = HttpCallContext(metadata_of(scope), math.inf)
        behavior: Any = method.handler.stream_stream
        requests = ndjson_requests(receive, method.request_class, self._request_bytes_max)
        started = False
        async for response in behavior(requests, context):
            if not started:
                await _start(send, 200, ndjson_content_type.decode())
                started = True
            line = _json(response) + b"\n"
            await send({"type": "http.response.body", "body": line, "more_body": True})
        error = context.error()
        if not started:
            if error is not None:
                await _answer(send, *error)
                return
            await _start(send, 200, ndjson_content_type.decode())
        last = b"" if error is None else b'{"error":' + error[1] + b"}\n"
        await send({"type": "http.response.body", "body": last, "more_body": False})


async def _pieces(responses: AsyncGenerator[Any, None], field: str) -> AsyncGenerator[bytes, None]:
    async with aclosing(responses):
        async for response in responses:
            piece: bytes = getattr(response, field)
            yield piece


async def _send_file(
    pieces: AsyncGenerator[bytes, None],
    context: HttpCallContext,
    send: Send,
    path: str,
    download: Download,
) -> None:
    """The pieces as one body. A refusal before the first is the call's error response;
    one after it leaves the body without its last chunk (uvicorn then closes the
    connection), so that no client takes a file cut short for a whole one."""
    sent = 0
    async with aclosing(pieces):
        async for piece in pieces:
            if not sent:
                await _start(send, 200, download.media_type, download.headers())
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    error = context.error()
    if error is not None and not sent:
        await _answer(send, *error)
        return
    if error is not None:
        _logger.warning(
            "the download of %s ended after %d bytes: %s; its connection is closed",
            path,
            sent,
            error[1].decode(),
        )
        return
    if not sent:
        await _start(send, 200, download.media_type, download.headers())
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (the request's body has been read before)."""
    while (await receive())["type"] != "http.disconnect":
        continue


def _json(message: Message) -> bytes:
    return orjson.dumps(message_to_dict(message))


def _media_type(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type
    return b""


def _timeout_seconds(scope: Scope, seconds_max: float) -> float | None:
    """The call's time: the server's limit, or the caller's Connect-Timeout-Ms if shorter;
    None when that header is not a positive whole number."""
    for name, value in scope["headers"]:
        if name == b"connect-timeout-ms":
            if not value.isdigit() or len(value) > _timeout_digits_max or int(value) == 0:
                return None
            return min(int(value) / 1000, seconds_max)
    return seconds_max


async def _body(scope: Scope, receive: Receive, bytes_max: int) -> bytes | None:
    """The request body, or None when it is longer than `bytes_max` (not read further)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > bytes_max:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] != "http.request":
            return b""
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > bytes_max:
            return None
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


async def _too_large(send: Send, bytes_max: int) -> None:
    _, body = transport_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the body is larger than {bytes_max} bytes",
        "REQUEST_TOO_LARGE",
    )
    await _answer(send, 413, body, headers=[(b"connection", b"close")])


async def _unsupported(send: Send, method: RpcMethod, *accepted: bytes) -> None:
    names = ", ".join(media_type.decode() for media_type in accepted)
    _, body = transport_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{method.path} takes Content-Type {names}",
        "CONTENT_TYPE_UNSUPPORTED",
    )
    await _answer(send, 415, body, headers=[(b"accept-post", b", ".join(accepted))])


async def _start(
    send: Send, status: int, content_type: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), *(headers or ())],
        }
    )


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await _start(
        send, status, content_type, [(b"content-length", str(len(body)).encode()), *(headers or ())]
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
