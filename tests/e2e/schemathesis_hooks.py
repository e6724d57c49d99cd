"""NDJSON for schemathesis, loaded by `schemathesis run` through SCHEMATHESIS_HOOKS.

`TerminalService/ProcessChecks` takes and answers `application/x-ndjson`, which
schemathesis has no serializer for. Each generated body is one `ProcessChecksRequest`, sent
as one line; the answer to one line is one line, a `ProcessChecksResponse` or the stream's
last `{"error": ...}`, and that line is what the response schema describes.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

NDJSON = "application/x-ndjson"


@schemathesis.serializer(NDJSON)
def one_request_line(context: schemathesis.SerializationContext, value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


@schemathesis.deserializer(NDJSON)
def the_answer_line(
    context: schemathesis.DeserializationContext, response: schemathesis.Response
) -> Any:
    lines = [json.loads(line) for line in response.content.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ValueError(f"one request line is answered by one line, not {len(lines)}")
    return lines[0]
