"""Request messages from their canonical JSON, the common forms only, as json_format reads them.

`json_format.ParseDict` asks each field's descriptor what it is for every member it reads,
and costs a 10-line check about as much as the call it starts. `parsed` reads what
requests are made of — text, booleans, integers (JSON numbers, or strings of digits),
enums by name, nested messages, lists of them, Timestamps — with each message type's
fields planned once. Anything else (maps, floats, bytes, enums by number, null, a oneof
named twice, a field named by both its names, unknown fields...) it declines, and
`json_format` reads the whole request as before (`json_requests` then refuses the forms the
OpenAPI document does not describe), so what is accepted, and how a refusal reads, does not
depend on which of the two read it. A property test checks that whatever this accepts
json_format accepts as the same message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_Field = FieldDescriptor
_digits = re.compile(r"-?[0-9]+")
_surrogate = re.compile("[\ud800-\udfff]")
_integer_ranges = {
    _Field.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    _Field.CPPTYPE_UINT32: (0, 2**32 - 1),
    _Field.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    _Field.CPPTYPE_UINT64: (0, 2**64 - 1),
}
# Well-known types read from their JSON string by their own FromJsonString, as json_format does.
_from_strings = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)


class _Declined(Exception):
    """A form left to json_format."""


Reader = Callable[[Message, str, Any], None]
# A JSON member: the field's name, what names it within its message (its oneof's name for
# a member of a oneof, so that a second member is seen), and how its value is read.
Planned = tuple[str, str, Reader]
_plans: dict[str, dict[str, Planned]] = {}


def parsed(document: dict[str, Any], message: Message) -> bool:
    """Fills `message` from `document` and says True, or says False (the message is then
    in no defined state: read the document into a new one with json_format)."""
    try:
        _fill(message, document)
    except (_Declined, ValueError, TypeError):
        return False
    return True


def _fill(message: Message, document: dict[str, Any]) -> None:
    descriptor: Any = message.DESCRIPTOR
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        plan = _plans[descriptor.full_name] = _plan(descriptor)
    seen: set[str] = set()
    for key, value in document.items():
        planned = plan.get(key)
        if planned is None:
            raise _Declined
        name, named, read = planned
        if named in seen:
            raise _Declined
        seen.add(named)
        read(message, name, value)


def _plan(descriptor: Descriptor) -> dict[str, Planned]:
    plan: dict[str, Planned] = {}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        planned = (field.name, field.name if oneof is None else oneof.name, _reader(field))
        plan[field.name] = planned
        plan[getattr(field, "json_name")] = planned  # noqa: B009 - not in the stubs
    return plan


def _reader(field: FieldDescriptor) -> Reader:
    nested = field.message_type
    if nested is not None and nested.GetOptions().map_entry:
        return _decline
    if nested is not None:
        single_message = _message_reader(nested)
        if field.is_repeated:
            return lambda message, name, value: _each_message(message, name, value, single_message)
        return lambda message, name, value: single_message(getattr(message, name), value)
    convert = _scalar(field)
    if field.is_repeated:
        return lambda message, name, value: getattr(message, name).extend(_each(value, convert))
    return lambda message, name, value: setattr(message, name, convert(value))


def _decline(message: Message, name: str, value: Any) -> None:
    raise _Declined


def _each(values: Any, convert: Callable[[Any], Any]) -> list[Any]:
    if type(values) is not list:
        raise _Declined
    return [convert(value) for value in values]


def _each_message(
    message: Message, name: str, values: Any, read: Callable[[Message, Any], None]
) -> None:
    if type(values) is not list:
        raise _Declined
    container = getattr(message, name)
    for value in values:
        read(container.add(), value)


def _message_reader(nested: Descriptor) -> Callable[[Message, Any], None]:
    if nested.full_name in _from_strings:
        return _from_string
    if nested.full_name.startswith("google.protobuf."):
        return lambda message, value: _decline(message, "", value)

    def read(message: Message, value: Any) -> None:
        if type(value) is not dict:
            raise _Declined
        message.SetInParent()
        _fill(message, value)

    return read


def _from_string(message: Any, value: Any) -> None:
    if type(value) is not str:
        raise _Declined
    message.FromJsonString(value)


def _scalar(field: FieldDescriptor) -> Callable[[Any], Any]:
    kind = field.cpp_type
    if kind in _integer_ranges:
        low, high = _integer_ranges[kind]
        return lambda value: _integer(value, low, high)
    if kind == _Field.CPPTYPE_BOOL:
        return _boolean
    if kind == _Field.CPPTYPE_STRING and field.type == _Field.TYPE_STRING:
        return _text
    if kind == _Field.CPPTYPE_ENUM and field.enum_type.full_name != "google.protobuf.NullValue":
        numbers = {value.name: value.number for value in field.enum_type.values}
        return lambda value: _enum(value, numbers)
    return _refuse


def _integer(value: Any, low: int, high: int) -> int:
    if type(value) is int:
        number = value
    elif type(value) is str and _digits.fullmatch(value):
        number = int(value)
    else:
        raise _Declined
    if not low <= number <= high:
        raise _Declined
    return number


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Declined
    return value


def _text(value: Any) -> str:
    if type(value) is not str or _surrogate.search(value):
        raise _Declined
    return value


def _enum(value: Any, numbers: dict[str, int]) -> int:
    if type(value) is not str or value not in numbers:
        raise _Declined
    return numbers[value]


def _refuse(value: Any) -> Any:
    raise _Declined
