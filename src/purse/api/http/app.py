"""The HTTP port: every RPC as HTTP/JSON (`rpc.py`), and `/metrics` for Prometheus.

An ASGI application; `server.py` serves it. Routes are not written per method: every
method of the services given is served at its gRPC path, from the handlers the gRPC server
serves. Anything else is answered as a Connect error too (404 for an unknown path, 405 for
a method other than POST on an RPC's path, 415 for a content type the method does not
take, 413 for a body over `request_bytes_max`), so a client sees one error shape.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import orjson
from google.protobuf.message import Message
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from purse.api.grpc.common.surface import Refused
from purse.api.http import json_requests
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
        body = await _body(scope, receive, self._request_bytes_max)
        if body is None:
            await _too_large(send, self._request_bytes_max)
            return
        request: Message | Refused
        if media_type == json_content_type:
            request = json_requests.decode(body, method.request_class)
        else:
            deserializer: Any = method.handler.request_deserializer
            request = deserializer(body)
        status, error, response = await run_unary(method, request, context)
        if response is None:
            await _answer(send, status, error)
        elif media_type == json_content_type:
            await _answer(send, 200, _json(response))
        else:
            await _answer(send, 200, response.SerializeToString(), proto_content_type.decode())

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
