"""JSON Schemas of protobuf messages as protobuf's canonical JSON mapping writes and reads them.

`Contract` indexes the messages, enums, services and comments of a set of
`FileDescriptorProto`s by full name. `SchemaBuilder` turns a message or enum into a JSON
Schema (the 2020-12 dialect OpenAPI 3.1 uses), one component per full name, referenced as
`#/components/schemas/<full name>`, built on first reference with everything it reaches:

- a message is an object whose properties are its fields' JSON names (lowerCamelCase);
  nothing is `required`, since fields at their default value are omitted;
- 64-bit integers are strings of digits or integers (the printer writes strings, the
  parser takes both); 32-bit integers are integers; floats are numbers or "NaN",
  "Infinity", "-Infinity"; bytes are base64 strings; enums are their value names;
- repeated fields are arrays, maps are objects (keys as strings);
- the well-known types have their own forms (Timestamp an RFC 3339 string, Duration
  "1.5s", wrappers their value, Struct any object, FieldMask a string of paths...);
- members of a oneof exclude each other; proto3 `optional` fields say they have presence;
- descriptions are the leading comments of messages, fields and enum values.

`SchemaBuilder.close` forbids unknown properties in the messages requests reach, since the
parser refuses unknown fields; responses stay open, so that clients may ignore fields a
newer server adds. Pure: nothing here reads or writes anything.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from itertools import combinations
from typing import Any, Final

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    ServiceDescriptorProto,
    SourceCodeInfo,
)

Schema = dict[str, Any]

COMPONENTS_PREFIX: Final = "#/components/schemas/"

_Field = FieldDescriptorProto

# Numbers of the fields of descriptor.proto that make up a source location's path.
_FILE_MESSAGES, _FILE_ENUMS, _FILE_SERVICES = 4, 5, 6
_MESSAGE_FIELDS, _MESSAGE_NESTED, _MESSAGE_ENUMS, _MESSAGE_ONEOFS = 2, 3, 4, 8
_ENUM_VALUES, _SERVICE_METHODS = 2, 2

_INT64_DIGITS: Final = "^-?[0-9]+$"
_UINT64_DIGITS: Final = "^[0-9]+$"


def _int64(format_name: str, minimum: int, maximum: int, digits: str) -> Schema:
    return {
        "type": ["string", "integer"],
        "format": format_name,
        "pattern": digits,
        "minimum": minimum,
        "maximum": maximum,
    }


def _float(format_name: str) -> Schema:
    return {
        "anyOf": [
            {"type": "number", "format": format_name},
            {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
        ]
    }


_SIGNED_INT64: Final = _int64("int64", -(2**63), 2**63 - 1, _INT64_DIGITS)
_UNSIGNED_INT64: Final = _int64("uint64", 0, 2**64 - 1, _UINT64_DIGITS)
_SIGNED_INT32: Final = {
    "type": "integer",
    "format": "int32",
    "minimum": -(2**31),
    "maximum": 2**31 - 1,
}
_UNSIGNED_INT32: Final = {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 2**32 - 1}

_SCALARS: Final[dict[int, Schema]] = {
    _Field.TYPE_DOUBLE: _float("double"),
    _Field.TYPE_FLOAT: _float("float"),
    _Field.TYPE_INT64: _SIGNED_INT64,
    _Field.TYPE_SINT64: _SIGNED_INT64,
    _Field.TYPE_SFIXED64: _SIGNED_INT64,
    _Field.TYPE_UINT64: _UNSIGNED_INT64,
    _Field.TYPE_FIXED64: _UNSIGNED_INT64,
    _Field.TYPE_INT32: _SIGNED_INT32,
    _Field.TYPE_SINT32: _SIGNED_INT32,
    _Field.TYPE_SFIXED32: _SIGNED_INT32,
    _Field.TYPE_UINT32: _UNSIGNED_INT32,
    _Field.TYPE_FIXED32: _UNSIGNED_INT32,
    _Field.TYPE_BOOL: {"type": "boolean"},
    _Field.TYPE_STRING: {"type": "string"},
    _Field.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}

_SIGNED_KEYS: Final = (
    _Field.TYPE_INT64,
    _Field.TYPE_SINT64,
    _Field.TYPE_SFIXED64,
    _Field.TYPE_INT32,
    _Field.TYPE_SINT32,
    _Field.TYPE_SFIXED32,
)
_UNSIGNED_KEYS: Final = (
    _Field.TYPE_UINT64,
    _Field.TYPE_FIXED64,
    _Field.TYPE_UINT32,
    _Field.TYPE_FIXED32,
)
# Map keys are JSON object keys, so always strings: these say which strings.
_MAP_KEYS: Final[dict[int, Schema]] = {
    **{key: {"pattern": _INT64_DIGITS} for key in _SIGNED_KEYS},
    **{key: {"pattern": _UINT64_DIGITS} for key in _UNSIGNED_KEYS},
    _Field.TYPE_BOOL: {"enum": ["true", "false"]},
}

_WELL_KNOWN: Final[dict[str, Schema]] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "An instant as an RFC 3339 date-time in UTC, e.g."
        " `2024-05-01T09:30:00Z` or `2024-05-01T09:30:00.250Z`.",
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
        "description": "A span of time in seconds with the suffix `s`, e.g. `1.5s`.",
    },
    "google.protobuf.Empty": {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
        "description": "No fields: `{}`.",
    },
    "google.protobuf.Struct": {
        "type": "object",
        "description": "Any JSON object.",
    },
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "description": "Any JSON array."},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "description": "A message of the type `@type` names (a URL ending in its full name),"
        " with its fields beside `@type`, or its JSON form as `value` when that is not"
        " an object.",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Field paths in lowerCamelCase separated by commas, e.g."
        " `name,address.city`.",
    },
}

_WRAPPERS: Final = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_NULL_VALUE: Final = "google.protobuf.NullValue"


def _comment_text(location: SourceCodeInfo.Location) -> str:
    text = location.leading_comments or location.trailing_comments
    return textwrap.dedent(text).strip()


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


class Contract:
    """The messages, enums, services and comments of a set of files, by full name.

    Comments are keyed by the full name of what they describe: `package.Message`,
    `package.Message.field`, `package.Message.oneof`, `package.Enum.VALUE`,
    `package.Service`, `package.Service.Method`.
    """

    def __init__(self, files: Iterable[FileDescriptorProto]) -> None:
        self.messages: dict[str, DescriptorProto] = {}
        self.enums: dict[str, EnumDescriptorProto] = {}
        self.services: dict[str, ServiceDescriptorProto] = {}
        self.comments: dict[str, str] = {}
        for file in files:
            self._add_file(file)

    def comment(self, full_name: str) -> str:
        return self.comments.get(full_name, "")

    def _add_file(self, file: FileDescriptorProto) -> None:
        located = {
            tuple(location.path): _comment_text(location)
            for location in file.source_code_info.location
        }
        for index, message in enumerate(file.message_type):
            name = _join(file.package, message.name)
            self._add_message(message, name, (_FILE_MESSAGES, index), located)
        for index, enum in enumerate(file.enum_type):
            self._add_enum(enum, _join(file.package, enum.name), (_FILE_ENUMS, index), located)
        for index, service in enumerate(file.service):
            name = _join(file.package, service.name)
            self.services[name] = service
            self._note(name, (_FILE_SERVICES, index), located)
            for number, method in enumerate(service.method):
                path = (_FILE_SERVICES, index, _SERVICE_METHODS, number)
                self._note(f"{name}.{method.name}", path, located)

    def _add_message(
        self,
        message: DescriptorProto,
        name: str,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.messages[name] = message
        self._note(name, path, located)
        for index, field in enumerate(message.field):
            self._note(f"{name}.{field.name}", (*path, _MESSAGE_FIELDS, index), located)
        for index, oneof in enumerate(message.oneof_decl):
            self._note(f"{name}.{oneof.name}", (*path, _MESSAGE_ONEOFS, index), located)
        for index, nested in enumerate(message.nested_type):
            nested_path = (*path, _MESSAGE_NESTED, index)
            self._add_message(nested, f"{name}.{nested.name}", nested_path, located)
        for index, enum in enumerate(message.enum_type):
            self._add_enum(enum, f"{name}.{enum.name}", (*path, _MESSAGE_ENUMS, index), located)

    def _add_enum(
        self,
        enum: EnumDescriptorProto,
        name: str,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.enums[name] = enum
        self._note(name, path, located)
        for index, value in enumerate(enum.value):
            self._note(f"{name}.{value.name}", (*path, _ENUM_VALUES, index), located)

    def _note(self, name: str, path: tuple[int, ...], located: dict[tuple[int, ...], str]) -> None:
        comment = located.get(path, "")
        if comment:
            self.comments[name] = comment


def full_name(written: str) -> str:
    """A full name as descriptors write types (`.package.Name`), without the leading dot."""
    return written.removeprefix(".")


def json_name(field: FieldDescriptorProto) -> str:
    """The field's JSON name: as protoc writes it, or made as protoc makes it (descriptors
    built into the protobuf runtime leave it out): each underscore dropped and the letter
    after it upper-cased."""
    if field.HasField("json_name"):
        return field.json_name
    first, *rest = field.name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _with_description(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description} if description else schema


def _real_oneofs(message: DescriptorProto) -> dict[int, list[FieldDescriptorProto]]:
    """Members by oneof index, leaving out the one-member oneofs proto3 `optional` makes."""
    members: dict[int, list[FieldDescriptorProto]] = {}
    for field in message.field:
        if field.HasField("oneof_index") and not field.proto3_optional:
            members.setdefault(field.oneof_index, []).append(field)
    return members


class SchemaBuilder:
    """Components of `contract`'s messages and enums, built as they are first referenced."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.schemas: dict[str, Schema] = {}

    def reference(self, full_name: str) -> Schema:
        """A `$ref` to the component of a message or enum, building it the first time."""
        if full_name not in self.schemas:
            # A placeholder first: a message that reaches itself refers to it while built.
            self.schemas[full_name] = {}
            self.schemas[full_name] = self._build(full_name)
        return {"$ref": COMPONENTS_PREFIX + full_name}

    def close(self, roots: Iterable[str]) -> None:
        """Forbids unknown properties in the messages of `roots` and every message they reach."""
        pending = list(roots)
        closed: set[str] = set()
        while pending:
            name = pending.pop()
            if name in closed or name in _WELL_KNOWN or name in _WRAPPERS:
                continue
            closed.add(name)
            message = self.contract.messages[name]
            if not message.options.map_entry:
                self.schemas[name]["additionalProperties"] = False
            pending.extend(
                full_name(field.type_name)
                for field in message.field
                if field.type == _Field.TYPE_MESSAGE
            )

    def _build(self, full_name: str) -> Schema:
        if full_name in self.contract.enums:
            return self._enum_schema(full_name)
        if full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[full_name])
        message = self.contract.messages[full_name]
        if full_name in _WRAPPERS:
            return _with_description(
                self._value_schema(message.field[0]),
                "The wrapped value itself, in its JSON form; present even when zero.",
            )
        return self._message_schema(full_name, message)

    def _enum_schema(self, full_name: str) -> Schema:
        if full_name == _NULL_VALUE:
            return {"type": "null"}
        enum = self.contract.enums[full_name]
        meanings = {
            value.name: self.contract.comment(f"{full_name}.{value.name}") for value in enum.value
        }
        table = "\n".join(
            f"- `{name}`: {meaning}" if meaning else f"- `{name}`"
            for name, meaning in meanings.items()
        )
        description = "\n\n".join(
            part
            for part in (
                self.contract.comment(full_name),
                table,
                "Written as the value's name.",
            )
            if part
        )
        return {
            "type": "string",
            "enum": list(meanings),
            "description": description,
            "x-enumDescriptions": meanings,
        }

    def _message_schema(self, full_name: str, message: DescriptorProto) -> Schema:
        schema: Schema = {"type": "object"}
        comment = self.contract.comment(full_name)
        if comment:
            schema["description"] = comment
        schema["properties"] = {
            json_name(field): self._field_schema(full_name, message, field)
            for field in message.field
        }
        exclusions = [
            {"required": [json_name(first), json_name(second)]}
            for members in _real_oneofs(message).values()
            for first, second in combinations(members, 2)
        ]
        if exclusions:
            schema["not"] = {"anyOf": exclusions}
        return schema

    def _field_schema(
        self, message_name: str, message: DescriptorProto, field: FieldDescriptorProto
    ) -> Schema:
        entry = self._map_entry(field)
        if entry is not None:
            key, value = entry.field
            schema: Schema = {"type": "object", "additionalProperties": self._value_schema(value)}
            if key.type in _MAP_KEYS:
                schema["propertyNames"] = _MAP_KEYS[key.type]
        elif field.label == _Field.LABEL_REPEATED:
            schema = {"type": "array", "items": self._value_schema(field)}
        else:
            schema = self._value_schema(field)
        notes = [
            self.contract.comment(f"{message_name}.{field.name}"),
            *self._presence(message, field),
        ]
        return _with_description(schema, "\n\n".join(note for note in notes if note))

    def _map_entry(self, field: FieldDescriptorProto) -> DescriptorProto | None:
        if field.label != _Field.LABEL_REPEATED or field.type != _Field.TYPE_MESSAGE:
            return None
        entry = self.contract.messages[full_name(field.type_name)]
        return entry if entry.options.map_entry else None

    def _value_schema(self, field: FieldDescriptorProto) -> Schema:
        if field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP, _Field.TYPE_ENUM):
            return self.reference(full_name(field.type_name))
        return dict(_SCALARS[field.type])

    def _presence(self, message: DescriptorProto, field: FieldDescriptorProto) -> Iterator[str]:
        if field.proto3_optional:
            yield (
                "Optional (it has presence): omitted when not set, written when set, even to"
                " its default value."
            )
        elif field.HasField("oneof_index"):
            oneof = message.oneof_decl[field.oneof_index].name
            members = ", ".join(
                f"`{json_name(member)}`" for member in _real_oneofs(message)[field.oneof_index]
            )
            yield (
                f"One of {members} (oneof `{oneof}`): at most one is set, and the one set is"
                " written even at its default value."
            )
