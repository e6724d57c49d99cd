"""Tracing in-process, on the SDK's in-memory exporter: what turns it on, the log lines
that carry a span's ids, and the spans of the batch writer and of the unary front's
groups, linked to the calls they carry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import cast

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from purse.config import SettingError
from purse.domain.settlement import Statistics
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import Effects, TransactionStatus
from purse.logs import JsonFormatter, TextFormatter
from purse.service.batch_writer import BatchWriter
from purse.service.operations import Outcome, Sale, Transition
from purse.service.terminal.checkout import Checkout, ProcessRequest
from purse.service.terminal.unary_processing import UnaryProcessing
from purse.tracing import traces_exporter

business_id = 7


@pytest.mark.parametrize(
    ("environment", "exporter"),
    [
        ({}, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ""),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, ""),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "otlp"),
    ],
)
def test_tracing_is_on_only_when_an_exporter_or_an_endpoint_is_configured(
    environment: dict[str, str], exporter: str
) -> None:
    assert traces_exporter(environment) == exporter


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
    ],
)
def test_a_tracing_setting_purse_cannot_use_is_refused_naming_its_variable(
    environment: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingError, match=variable):
        traces_exporter(environment)


@pytest.fixture
def exported() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("purse.test", logging.INFO, __file__, 1, message, None, None)


def test_a_json_log_line_carries_the_current_spans_trace_and_span_ids(
    exported: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, _ = exported
    with tracer.start_as_current_span("call") as span:
        line = JsonFormatter().format(record("inside"))
    context = span.get_span_context()
    assert f'"trace_id": "{context.trace_id:032x}"' in line
    assert f'"span_id": "{context.span_id:016x}"' in line
    assert "trace_id" not in JsonFormatter().format(record("outside"))


def test_a_text_log_line_ends_with_the_current_spans_ids(
    exported: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, _ = exported
    with tracer.start_as_current_span("call") as span:
        line = TextFormatter().format(record("inside"))
    context = span.get_span_context()
    assert line.endswith(f"inside trace_id={context.trace_id:032x} span_id={context.span_id:016x}")
    assert TextFormatter().format(record("outside")).endswith("purse.test: outside")


class HeldStore:
    """A BatchApply whose first batch waits until it is let go; every sale is applied."""

    def __init__(self) -> None:
        self.let_go = asyncio.Event()
        self.batches: list[list[str]] = []

    async def apply(
        self, business_id: int, sales: Sequence[Sale], transitions: Sequence[Transition]
    ) -> tuple[list[Outcome], list[Outcome]]:
        self.batches.append([sale.check_number for sale in sales])
        await self.let_go.wait()
        return [Outcome(transaction_id=number) for number, _ in enumerate(sales, 1)], []


def a_sale(number: str) -> Sale:
    return Sale(
        terminal_id=1,
        point_of_sale_id=1,
        check_number=number,
        request_digest=number.encode(),
        customer_id=1,
        status=TransactionStatus.COMPLETED,
        receipt=None,
        sum_minor_units=1_000,
        effects=Effects(pockets=()),
        statistics=Statistics(1, 1, 1_000),
    )


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run other tasks until `condition` holds (bounded)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def test_a_batch_is_a_span_of_its_own_linked_to_each_call_it_carries(
    exported: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    store = HeldStore()
    writer = BatchWriter(store, 500, 1_000, 1, tracer=tracer)
    writer.start()

    submitting: list[str] = []

    async def call(number: str) -> None:
        with tracer.start_as_current_span(f"call {number}"):
            # From here to the wait for its outcome nothing suspends: once the test sees
            # the number, the operation is queued.
            submitting.append(number)
            await writer.submit(business_id, a_sale(number), 5)

    # The first call's batch is held, so the next two calls queue and leave together.
    first = asyncio.create_task(call("1"))
    await until(lambda: store.batches == [["1"]])
    others = [asyncio.create_task(call(number)) for number in ("2", "3")]
    await until(lambda: len(submitting) == 3)
    store.let_go.set()
    await asyncio.gather(first, *others)
    await writer.close()

    assert store.batches == [["1"], ["2", "3"]]
    calls = {span.name: span for span in exporter.get_finished_spans() if span.name[:4] == "call"}
    batches = spans_named(exporter, "batch write")
    assert len(batches) == 2
    together = next(span for span in batches if len(span.links) == 2)
    linked = {link.context.span_id for link in together.links}
    assert linked == {calls["call 2"].context.span_id, calls["call 3"].context.span_id}
    assert together.parent is None
    assert together.context.trace_id not in {span.context.trace_id for span in calls.values()}
    for name in ("call 2", "call 3"):
        assert [link.context.span_id for link in calls[name].links] == [together.context.span_id]


async def test_without_a_tracer_the_batch_writer_makes_no_span(
    exported: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    store = HeldStore()
    store.let_go.set()
    writer = BatchWriter(store, 500, 1_000, 1)
    writer.start()
    with tracer.start_as_current_span("call"):
        await writer.submit(business_id, a_sale("1"), 5)
    await writer.close()
    assert [span.name for span in exporter.get_finished_spans()] == ["call"]
    assert not exporter.get_finished_spans()[0].links


class HeldCheckout:
    """Checkout's part the unary front uses: the first group waits until it is let go; each
    group records the span current while it works."""

    def __init__(self) -> None:
        self.let_go = asyncio.Event()
        self.current: list[trace.Span] = []

    def validate(self, request: ProcessRequest) -> None:
        return

    async def process_group(
        self, terminal: TerminalContext, requests: Sequence[ProcessRequest]
    ) -> list[object]:
        self.current.append(trace.get_current_span())
        await self.let_go.wait()
        return [object() for _ in requests]


async def test_a_group_of_unary_calls_works_in_its_one_calls_trace_or_under_a_linked_span(
    exported: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    checkout = HeldCheckout()
    unary = UnaryProcessing(cast(Checkout, checkout), 200, 1_000, 1, tracer)
    unary.start()
    terminal = cast(TerminalContext, SimpleNamespace(terminal_id=1))
    calling: list[str] = []

    async def call(number: str) -> None:
        with tracer.start_as_current_span(f"call {number}"):
            calling.append(number)
            await unary.process(terminal, cast(ProcessRequest, object()), 5)

    first = asyncio.create_task(call("1"))
    await until(lambda: len(checkout.current) == 1)
    others = [asyncio.create_task(call(number)) for number in ("2", "3")]
    await until(lambda: len(calling) == 3)
    checkout.let_go.set()
    await asyncio.gather(first, *others)
    await unary.close()

    calls = {span.name: span for span in exporter.get_finished_spans() if span.name[:4] == "call"}
    alone, together = checkout.current
    assert alone.get_span_context() == calls["call 1"].context
    (group,) = spans_named(exporter, "ProcessCheck group")
    assert together.get_span_context() == group.context
    assert {link.context.span_id for link in group.links} == {
        calls["call 2"].context.span_id,
        calls["call 3"].context.span_id,
    }
    assert group.parent is None
