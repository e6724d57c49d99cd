"""The contract as one Markdown page, from the protos' own comments: `docs/reference.md`.

Every service and method (its HTTP/JSON path beside its gRPC name, its request and
response, its comment: what it does, its units, defaults and the reasons it can refuse
with), then every message (each field's proto and JSON names, type and comment) and every
enum (each value and its comment) of the public contract, linked by full name. Written by
`make reference-docs` (`python -m purse.api.http.reference_docs`); a test fails when the
checked-in page is not what the protos give. Pure: the descriptor set in, the text out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    FieldDescriptorProto,
    FileDescriptorSet,
)

from purse.api.http import openapi
from purse.api.http.downloads import DOWNLOADS
from purse.api.http.schemas import Contract, full_name, json_name

_Field = FieldDescriptorProto
_SCALARS = {
    _Field.TYPE_DOUBLE: "double",
    _Field.TYPE_FLOAT: "float",
    _Field.TYPE_INT64: "int64",
    _Field.TYPE_UINT64: "uint64",
    _Field.TYPE_INT32: "int32",
    _Field.TYPE_FIXED64: "fixed64",
    _Field.TYPE_FIXED32: "fixed32",
    _Field.TYPE_BOOL: "bool",
    _Field.TYPE_STRING: "string",
    _Field.TYPE_BYTES: "bytes",
    _Field.TYPE_UINT32: "uint32",
    _Field.TYPE_SFIXED32: "sfixed32",
    _Field.TYPE_SFIXED64: "sfixed64",
    _Field.TYPE_SINT32: "sint32",
    _Field.TYPE_SINT64: "sint64",
}
_HEADER = """\
# The contract

Generated from `protos/` by `make reference-docs`: do not edit. Every method is served over
gRPC and as HTTP/JSON (`POST` the request in protobuf's JSON mapping to the path shown;
see README, "HTTP/JSON"); the reasons a refusal can carry are listed with what to do in
[errors.md](errors.md). Amounts are integers: money in minor units (`*_minor_units`), points
in hundredths (`*_hundredths`), quantities in thousandths (`*_thousandths`).
"""


def markdown(descriptor_set: FileDescriptorSet, services: tuple[str, ...]) -> str:
    """The page for `services` (full names) and every message and enum of their files."""
    contract = Contract(descriptor_set.file)
    packages = {name.rsplit(".", 1)[0] for name in services}
    lines = [_HEADER]
    for service in services:
        lines.extend(_service(contract, service))
    lines.append("## Messages\n")
    for name in sorted(contract.messages):
        if _in_packages(name, packages) and not contract.messages[name].options.map_entry:
            lines.extend(_message(contract, name, contract.messages[name]))
    lines.append("## Enums\n")
    for name in sorted(contract.enums):
        if _in_packages(name, packages):
            lines.extend(_enum(contract, name))
    return "\n".join(lines).rstrip() + "\n"


def _in_packages(name: str, packages: set[str]) -> bool:
    return any(name.startswith(package + ".") for package in packages)


def _anchor(name: str) -> str:
    return f'<a id="{name}"></a>'


def _link(name: str) -> str:
    if name.startswith("google."):
        return f"`{name}`"
    return f"[`{name.rsplit('.', 1)[-1]}`](#{name})"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _service(contract: Contract, name: str) -> Iterator[str]:
    yield f"## {name}\n"
    yield _anchor(name)
    yield contract.comment(name) + "\n"
    for method in contract.services[name].method:
        yield f"### {method.name}\n"
        yield _anchor(f"{name}.{method.name}")
        download = DOWNLOADS.get(f"/{name}/{method.name}")
        if method.client_streaming:
            streaming = " (a stream each way; HTTP/JSON: NDJSON)"
        elif download is not None:
            streaming = f" (a stream of pieces of a file; HTTP: the file, {download.media_type})"
        else:
            streaming = ""
        yield (
            f"`POST /{name}/{method.name}`{streaming} · "
            f"{_link(full_name(method.input_type))} → {_link(full_name(method.output_type))}\n"
        )
        yield contract.comment(f"{name}.{method.name}") + "\n"


def _message(contract: Contract, name: str, message: DescriptorProto) -> Iterator[str]:
    yield f"### {name}\n"
    yield _anchor(name)
    comment = contract.comment(name)
    if comment:
        yield comment + "\n"
    if not message.field:
        yield "No fields.\n"
        return
    yield "| field | JSON | type | meaning |"
    yield "|---|---|---|---|"
    for field in message.field:
        meaning = _cell(contract.comment(f"{name}.{field.name}"))
        yield (
            f"| `{field.name}` | `{json_name(field)}` | {_type(contract, message, field)} "
            f"| {meaning} |"
        )
    yield ""


def _type(contract: Contract, message: DescriptorProto, field: FieldDescriptorProto) -> str:
    if field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_ENUM):
        target = full_name(field.type_name)
        entry = contract.messages.get(target)
        if entry is not None and entry.options.map_entry:
            key, value = entry.field
            return f"map<{_SCALARS[key.type]}, {_type(contract, entry, value)}>"
        kind = _link(target)
    else:
        kind = _SCALARS[field.type]
    if field.label == _Field.LABEL_REPEATED:
        return f"repeated {kind}"
    if field.proto3_optional:
        return f"optional {kind}"
    if field.HasField("oneof_index"):
        return f"{kind} (one of `{message.oneof_decl[field.oneof_index].name}`)"
    return kind


def _enum(contract: Contract, name: str) -> Iterator[str]:
    yield f"### {name}\n"
    yield _anchor(name)
    comment = contract.comment(name)
    if comment:
        yield comment + "\n"
    yield "| value | number | meaning |"
    yield "|---|---|---|"
    for value in contract.enums[name].value:
        meaning = _cell(contract.comment(f"{name}.{value.name}"))
        yield f"| `{value.name}` | {value.number} | {meaning} |"
    yield ""


def packaged_markdown() -> str:
    """The page of the contract this server serves."""
    return markdown(openapi.packaged_descriptor_set(), tuple(openapi.SERVICES))


if __name__ == "__main__":
    sys.stdout.write(packaged_markdown())
