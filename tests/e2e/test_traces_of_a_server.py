"""Traces of a real `purse serve`, sent by OTLP/HTTP to a receiver in the test.

The server is configured as an operator would configure it, by OpenTelemetry's own
variables; the receiver decodes what it is posted (protobuf, as a collector would). The
server is stopped before anything is read: stopping exports every span still buffered,
so nothing waits on the exporter's schedule. A second server, configured for nothing,
shows that tracing is off by default.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from support import ServerProcess, bearer, make_business_through_api, new_phone, side_server
from test_transactions import sale

from purse.config import Settings
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

Span = trace_pb2.Span
process_check = "/purse.v1.TerminalService/ProcessCheck"
settings_path = "/purse.v1.TerminalService/GetTerminalSettings"
# Nothing configured: the variables that would turn tracing on, set empty.
tracing_unset = {
    "OTEL_TRACES_EXPORTER": "",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
}


class Receiver:
    """An OTLP/HTTP trace receiver on a free loopback port: keeps what it is posted."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *arguments: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[Span]:
        return [
            span
            for request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def service_names(self) -> set[str]:
        return {
            attribute.value.string_value
            for request in self.requests
            for resource_spans in request.resource_spans
            for attribute in resource_spans.resource.attributes
            if attribute.key == "service.name"
        }


@dataclass(frozen=True)
class Caller:
    """A trace the test starts: the `traceparent` a traced client would send."""

    trace_id: bytes
    span_id: bytes

    @staticmethod
    def new() -> Caller:
        return Caller(secrets.token_bytes(16), secrets.token_bytes(8))

    def metadata(self) -> tuple[str, str]:
        return ("traceparent", f"00-{self.trace_id.hex()}-{self.span_id.hex()}-01")


@dataclass(frozen=True)
class TracedRun:
    """What a traced server sent and logged for the calls of `_traced_calls`."""

    spans: list[Span]
    service_names: set[str]
    log_lines: list[dict[str, Any]]
    sale: Caller
    refused: Caller
    over_http: Caller
    stream: Caller

    def server_span(self, caller: Caller) -> Span:
        (span,) = [
            span
            for span in self.spans
            if span.trace_id == caller.trace_id and span.parent_span_id == caller.span_id
        ]
        return span


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


async def _traced_calls(server: ServerProcess, pool: asyncpg.Pool) -> tuple[Caller, ...]:
    """A sale, a refused check, an HTTP call and a stream of one message, each continuing
    a trace of its own."""
    sale_call, refused, over_http, stream = (Caller.new() for _ in range(4))
    async with grpc.aio.insecure_channel(server.target) as channel:
        business = await make_business_through_api(channel, pool)
        stub: TerminalServiceAsyncStub = TerminalServiceStub(channel)
        till = bearer(business.cash_desk.api_key)
        await stub.ProcessCheck(
            sale("traced-1", new_phone()), metadata=(*till, sale_call.metadata())
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ProcessCheck(sale(""), metadata=(*till, refused.metadata()))
        checks = stub.ProcessChecks(metadata=(*till, stream.metadata()), timeout=30)
        await checks.write(pb.ProcessChecksRequest(checks=[sale("traced-2", new_phone())]))
        answer = await checks.read()
        assert isinstance(answer, pb.ProcessChecksResponse)
        assert answer.results[0].HasField("processed")
        await checks.done_writing()
        assert await checks.read() == grpc.aio.EOF
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}{settings_path}",
        data=b"{}",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {business.cash_desk.api_key}",
            over_http.metadata()[0]: over_http.metadata()[1],
        },
    )
    answered = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=5))
    with answered:
        assert answered.status == 200
    return sale_call, refused, over_http, stream


@pytest.fixture(scope="module")
async def traced(
    infrastructure: Settings, pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TracedRun]:
    with Receiver() as receiver:
        server = side_server(
            infrastructure.database_url,
            infrastructure.redis_url,
            tmp_path_factory.mktemp("traced"),
            {**tracing_unset, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
            LOG_FORMAT="json",
            LOG_LEVEL="DEBUG",
        ).start()
        try:
            callers = await _traced_calls(server, pool)
        finally:
            assert server.stop() == 0, server.log()
        yield TracedRun(receiver.spans(), receiver.service_names(), log_lines(server), *callers)


def descends_from(span: Span, ancestor: Span, spans: list[Span]) -> bool:
    by_id = {candidate.span_id: candidate for candidate in spans}
    current: Span | None = span
    while current is not None and current.parent_span_id:
        if current.parent_span_id == ancestor.span_id:
            return True
        current = by_id.get(current.parent_span_id)
    return False


def statements_under(root: Span, spans: list[Span]) -> list[Span]:
    """The client spans of asyncpg's instrumentation in `root`'s trace; asserts there are
    some, and that each descends from `root`."""
    found = [
        span
        for span in spans
        if span.trace_id == root.trace_id
        and span.kind == Span.SPAN_KIND_CLIENT
        and any(attribute.key.startswith("db.") for attribute in span.attributes)
    ]
    assert found
    assert all(descends_from(span, root, spans) for span in found)
    return found


async def test_a_process_check_is_a_server_span_that_continues_the_callers_trace(
    traced: TracedRun,
) -> None:
    call = traced.server_span(traced.sale)
    assert call.name == process_check
    assert call.kind == Span.SPAN_KIND_SERVER
    assert call.status.code != trace_pb2.Status.STATUS_CODE_ERROR
    assert traced.service_names == {"purse"}


async def test_the_statements_of_a_process_check_are_spans_of_its_trace(
    traced: TracedRun,
) -> None:
    statements_under(traced.server_span(traced.sale), traced.spans)


async def test_the_batch_that_wrote_a_process_check_is_a_span_linked_to_the_call(
    traced: TracedRun,
) -> None:
    call = traced.server_span(traced.sale)
    (batch,) = [
        span
        for span in traced.spans
        if span.name == "batch write" and any(link.span_id == call.span_id for link in span.links)
    ]
    # A trace of its own (it may serve many calls), which the call links back to.
    assert batch.trace_id != call.trace_id
    assert not batch.parent_span_id
    assert [link.trace_id for link in batch.links] == [call.trace_id]
    assert batch.span_id in {link.span_id for link in call.links}
    statements_under(batch, traced.spans)


async def test_a_stream_message_is_a_trace_of_its_own_linked_to_the_stream(
    traced: TracedRun,
) -> None:
    stream = traced.server_span(traced.stream)
    assert stream.name == "/purse.v1.TerminalService/ProcessChecks"
    (message,) = [span for span in traced.spans if span.name == "ProcessChecks message"]
    assert message.trace_id != stream.trace_id
    assert not message.parent_span_id
    # Its statements hang off the message; its batch links to it, and it to its batch.
    statements_under(message, traced.spans)
    (batch,) = [
        span
        for span in traced.spans
        if span.name == "batch write" and [link.span_id for link in span.links] == [message.span_id]
    ]
    assert {link.span_id for link in message.links} == {stream.span_id, batch.span_id}


async def test_a_refused_calls_log_line_carries_its_trace_and_span_ids(
    traced: TracedRun,
) -> None:
    call = traced.server_span(traced.refused)
    assert call.name == process_check
    (refusal,) = [
        line
        for line in traced.log_lines
        if line["message"].startswith("refused") and line.get("trace_id") == call.trace_id.hex()
    ]
    assert refusal["span_id"] == call.span_id.hex()
    assert "INVALID_ARGUMENT" in refusal["message"]


async def test_an_http_json_call_is_a_server_span_of_the_callers_trace(traced: TracedRun) -> None:
    call = traced.server_span(traced.over_http)
    assert call.kind == Span.SPAN_KIND_SERVER
    assert call.name == f"POST {settings_path}"


async def test_health_checks_and_scrapes_make_no_spans(traced: TracedRun) -> None:
    names = {span.name for span in traced.spans}
    assert not [name for name in names if "grpc.health" in name or "metrics" in name]
    # ... while the server was asked for its health until it served (ServerProcess).
    assert any(span.name.startswith("/purse.") for span in traced.spans)


@pytest.fixture(scope="module")
def untraced(
    infrastructure: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = side_server(
        infrastructure.database_url,
        infrastructure.redis_url,
        tmp_path_factory.mktemp("untraced"),
        tracing_unset,
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
    ).start()
    yield server
    assert server.stop() == 0, server.log()


async def test_without_configuration_no_call_is_traced(
    untraced: ServerProcess, pool: asyncpg.Pool
) -> None:
    caller = Caller.new()
    async with grpc.aio.insecure_channel(untraced.target) as channel:
        business = await make_business_through_api(channel, pool)
        stub: TerminalServiceAsyncStub = TerminalServiceStub(channel)
        till = bearer(business.cash_desk.api_key)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ProcessCheck(sale(""), metadata=(*till, caller.metadata()))
    refusals = [line for line in log_lines(untraced) if line["message"].startswith("refused")]
    assert refusals
    # Even the caller's own trace is not continued: no span is ever current.
    assert not [line for line in log_lines(untraced) if "trace_id" in line]
