"""The OpenAPI 3.1 document of Purse's HTTP/JSON surface, built from the contract itself.

The contract is the FileDescriptorSet `make protos` writes beside this module
(`descriptors.binpb`, with the protos' comments); every unary RPC of the public services is
`POST /{full service name}/{Method}` with the request message in protobuf's canonical JSON
mapping, answered 200 with the response message (the Connect protocol's unary form),
`TerminalService/ProcessChecks` is a stream of NDJSON lines, and a method answering with
pieces of a file (`downloads.py`) answers with the file. Message and enum schemas
follow that mapping (`purse.api.http.schemas`); summaries and descriptions are the RPCs'
comments, so the document says what the protos say. Refusals answer with their HTTP
status and a Connect error body, whose `google.rpc.ErrorInfo` reasons are
`purse.domain.reasons.ERROR_REASONS` (the `ErrorReason` schema).

`document()` builds the document once (as a dict; treat it as read-only) and
`document_json()` is its JSON. Pure: the only thing read is the packaged descriptor set.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from importlib import metadata, resources
from itertools import groupby
from typing import Any, Final

import orjson
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from google.rpc import error_details_pb2

from purse.api.http.downloads import DOWNLOADS, Download
from purse.api.http.schemas import COMPONENTS_PREFIX, Contract, Schema, SchemaBuilder, full_name
from purse.domain.reasons import ERROR_REASONS, Status

OPENAPI_VERSION: Final = "3.1.0"
DESCRIPTORS_RESOURCE: Final = "descriptors.binpb"

# Each service with the security scheme of the credential it takes.
SERVICES: Final[dict[str, str]] = {
    "purse.v1.TerminalService": "terminalCredential",
    "purse.admin.v1.AdminService": "administratorCredential",
    "purse.platform.v1.PlatformService": "operatorKey",
}
# Methods that take no credential (they issue one).
PUBLIC_METHODS: Final = frozenset(
    {"purse.v1.TerminalService.SignIn", "purse.admin.v1.AdminService.SignIn"}
)

_SECURITY_SCHEMES: Final[dict[str, str]] = {
    "terminalCredential": "A terminal's API key (issued by the business's administrator) or"
    " the token `purse.v1.TerminalService/SignIn` returns.",
    "administratorCredential": "An administrator's API key or the token"
    " `purse.admin.v1.AdminService/SignIn` returns.",
    "operatorKey": "An operator key, made on the server's machine with"
    " `purse operator-key create`.",
}

JSON: Final = "application/json"
PROTO: Final = "application/proto"
NDJSON: Final = "application/x-ndjson"

# The Connect error codes (google.rpc.Code's names in lower case, "canceled" spelt the
# Connect way) with the HTTP status each answers with.
CONNECT_CODES: Final[dict[str, int]] = {
    "canceled" if status is Status.CANCELLED else status.name.lower(): status.http_status
    for status in Status
}
# Statuses the HTTP layer answers with before a method runs, and why.
_TRANSPORT_STATUSES: Final[dict[int, str]] = {
    404: "The path names no method.",
    413: "The body is larger than the server takes.",
    415: f"The content type is neither `{JSON}` nor `{PROTO}` (`{NDJSON}` for the stream).",
}
# The error details the server sends, as `details[].type`.
ERROR_DETAILS: Final = ("google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo")

_DESCRIPTION: Final = """\
Purse's API over HTTP with JSON: the services and messages of its gRPC API, in the
unary form of the Connect protocol.

## Calls

Each method is `POST /{service}/{method}`, e.g.
`POST /purse.v1.TerminalService/IdentifyCustomer`. The body is the request message in
protobuf's canonical JSON mapping (`Content-Type: application/json`) or in the protobuf
binary encoding (`application/proto`); a call that succeeds answers 200 with the response
message in the same encoding.

The canonical JSON mapping: fields by their lowerCamelCase JSON names (their proto names
are accepted too); a field at its default value (0, "", false, the enum value numbered 0,
an empty list or map) is omitted; 64-bit integers are written as strings (numbers are
accepted); enums by the value's name; timestamps as RFC 3339 strings; bytes as base64. A
field the message does not have is refused, and so are `null` (leave a field out for its
default) and an enum value given by its number.

## Authentication

`Authorization: Bearer <credential>`: a terminal's API key or sign-in token for
`purse.v1.TerminalService`, an administrator's API key or sign-in token for
`purse.admin.v1.AdminService`, an operator key for `purse.platform.v1.PlatformService`.
The two `SignIn` methods take none: they issue the tokens.

## Errors

A refused call answers with the HTTP status of its code and a Connect error body:
`{"code": "invalid_argument", "message": "...", "details": [...]}`.

{status_table}

Each detail has its `type`, its binary encoding in base64 as `value` and its canonical
JSON as `debug`: `google.rpc.ErrorInfo` (domain `purse`, a stable `reason` from
`ErrorReason`), `google.rpc.BadRequest` (each wrong field by its path in the request),
`google.rpc.RetryInfo` (when to try again).

Besides: 404 for a path that names no method, 405 for an HTTP method other than POST,
413 for a body larger than the server takes, 415 for another content type.

## The stream

`POST /purse.v1.TerminalService/ProcessChecks` takes `application/x-ndjson`: each line one
`ProcessChecksRequest` in canonical JSON. The answer, also `application/x-ndjson`, has one
`ProcessChecksResponse` a line; an error that ends the stream is a last line
`{"error": <Connect error>}`.

## Downloads

`POST /purse.admin.v1.AdminService/ExportCustomers` takes its request as any call does
and answers 200 with the file itself, `text/csv` (`Content-Disposition: attachment`),
streamed as it is written: `curl -o customers.csv`. A refusal before the first byte is
the call's error response; a failure after it closes the connection before the body's
last chunk, so that a file cut short is never taken for a whole one.
"""


def _status_table() -> str:
    by_status = groupby(
        sorted(CONNECT_CODES.items(), key=lambda item: item[1]), lambda item: item[1]
    )
    rows = [
        f"| {status} | {', '.join(f'`{code}`' for code, _ in codes)} |"
        for status, codes in by_status
    ]
    return "\n".join(["| HTTP status | Connect codes |", "| --- | --- |", *rows])


def _reason_meaning(value: object) -> str:
    """A catalogue entry's meaning: the entry itself, or its `meaning` when it is a record."""
    meaning = getattr(value, "meaning", value)
    if not isinstance(meaning, str):
        raise TypeError(f"a reason's meaning must be a string, not {meaning!r}")
    return meaning


def error_reason_schema(reasons: Mapping[str, object]) -> Schema:
    """The `ErrorReason` schema: every reason an ErrorInfo carries, with what it means."""
    meanings = {reason: _reason_meaning(value) for reason, value in reasons.items()}
    table = "\n".join(f"| `{reason}` | {meaning} |" for reason, meaning in meanings.items())
    return {
        "type": "string",
        "enum": list(meanings),
        "description": "The `reason` of a refusal's `google.rpc.ErrorInfo`: stable words"
        " clients may branch on.\n\n| Reason | Meaning |\n| --- | --- |\n" + table,
        "x-enumDescriptions": meanings,
    }


def _error_schemas() -> dict[str, Schema]:
    detail_cases = [
        {
            "if": {"properties": {"type": {"const": detail}}, "required": ["type"]},
            "then": {"properties": {"debug": {"$ref": COMPONENTS_PREFIX + detail}}},
        }
        for detail in ERROR_DETAILS
    ]
    return {
        "ConnectError": {
            "type": "object",
            "description": "A refusal: its Connect code, a message for people, and details.",
            "properties": {
                "code": {"type": "string", "enum": list(CONNECT_CODES)},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"$ref": COMPONENTS_PREFIX + "ConnectErrorDetail"},
                },
            },
            "required": ["code"],
        },
        "ConnectErrorDetail": {
            "type": "object",
            "description": "One detail of a refusal: "
            + ", ".join(f"`{detail}`" for detail in ERROR_DETAILS)
            + ".",
            "properties": {
                "type": {"type": "string", "description": "The detail's full message name."},
                "value": {
                    "type": "string",
                    "contentEncoding": "base64",
                    "description": "The detail in the protobuf binary encoding, base64.",
                },
                "debug": {"description": "The detail in canonical JSON."},
            },
            "required": ["type", "value"],
            "allOf": detail_cases,
        },
        "StreamError": {
            "type": "object",
            "description": "The last line of a stream that an error ends.",
            "properties": {"error": {"$ref": COMPONENTS_PREFIX + "ConnectError"}},
            "required": ["error"],
            "additionalProperties": False,
        },
    }


def _error_responses() -> dict[int, dict[str, Any]]:
    """The answers of refusals, by HTTP status."""
    statuses = sorted({*CONNECT_CODES.values(), *_TRANSPORT_STATUSES})
    responses: dict[int, dict[str, Any]] = {}
    for status in statuses:
        codes = [
            f"`{code}`" for code, code_status in CONNECT_CODES.items() if code_status == status
        ]
        parts = [f"Refused with the Connect code {' or '.join(codes)}."] if codes else []
        if status in _TRANSPORT_STATUSES:
            parts.append(_TRANSPORT_STATUSES[status])
        responses[status] = {
            "description": " ".join(parts),
            "content": {JSON: {"schema": {"$ref": COMPONENTS_PREFIX + "ConnectError"}}},
        }
    return responses


def _response_name(status: int) -> str:
    return f"Status{status}"


def _summary(comment: str) -> str:
    """The first sentence of a comment, on one line."""
    text = " ".join(comment.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _unary_content(reference: Schema) -> dict[str, Any]:
    # `application/proto` is taken too (the description says so); it is left out here
    # because schema-driven tools would generate its bodies from a schema of JSON.
    return {JSON: {"schema": reference}}


def _stream_content(line: Schema) -> dict[str, Any]:
    return {NDJSON: {"schema": {**line, "description": "Each line is one of these."}}}


def _download_answer(download: Download) -> dict[str, Any]:
    """The 200 answer of a download: the file itself."""
    media_type = download.media_type.split(";", 1)[0]
    return {
        "description": "The file, streamed as it is written (see Downloads above).",
        "headers": {
            "Content-Disposition": {
                "description": f'`attachment; filename="{download.file_name}"`: a file to save.',
                "schema": {"type": "string"},
            }
        },
        "content": {media_type: {"schema": {"type": "string"}}},
    }


def _operation(
    builder: SchemaBuilder,
    service_name: str,
    method: descriptor_pb2.MethodDescriptorProto,
    error_statuses: Iterable[int],
) -> dict[str, Any]:
    method_name = f"{service_name}.{method.name}"
    comment = builder.contract.comment(method_name)
    request = builder.reference(full_name(method.input_type))
    response = builder.reference(full_name(method.output_type))
    download = DOWNLOADS.get(f"/{service_name}/{method.name}")
    success: dict[str, Any] = {"description": "The call succeeded."}
    if download is not None:
        request_content = _unary_content(request)
        success = _download_answer(download)
    elif method.client_streaming or method.server_streaming:
        stream_line = {"anyOf": [response, {"$ref": COMPONENTS_PREFIX + "StreamError"}]}
        request_content = _stream_content(request)
        success["content"] = _stream_content(stream_line)
    else:
        request_content = _unary_content(request)
        success["content"] = _unary_content(response)
    operation: dict[str, Any] = {
        "tags": [service_name],
        "operationId": f"{service_name.rsplit('.', 1)[-1]}_{method.name}",
    }
    if comment:
        operation["summary"] = _summary(comment)
        operation["description"] = comment
    operation["requestBody"] = {"required": True, "content": request_content}
    operation["responses"] = {
        "200": success,
        **{
            str(status): {"$ref": f"#/components/responses/{_response_name(status)}"}
            for status in error_statuses
        },
    }
    scheme = SERVICES[service_name]
    operation["security"] = [] if method_name in PUBLIC_METHODS else [{scheme: []}]
    return operation


def _paths(builder: SchemaBuilder, error_statuses: list[int]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for service_name in _services_of(builder.contract):
        service = builder.contract.services[service_name]
        for method in service.method:
            operation = _operation(builder, service_name, method, error_statuses)
            paths[f"/{service_name}/{method.name}"] = {"post": operation}
    return paths


def _request_messages(contract: Contract) -> list[str]:
    return [
        full_name(method.input_type)
        for service_name in _services_of(contract)
        for method in contract.services[service_name].method
    ]


def _services_of(contract: Contract) -> list[str]:
    """The services of SERVICES the contract has (all of them, in the packaged one)."""
    return [name for name in SERVICES if name in contract.services]


def _file_protos(files: Iterable[FileDescriptor]) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files with everything they import, each once (no comments: built-in modules)."""
    seen: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    pending = list(files)
    while pending:
        file = pending.pop()
        if file.name not in seen:
            seen[file.name] = descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)
            pending.extend(file.dependencies)
    return list(seen.values())


def build_document(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
    version: str,
    reasons: Mapping[str, object],
) -> dict[str, Any]:
    """The OpenAPI document of the services in `descriptor_set` (see the module's docstring)."""
    known = {file.name for file in descriptor_set.file}
    details = [
        file for file in _file_protos([error_details_pb2.DESCRIPTOR]) if file.name not in known
    ]
    contract = Contract([*descriptor_set.file, *details])
    builder = SchemaBuilder(contract)
    error_responses = _error_responses()
    paths = _paths(builder, list(error_responses))
    builder.close(_request_messages(contract))
    for detail in ERROR_DETAILS:
        builder.reference(detail)
    error_info = builder.schemas["google.rpc.ErrorInfo"]
    error_info["properties"]["reason"] = {
        "$ref": COMPONENTS_PREFIX + "ErrorReason",
        "description": "Why the call was refused: a word of the catalogue.",
    }
    schemas = {**builder.schemas, **_error_schemas(), "ErrorReason": error_reason_schema(reasons)}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Purse",
            "version": version,
            "summary": "Loyalty processing: checks in, recalculated receipts out.",
            "description": _DESCRIPTION.replace("{status_table}", _status_table()),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [{"name": name, "description": contract.comment(name)} for name in SERVICES],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {
                _response_name(status): response for status, response in error_responses.items()
            },
            "securitySchemes": {
                name: {"type": "http", "scheme": "bearer", "description": description}
                for name, description in _SECURITY_SCHEMES.items()
            },
        },
    }


def packaged_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    data = resources.files("purse.api.http").joinpath(DESCRIPTORS_RESOURCE).read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


@functools.cache
def document() -> dict[str, Any]:
    """The document of this server's contract, built once; callers must not change it."""
    return build_document(packaged_descriptor_set(), metadata.version("purse"), ERROR_REASONS)


@functools.cache
def document_json() -> bytes:
    """`document()` as JSON."""
    return orjson.dumps(document())
