"""Structured logs: one JSON object per line on stderr (or plain text for people).

A line written while a span is current (tracing on, `purse.tracing`) carries its trace id
and span id, as 32 and 16 lowercase hex digits (`trace_id`, `span_id`: fields of the JSON
object, `trace_id=… span_id=…` at the end of a text line), so that a log line leads to
its trace and a trace to its lines. With tracing off no span is ever current, and lines
carry neither.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from opentelemetry import trace


def trace_fields() -> dict[str, str]:
    """The current span's trace id and span id, or nothing when no span is current."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, the current span's trace and span ids, and any
    `extra` fields; never secrets (callers' duty)."""

    _standard = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **trace_fields(),
        }
        entry.update(
            {key: value for key, value in record.__dict__.items() if key not in self._standard}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message`, and the current span's ids at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = trace_fields()
        if not fields:
            return line
        ids = " ".join(f"{name}={value}" for name, value in fields.items())
        # After the message's first line: a traceback, if any, keeps its own lines.
        first, newline, rest = line.partition("\n")
        return f"{first} {ids}{newline}{rest}"


def configure_logging(level: str, json_format: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
