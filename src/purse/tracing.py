"""OpenTelemetry traces: off unless configured, and then through the kept SDK.

Configured by OpenTelemetry's own environment variables, as any service with an
OpenTelemetry SDK is. Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter
(`otlp`, or `console` to print spans on stdout), or, with that variable unset, when an
OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns it off whatever else is
set. OTLP goes as protobuf over HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf`, its
default; another protocol is refused at start, naming the variable). The rest is the SDK's
own: `OTEL_SERVICE_NAME` (default `purse`), `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_BSP_*`, `OTEL_SPAN_LINK_COUNT_LIMIT`,
`OTEL_PROPAGATORS`, `OTEL_EXPORTER_OTLP_HEADERS` and the rest.

What is traced when it is on (`Tracing`):
- every call of Purse's services over gRPC: a server span (opentelemetry-instrumentation-
  grpc's interceptor for grpc.aio), continuing the caller's trace (`traceparent`);
- every request on the HTTP port but `/metrics`: a server span (ASGI instrumentation);
- every statement sent through asyncpg: a client span, the child of what is current;
- every batch the batch writer commits, and every group of unary ProcessCheck calls that
  share their reads: a span of its own, linked to the span of each call it carries (a
  batch serves many traces, so it belongs to none of them);
- the server's background loops (health probes, sweeps, the outbox dispatcher, bulk
  actions' polls) run with instrumentation suppressed (`untraced`): each would make a
  trace of one statement every second or so.

When it is off nothing is installed: no interceptor, no middleware, asyncpg's methods are
not wrapped, and the batch writer and the unary front take no tracer; a call costs what
it cost before tracing existed.
"""

from __future__ import annotations

import os
from collections.abc import Coroutine, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from opentelemetry import context, trace

from purse.config import SettingError

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

Result = TypeVar("Result")
default_service_name = "purse"
# The exporters Purse builds; `none` (or nothing configured) is off.
traces_exporters = ("otlp", "console", "none")
otlp_protocols = ("http/protobuf",)
# Only Purse's own services are traced: health checks and reflection would fill traces
# with a load balancer's probes.
traced_service_prefix = "purse."
# Scrapes every few seconds would fill traces with nothing of interest.
untraced_http_paths = "/metrics$"
_true_words = frozenset({"1", "true", "yes", "on"})


def traces_exporter(environment: Mapping[str, str]) -> str:
    """The exporter the environment asks for (`otlp`, `console`), or "" when tracing is
    off; SettingError naming the variable for one Purse cannot use."""
    if environment.get("OTEL_SDK_DISABLED", "").strip().lower() in _true_words:
        return ""
    named = environment.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not named:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        named = "otlp" if any(environment.get(name) for name in endpoints) else "none"
    if named not in traces_exporters:
        raise SettingError(
            f"OTEL_TRACES_EXPORTER: {named!r} is not one of {', '.join(traces_exporters)}"
        )
    if named == "otlp":
        for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = environment.get(variable, "").strip()
            if protocol:
                if protocol not in otlp_protocols:
                    raise SettingError(
                        f"{variable}: {protocol!r} is not one of {', '.join(otlp_protocols)}"
                    )
                break
    return "" if named == "none" else named


def _resource() -> Resource:
    """The SDK's resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME), named `purse`
    when neither names the service."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    return resource


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()


class Tracing:
    """Traces for one server process: its tracer, and what instruments each surface."""

    def __init__(self, processor: SpanProcessor) -> None:
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

        self.provider: TracerProvider = TracerProvider(resource=_resource())
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("purse")
        # asyncpg's methods are wrapped for the whole process, once.
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415

        self._asyncpg = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        self._asyncpg.instrument(tracer_provider=self.provider)

    def grpc_interceptor(self) -> grpc.aio.ServerInterceptor:
        """A server span for every call of Purse's services (to be the outermost)."""
        from opentelemetry.instrumentation.grpc import aio_server_interceptor  # noqa: PLC0415
        from opentelemetry.instrumentation.grpc.filters import service_prefix  # noqa: PLC0415

        interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider,
            filter_=service_prefix(traced_service_prefix),
        )
        return interceptor

    def http_application(self, application: Any) -> Any:
        """`application` (ASGI) behind a server span for every request but /metrics."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # noqa: PLC0415

        return OpenTelemetryMiddleware(
            application,
            excluded_urls=untraced_http_paths,
            tracer_provider=self.provider,
            # A span for every ASGI message sent or received would outnumber the rest.
            exclude_spans=["receive", "send"],
        )

    def shutdown(self) -> None:
        """Export what is still buffered, and unwrap asyncpg."""
        self._asyncpg.uninstrument()
        self.provider.shutdown()


def start_tracing(environment: Mapping[str, str] | None = None) -> Tracing | None:
    """Tracing as the environment configures it, or None when it is off."""
    exporter = traces_exporter(os.environ if environment is None else environment)
    if not exporter:
        return None
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    return Tracing(BatchSpanProcessor(_exporter(exporter)))


async def untraced(work: Coroutine[Any, Any, Result]) -> Result:
    """`work` with instrumentation suppressed: nothing it does makes a span."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation  # noqa: PLC0415

    with suppress_instrumentation():
        return await work


def current_span_context() -> trace.SpanContext | None:
    """The span context of the current span, or None when there is none to link to."""
    current = trace.get_current_span().get_span_context()
    return current if current.is_valid else None


def linked_span(
    tracer: trace.Tracer,
    name: str,
    origins: Iterable[trace.SpanContext | None],
    attributes: Mapping[str, int | str],
) -> AbstractContextManager[trace.Span]:
    """A span that starts a trace of its own, linked once to each of `origins` (the
    spans of the calls whose work it does), as the current span while it lasts."""
    unique: dict[tuple[int, int], trace.SpanContext] = {}
    for origin in origins:
        if origin is not None and origin.is_valid:
            unique.setdefault((origin.trace_id, origin.span_id), origin)
    return tracer.start_as_current_span(
        name,
        context=context.Context(),
        links=[trace.Link(origin) for origin in unique.values()],
        attributes=dict(attributes),
    )
