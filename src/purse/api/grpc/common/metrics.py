"""Prometheus metrics for every gRPC method: calls by status code, and latency.

A unary call is counted when it ends, with its latency. A stream (bidirectional, or of
answers to one request) is counted once, as one call, when it ends, with the status it
ended with (its duration says nothing about the server, so it has no latency); the
messages a bidirectional stream received are counted as they arrive
(`purse_grpc_stream_messages_total`), so a long stream is visible while it runs.

Errors are counted by method, status code and reason (`purse_errors_total`): a call that
ends with any status but OK counts once, with the `ErrorInfo.reason` its status details
carry; a ProcessChecks stream also counts each check it answers refused, since the
stream itself goes on. A reason outside the catalogue (`purse.domain.reasons`), or none,
is counted as `UNSPECIFIED`, so the label's values stay the catalogue's.

Label values are bound once per method (and per status code on first sight), so a call
costs two dictionary lookups and one observation, not a label resolution.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import CollectorRegistry, Counter, Histogram

from purse.api.grpc.common.interceptors import Handler, WrappingInterceptor
from purse.domain.reasons import ERROR_REASONS

Context = grpc.aio.ServicerContext[Any, Any]

# Latency buckets in seconds: from 0.25 ms to 2.5 s.
latency_buckets_seconds = (
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.004,
    0.008,
    0.015,
    0.03,
    0.06,
    0.125,
    0.25,
    0.5,
    1.0,
    2.5,
)


unspecified_reason = "UNSPECIFIED"
_status_details_key = "grpc-status-details-bin"
# The methods whose answers refuse items one by one while the call goes on, and how to
# read an answer's refused items: (status code number, reason) of each.
ItemRefusals = Callable[[Any], list[tuple[int, str]]]
_item_refusals: dict[str, ItemRefusals] = {
    "/purse.v1.TerminalService/ProcessChecks": lambda response: [
        (result.error.code, result.error.reason)
        for result in response.results
        if result.WhichOneof("outcome") == "error"
    ],
}


class _MethodMetrics:
    __slots__ = ("_calls", "_codes", "_errors", "_method", "latency", "messages")

    def __init__(
        self, method: str, calls: Counter, latency: Histogram, messages: Counter, errors: Counter
    ) -> None:
        self._method = method
        self._calls = calls
        self._errors = errors
        self._codes: dict[grpc.StatusCode, Any] = {}
        self.latency = latency.labels(method)
        self.messages = messages.labels(method)

    def count(self, code: grpc.StatusCode, context: Context) -> None:
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = self._calls.labels(self._method, code.name)
        child.inc()
        if code is not grpc.StatusCode.OK:
            self.count_error(code.name, _reason_of(context))

    def count_error(self, code: str, reason: str) -> None:
        if reason not in ERROR_REASONS:
            reason = unspecified_reason
        self._errors.labels(self._method, code, reason).inc()


class MetricsInterceptor(WrappingInterceptor):
    """Wraps each method's handler once (unary, answered by a stream, or bidirectional)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._calls = Counter(
            "purse_grpc_calls",
            "gRPC calls handled, by method and status code",
            ("method", "code"),
            registry=registry,
        )
        self._latency = Histogram(
            "purse_grpc_call_seconds",
            "gRPC call latency in seconds, by method",
            ("method",),
            buckets=latency_buckets_seconds,
            registry=registry,
        )
        self._messages = Counter(
            "purse_grpc_stream_messages",
            "messages received on gRPC streams, by method",
            ("method",),
            registry=registry,
        )
        self._errors = Counter(
            "purse_errors",
            "Errors answered, by method, status code and reason (ErrorInfo.reason); "
            "a ProcessChecks stream counts each check it refuses",
            ("method", "code", "reason"),
            registry=registry,
        )

    def wrap(self, method: str, handler: Handler) -> Handler:
        metrics = _MethodMetrics(method, self._calls, self._latency, self._messages, self._errors)
        if handler.unary_unary is not None:
            return self._wrap_unary(handler, metrics)
        if handler.unary_stream is not None:
            return self._wrap_answers(handler, metrics)
        if handler.stream_stream is not None:
            return self._wrap_stream(handler, metrics, _item_refusals.get(method))
        return handler

    @staticmethod
    def _wrap_stream(
        handler: Handler,
        metrics: _MethodMetrics,
        refusals_of: ItemRefusals | None,
    ) -> Handler:
        async def counted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for request in requests:
                metrics.messages.inc()
                yield request

        return grpc.stream_stream_rpc_method_handler(
            _counted_when_ended(handler.stream_stream, metrics, counted, refusals_of),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    @staticmethod
    def _wrap_answers(handler: Handler, metrics: _MethodMetrics) -> Handler:
        return grpc.unary_stream_rpc_method_handler(
            _counted_when_ended(handler.unary_stream, metrics, lambda request: request),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    @staticmethod
    def _wrap_unary(handler: Handler, metrics: _MethodMetrics) -> Handler:
        # grpc.aio hands async behaviors over; the stubs type them as the sync API's.
        behavior: Any = handler.unary_unary

        async def observed(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                response = await behavior(request, context)
                code = context.code() or grpc.StatusCode.OK
                return response
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                metrics.latency.observe(time.perf_counter() - started)
                metrics.count(
                    code if isinstance(code, grpc.StatusCode) else _code_from(code), context
                )

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _counted_when_ended(
    behavior: Any,
    metrics: _MethodMetrics,
    received: Callable[[Any], Any],
    refusals_of: ItemRefusals | None = None,
) -> Callable[[Any, Context], AsyncGenerator[Any, None]]:
    """A handler that answers with a stream (to a request, or to a stream of them, which
    `received` counts), counted once as a call with the status it ended with; the items
    each answer refuses (`refusals_of`) are counted as errors as they go."""

    async def observed(request_or_requests: Any, context: Context) -> AsyncGenerator[Any, None]:
        code: Any = grpc.StatusCode.UNKNOWN
        try:
            async with aclosing(behavior(received(request_or_requests), context)) as responses:
                async for response in responses:
                    if refusals_of is not None:
                        for code_number, reason in refusals_of(response):
                            metrics.count_error(_code_from(code_number).name, reason)
                    yield response
            code = context.code() or grpc.StatusCode.OK
        except (asyncio.CancelledError, GeneratorExit):
            code = context.code() or grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            metrics.count(code if isinstance(code, grpc.StatusCode) else _code_from(code), context)

    return observed


def _reason_of(context: Context) -> str:
    """The ErrorInfo.reason of the status details an ended call carries, or ""."""
    trailing = context.trailing_metadata() or ()
    for key, value in trailing:
        if key == _status_details_key and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except Exception:
                return ""
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason: str = info.reason
                    return reason
    return ""


_codes_by_number = {code.value[0]: code for code in grpc.StatusCode}


def _code_from(value: Any) -> grpc.StatusCode:
    return _codes_by_number.get(value, grpc.StatusCode.UNKNOWN)
