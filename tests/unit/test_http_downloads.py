"""A download over the HTTP port, driven through the ASGI application itself: the pieces as
one body with the file's headers, a refusal before the first piece as the call's error, a
failure after it leaving the body without its end, and a client gone closing the stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from purse.admin.v1 import admin_service_pb2 as admin
from purse.api.grpc.common.aborts import AbortRelease
from purse.api.grpc.common.handlers import behind
from purse.api.http.app import HttpSurface
from purse.api.http.rpc import RpcMethod

path = "/purse.admin.v1.AdminService/ExportCustomers"


class Client:
    """Sends one request and records what the application sends back; goes away after
    `pieces_before_leaving` pieces, if given."""

    def __init__(self, pieces_before_leaving: int | None = None) -> None:
        self.sent: list[Mapping[str, Any]] = []
        self._pieces_before_leaving = pieces_before_leaving
        self._asked = False
        self._gone = asyncio.Event()

    async def receive(self) -> Mapping[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)
        pieces = sum(1 for sent in self.sent if sent.get("more_body"))
        if self._pieces_before_leaving is not None and pieces >= self._pieces_before_leaving:
            self._gone.set()
        await asyncio.sleep(0)  # a socket write gives the loop a turn

    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status

    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    def body(self) -> bytes:
        return b"".join(sent.get("body", b"") for sent in self.sent[1:])

    def ended(self) -> bool:
        return self.sent[-1]["type"] == "http.response.body" and not self.sent[-1]["more_body"]


def surface(behavior: Any) -> HttpSurface:
    handler = grpc.unary_stream_rpc_method_handler(
        behavior,
        request_deserializer=admin.ExportCustomersRequest.FromString,
        response_serializer=admin.ExportCustomersResponse.SerializeToString,
    )
    method = RpcMethod(
        path,
        admin.ExportCustomersRequest,
        admin.ExportCustomersResponse,
        behind([AbortRelease()], path, handler),
    )
    return HttpSurface({path: method}, CollectorRegistry(), 4096, 30.0)


async def call(application: HttpSurface, client: Client) -> None:
    scope = {
        "type": "http",
        "path": path,
        "method": "POST",
        "headers": [(b"content-type", b"application/json")],
    }
    await application(scope, client.receive, client.send)


async def test_the_pieces_are_one_body_with_the_file_s_headers() -> None:
    async def behavior(request: Any, context: Any) -> AsyncGenerator[Any, None]:
        for text in (b"\xef\xbb\xbfcustomer_id\n", b"1\n2\n", b"3\n"):
            yield admin.ExportCustomersResponse(csv=text)

    client = Client()
    await call(surface(behavior), client)

    assert client.status() == 200 and client.ended()
    assert client.headers()[b"content-type"] == b"text/csv; charset=utf-8"
    assert client.headers()[b"content-disposition"] == b'attachment; filename="customers.csv"'
    assert client.headers()[b"cache-control"] == b"no-store"
    assert client.body() == b"\xef\xbb\xbfcustomer_id\n1\n2\n3\n"


async def test_a_refusal_before_the_first_piece_is_the_call_s_error() -> None:
    async def behavior(request: Any, context: Any) -> AsyncGenerator[Any, None]:
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
        yield admin.ExportCustomersResponse()

    client = Client()
    await call(surface(behavior), client)

    assert client.status() == 429 and client.ended()
    assert client.headers()[b"content-type"] == b"application/json"
    assert json.loads(client.body()) == {"code": "resource_exhausted", "message": "busy"}


async def test_a_failure_after_the_first_piece_leaves_the_body_without_its_end() -> None:
    async def behavior(request: Any, context: Any) -> AsyncGenerator[Any, None]:
        yield admin.ExportCustomersResponse(csv=b"customer_id\n1\n")
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the database went away")

    client = Client()
    await call(surface(behavior), client)

    assert client.status() == 200 and not client.ended()
    assert client.body() == b"customer_id\n1\n"


async def test_a_client_gone_closes_the_stream_and_ends_the_call() -> None:
    closed = asyncio.Event()

    async def behavior(request: Any, context: Any) -> AsyncGenerator[Any, None]:
        try:
            while True:
                yield admin.ExportCustomersResponse(csv=b"1\n")
        finally:
            closed.set()

    client = Client(pieces_before_leaving=3)
    await call(surface(behavior), client)

    assert closed.is_set() and not client.ended()
    assert client.body().startswith(b"1\n1\n1\n")
