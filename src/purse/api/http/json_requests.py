"""Request messages from protobuf's canonical JSON mapping, refused by field when wrong.

`decode` turns a JSON body into the method's request message (read by `json_fast` when
the request uses only the common forms, by `json_format` otherwise), or into a `Refused`
the request surface answers INVALID_ARGUMENT (`REQUEST_UNDECODABLE`) exactly as it
answers undecodable protobuf bytes. protobuf's parser says what failed in its own words
(Python's exception texts, JSON names); a failure is located again here, field by field,
so the refusal names the wrong field by its proto path
(`check.lines[2].quantity_thousandths`) and says what that field takes.

What is taken is what the OpenAPI document describes. Unknown fields are refused, as the
mapping's parsers do by default. So are two forms the mapping lets parsers take that the
document leaves out (typed clients would otherwise have to expect them in every answer
too): `null` (a field at its default is left out, as answers leave it out) and an enum
value given by anything but its name (protobuf's parser would take its number, and
`true`, `1.5` or `"1"` as one). `json_fast` declines both, so they are looked for only in
what json_format reads. That is read again by the standard library's reader, which keeps
every integer exact: orjson reads an integer past 64 bits as the nearest float, and
json_format would take -9223372036854775809 as the smallest int64 instead of refusing it.

A NUL character in any text is refused as in the binary form (`STRING_HAS_NUL`); JSON
can only carry one escaped, so the message is walked only when the body holds an escape
of it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import orjson
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from purse.api.grpc.common.surface import Refused, nul_field_path
from purse.api.http import json_fast
from purse.domain.errors import InvalidArgument, echoed, invalid

_undecodable = "REQUEST_UNDECODABLE"
_no_null = "null is not a value here: leave the field out for its default"
# The types whose JSON form null is.
_null_types = frozenset({"google.protobuf.Value", "google.protobuf.NullValue"})
# Enum value names listed in a refusal; more are summarised.
enum_names_listed_max = 12

_integer_types = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_well_known_forms = {
    "google.protobuf.Timestamp": 'an RFC 3339 time in UTC, such as "2026-12-07T10:00:00Z"',
    "google.protobuf.Duration": 'a duration in seconds with an "s", such as "1.5s"',
    "google.protobuf.FieldMask": 'field paths separated by commas, such as "title,price"',
}


def decode(body: bytes, message_class: type[Message]) -> Message | Refused:
    """The request `body` holds, or why it is refused."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as failure:
        return Refused(
            InvalidArgument(message=f"the body is not JSON: {failure}", reason=_undecodable)
        )
    if not isinstance(document, dict):
        return Refused(
            InvalidArgument(
                message="the body must be a JSON object: the request message in protobuf's"
                " JSON mapping",
                reason=_undecodable,
            )
        )
    message = message_class()
    if not json_fast.parsed(document, message):
        read = _read_by_json_format(body, message_class)
        if isinstance(read, Refused):
            return read
        message = read
    if b"\\u0000" in body:
        nul_path = nul_field_path(message)
        if nul_path is not None:
            return Refused(
                invalid(nul_path, "text may not contain NUL characters", "STRING_HAS_NUL")
            )
    return message


def _read_by_json_format(body: bytes, message_class: type[Message]) -> Message | Refused:
    """What `json_fast` declines: read again exactly (orjson has read the body, so it is
    JSON), parsed by json_format, refused when in a form the document does not describe."""
    try:
        document = json.loads(body)
    except RecursionError:
        return Refused(
            InvalidArgument(message="the body nests deeper than any request", reason=_undecodable)
        )
    message = message_class()
    descriptor: Any = message_class.DESCRIPTOR
    try:
        json_format.ParseDict(document, message)
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        path, description = wrong_field(document, descriptor, "")
        return Refused(invalid(path, description, _undecodable))
    uncanonical = uncanonical_member(document, descriptor, "")
    if uncanonical is not None:
        return Refused(invalid(*uncanonical, _undecodable))
    return message


def uncanonical_member(
    document: dict[str, Any], descriptor: Descriptor, prefix: str
) -> tuple[str, str] | None:
    """(proto path, what it takes) of the first member of `document`, a message of
    `descriptor` that parses (so every member is a field), in a form the parser takes but
    the document does not describe: null, or an enum value other than its name."""
    fields = _fields_by_key(descriptor)
    for key, value in document.items():
        field = fields[key]
        found = _uncanonical(field, value, f"{prefix}{field.name}")
        if found is not None:
            return found
    return None


def _uncanonical(field: FieldDescriptor, value: Any, path: str) -> tuple[str, str] | None:
    named = field.message_type or field.enum_type
    if value is None:
        return None if named is not None and named.full_name in _null_types else (path, _no_null)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        values = field.message_type.fields_by_name["value"]
        items = [(values, f"{path}[{echoed(str(key))}]", item) for key, item in value.items()]
    elif field.is_repeated and isinstance(value, list):
        items = [(field, f"{path}[{index}]", item) for index, item in enumerate(value)]
    elif field.enum_type is not None and field.enum_type.full_name not in _null_types:
        named_value = isinstance(value, str) and value in field.enum_type.values_by_name
        return None if named_value else (path, f"expects {_form(field)}")
    else:
        nested = _nested_message(field)
        if nested is None or not isinstance(value, dict):
            return None
        return uncanonical_member(value, nested, f"{path}.")
    for item_field, item_path, item in items:
        found = _uncanonical(item_field, item, item_path)
        if found is not None:
            return found
    return None


def wrong_field(document: dict[str, Any], descriptor: Descriptor, prefix: str) -> tuple[str, str]:
    """(proto path, what it takes) of the first member of `document` that does not parse
    as a field of `descriptor`; the message's own path when none alone fails."""
    fields = _fields_by_key(descriptor)
    for key, value in document.items():
        field = fields.get(key)
        if field is None:
            return f"{prefix}{echoed(str(key))}", f"{descriptor.full_name} has no such field"
        if not _parses(descriptor, {key: value}):
            return _narrowed(field, value, f"{prefix}{field.name}")
    return prefix.rstrip(".") or "(request)", f"not a valid {descriptor.full_name}"


@functools.cache
def _fields_by_key(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """A message's fields by the keys JSON may name them with: JSON names and proto names."""
    fields = {field.json_name: field for field in descriptor.fields}
    fields.update({field.name: field for field in descriptor.fields})
    return fields


def _parses(descriptor: Descriptor, document: dict[str, Any]) -> bool:
    try:
        json_format.ParseDict(document, message_factory.GetMessageClass(descriptor)())
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        return False
    return True


def _narrowed(field: FieldDescriptor, value: Any, path: str) -> tuple[str, str]:
    nested = _nested_message(field)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        values = field.message_type.fields_by_name["value"]
        return path, f"expects a JSON object whose values are {_form(values)}"
    if field.is_repeated:
        if not isinstance(value, list):
            return path, f"expects a JSON array of {_form(field)}"
        for index, item in enumerate(value):
            if not _parses(field.containing_type, {field.name: [item]}):
                if nested is not None and isinstance(item, dict):
                    return wrong_field(item, nested, f"{path}[{index}].")
                return f"{path}[{index}]", f"expects {_form(field)}"
        return path, f"expects a JSON array of {_form(field)}"
    if nested is not None and isinstance(value, dict):
        return wrong_field(value, nested, f"{path}.")
    return path, f"expects {_form(field)}"


def _nested_message(field: FieldDescriptor) -> Descriptor | None:
    """The message type a field holds as a JSON object of fields (not a well-known type
    with a JSON form of its own, and not a map)."""
    nested: Descriptor | None = field.message_type
    if nested is None or nested.GetOptions().map_entry:
        return None
    if nested.full_name.startswith("google.protobuf."):
        return None
    return nested


def _form(field: FieldDescriptor) -> str:
    """What a field takes, in the JSON mapping's words."""
    if field.type in _integer_types:
        return "an integer (a JSON number or a string of digits) within the field's range"
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return "a number"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true or false"
    if field.type == FieldDescriptor.TYPE_STRING:
        return "a JSON string"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return "base64 text"
    if field.type == FieldDescriptor.TYPE_ENUM:
        names = [value.name for value in field.enum_type.values]
        listed = ", ".join(names[:enum_names_listed_max])
        more = (
            f" and {len(names) - enum_names_listed_max} more"
            if len(names) > enum_names_listed_max
            else ""
        )
        return f"one of {listed}{more}"
    nested = field.message_type
    assert nested is not None
    known = _well_known_forms.get(nested.full_name)
    if known is not None:
        return known
    if nested.full_name.startswith("google.protobuf."):
        return f"the JSON form of {nested.full_name}"
    return f"a JSON object ({nested.full_name})"
