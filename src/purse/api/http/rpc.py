"""Every RPC over HTTP/1.1: the Connect protocol's unary form, and NDJSON for the stream.

A call is `POST /<service>/<Method>` (`/purse.v1.TerminalService/IdentifyCustomer`) with
the request message in protobuf's canonical JSON mapping (`Content-Type:
application/json`) or its binary form (`application/proto`), answered 200 with the
response in the same form. That is the Connect protocol's unary call, so `curl` and the
Connect clients of other languages speak it as they are. The bidirectional
`ProcessChecks` takes `application/x-ndjson`: one request message a line, answered by one
response message a line as each is ready; a failure that ends the stream after answers
were sent is a last line `{"error": {...}}`, before that it is the call's error response.
A method answering one request with a stream of pieces of a file (`ExportCustomers`) is
a download: the request as for a unary call, the answer the file itself (downloads.py).

A call runs the handler the gRPC server runs (the servicer method behind the same
interceptors: authentication from `Authorization: Bearer`, validation, idempotency,
metrics) with `HttpCallContext` standing in for grpc.aio's context. An error is the
google.rpc.Status the gRPC call would end with, as Connect's error JSON: `code` (the
status name in lower case), `message`, and `details` (each google.rpc detail as `type`,
`value` in base64, and `debug`, the detail in canonical JSON), with the HTTP status
google.rpc.Code gives each code (AIP-193: 400, 401, 403, 404, 409, 429, 500, 503, 504...).

Limits: a body (a stream: a line) larger than `request_bytes_max` is refused 413 without
being read; a unary call, body included, has `call_seconds_max` (or the caller's shorter
`Connect-Timeout-Ms`) before it is answered DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from google.protobuf import any_pb2, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from purse.api.grpc.common.errors import error_domain, rich_status
from purse.api.grpc.common.interceptors import Handler
from purse.api.grpc.common.surface import Refused
from purse.api.http import json_requests
from purse.api.http.json_answers import message_to_dict
from purse.domain.errors import DomainError, InvalidArgument, TimedOut
from purse.domain.reasons import Status

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

json_content_type = b"application/json"
proto_content_type = b"application/proto"
ndjson_content_type = b"application/x-ndjson"
_status_details_key = "grpc-status-details-bin"
# The google.rpc details Purse's errors carry (rich_status), by full name, each shown
# decoded as `debug`; any other would be shown as its bytes only.
_detail_classes: Mapping[str, type[Message]] = {
    detail.DESCRIPTOR.full_name: detail
    for detail in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.RetryInfo,
    )
}

# google.rpc.Code's HTTP mapping (AIP-193), as Connect uses it.
HTTP_STATUS_BY_CODE: Mapping[grpc.StatusCode, int] = {
    code: Status(code.value[0]).http_status
    for code in grpc.StatusCode
    if code is not grpc.StatusCode.OK
}
_codes_by_number = {code.value[0]: code for code in grpc.StatusCode}


class HttpCallContext:
    """What a servicer asks of grpc.aio's context, answered for an HTTP call: the
    request's headers as metadata, the time left, and an abort that is remembered."""

    __slots__ = ("_code", "_deadline", "_details", "_metadata", "_trailing")

    def __init__(self, metadata: tuple[tuple[str, str], ...], deadline: float) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: tuple[tuple[str, str | bytes], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> float:
        return max(self._deadline - time.monotonic(), 0.0)

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        self._code = code
        self._details = details
        self._trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError()

    def error(self) -> tuple[int, bytes] | None:
        """(HTTP status, Connect error JSON) of the abort, if the call was aborted."""
        if self._code is None:
            return None
        return error_body(_status(self._code, self._details, self._trailing))


def _status(
    code: grpc.StatusCode, details: str, trailing: Iterable[tuple[str, str | bytes]]
) -> status_pb2.Status:
    """The google.rpc.Status an abort carries (its details trailer), or its bare code."""
    for key, value in trailing:
        if key == _status_details_key and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return status_pb2.Status(code=code.value[0], message=details)


def error_body(status: status_pb2.Status) -> tuple[int, bytes]:
    """(HTTP status, Connect error JSON) of a google.rpc.Status."""
    code = _codes_by_number.get(status.code, grpc.StatusCode.UNKNOWN)
    return HTTP_STATUS_BY_CODE[code], orjson.dumps(error_document(status))


def error_document(status: status_pb2.Status) -> dict[str, Any]:
    code = _codes_by_number.get(status.code, grpc.StatusCode.UNKNOWN)
    details = []
    for packed in status.details:
        type_name = packed.TypeName()
        detail: dict[str, Any] = {
            "type": type_name,
            "value": base64.b64encode(packed.value).decode().rstrip("="),
        }
        detail_class = _detail_classes.get(type_name)
        if detail_class is not None:
            unpacked = detail_class.FromString(packed.value)
            detail["debug"] = message_to_dict(unpacked)
        details.append(detail)
    document: dict[str, Any] = {"code": code.name.lower(), "message": status.message}
    if details:
        document["details"] = details
    return document


def refusal_body(refusal: DomainError) -> tuple[int, bytes]:
    """(HTTP status, Connect error JSON) of a refusal made here, not by a servicer."""
    status = rich_status(refusal)
    return error_body(_status(status.code, status.details, status.trailing_metadata))


def transport_error(code: grpc.StatusCode, message: str, reason: str) -> tuple[int, bytes]:
    """(HTTP status, Connect error JSON) of a request HTTP itself refuses (no such
    method, a content type not served...): the message and an ErrorInfo."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=error_domain)
    packed = any_pb2.Any()
    packed.Pack(info)
    return error_body(status_pb2.Status(code=code.value[0], message=message, details=[packed]))


@dataclass(frozen=True, slots=True)
class RpcMethod:
    """One method as HTTP serves it: its messages and its wrapped gRPC handler."""

    path: str
    request_class: type[Message]
    response_class: type[Message]
    handler: Handler

    @property
    def streaming(self) -> bool:
        """A stream each way (NDJSON over HTTP)."""
        return self.handler.stream_stream is not None

    @property
    def answered_by_stream(self) -> bool:
        """One request answered by a stream (a download over HTTP: downloads.py)."""
        return self.handler.unary_stream is not None


def rpc_method(descriptor: MethodDescriptor, handler: Handler) -> RpcMethod:
    """The method `descriptor` describes, served by `handler`."""
    return RpcMethod(
        f"/{descriptor.containing_service.full_name}/{descriptor.name}",
        message_factory.GetMessageClass(descriptor.input_type),
        message_factory.GetMessageClass(descriptor.output_type),
        handler,
    )


def metadata_of(scope: Scope) -> tuple[tuple[str, str], ...]:
    """The request's headers as gRPC metadata (names in lower case, text values)."""
    return tuple(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
    )


async def run_unary(
    method: RpcMethod, request: Message | Refused, context: HttpCallContext
) -> tuple[int, bytes, Message | None]:
    """(HTTP status, error body, response) of one unary call."""
    behavior: Any = method.handler.unary_unary
    try:
        async with asyncio.timeout(context.time_remaining()):
            response = await behavior(request, context)
    except TimeoutError:
        status, body = refusal_body(
            TimedOut("the call took longer than its deadline", reason="TIMED_OUT")
        )
        return status, body, None
    answer = context.error()
    if answer is not None:
        return answer[0], answer[1], None
    assert isinstance(response, method.response_class), "a handler answered nothing"
    return 200, b"", response


async def ndjson_requests(
    receive: Receive, request_class: type[Message], line_bytes_max: int
) -> AsyncIterator[Message | Refused]:
    """Request messages, one a line of the body, as they arrive; a line too long or not
    a message is a Refused (the request surface ends the stream with it)."""
    pending = b""
    more = True
    while more:
        event = await receive()
        if event["type"] != "http.request":
            return
        pending += event.get("body", b"")
        more = bool(event.get("more_body", False))
        *lines, pending = pending.split(b"\n")
        if not more:
            lines.append(pending)
        for line in lines:
            if line.strip():
                yield json_requests.decode(line, request_class)
        if len(pending) > line_bytes_max:
            yield Refused(
                InvalidArgument(
                    message=f"a line of the stream is longer than {line_bytes_max} bytes",
                    reason="REQUEST_TOO_LARGE",
                )
            )
            return
