"""Answers in protobuf's canonical JSON mapping, printed as `json_format.MessageToDict`
prints them, several times faster.

`json_format`'s printer asks each field's descriptor what it is on every value it prints;
a receipt of ten lines cost about 200 µs, more than the gRPC call that made it. Here each
field is planned once (its JSON name and a converter chosen by its type) and each message
type's printer is kept, so a message costs one `ListFields()` and one converter call per
set field. The output is the same object `MessageToDict` gives (a property test compares
them over generated messages of the whole contract): set fields only, JSON names, 64-bit
integers as strings, enums by name, bytes in base64, special floats as strings; the
well-known types (Timestamp, Duration, wrappers, Struct...) are printed by `json_format`
itself.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

Converter = Callable[[Any], Any]
_Field = FieldDescriptor
_printers: dict[str, Callable[[Message], Any]] = {}
# A float field's value as json_format prints it: the shortest decimal that reads back the
# same 32-bit float (not in the runtime's type stubs).
_shortest_float: Callable[[float], float] = getattr(type_checkers, "ToShortestFloat")  # noqa: B009
_strings = {
    _Field.CPPTYPE_INT64,
    _Field.CPPTYPE_UINT64,
}
# Well-known types whose JSON form is the string their own ToJsonString() makes (as
# json_format prints them).
_json_strings = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
}


def message_to_dict(message: Message) -> Any:
    """`message` as `json_format.MessageToDict(message)` gives it."""
    descriptor: Any = message.DESCRIPTOR
    return _printer(descriptor)(message)


def _printer(descriptor: Descriptor) -> Callable[[Message], Any]:
    printer = _printers.get(descriptor.full_name)
    if printer is None:
        if descriptor.full_name in _json_strings:
            printer = _json_string
        elif descriptor.full_name.startswith("google.protobuf."):
            printer = json_format.MessageToDict
        else:
            printer = _regular_printer()
        _printers[descriptor.full_name] = printer
    return printer


def _json_string(message: Any) -> str:
    text: str = message.ToJsonString()
    return text


def _regular_printer() -> Callable[[Message], dict[str, Any]]:
    # Each field's JSON name and converter (None: the value is its own JSON form).
    plans: dict[FieldDescriptor, tuple[str, Converter | None]] = {}

    def print_message(message: Message) -> dict[str, Any]:
        printed: dict[str, Any] = {}
        for field, value in message.ListFields():
            plan = plans.get(field)
            if plan is None:
                converter = _converter(field)
                # json_name is in the runtime's descriptors, not in their type stubs.
                name: str = getattr(field, "json_name")  # noqa: B009
                plan = plans[field] = (name, None if converter is _same else converter)
            printed[plan[0]] = value if plan[1] is None else plan[1](value)
        return printed

    return print_message


def _converter(field: FieldDescriptor) -> Converter:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        entry = field.message_type
        key = _map_key
        value = _value_converter(entry.fields_by_name["value"])
        return lambda items: {key(name): value(item) for name, item in items.items()}
    single = _value_converter(field)
    if field.is_repeated:
        if single is _same:
            return list
        return lambda values: [single(item) for item in values]
    return single


def _same(value: Any) -> Any:
    return value


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _value_converter(field: FieldDescriptor) -> Converter:
    kind = field.cpp_type
    if kind == _Field.CPPTYPE_MESSAGE:
        return _printer(field.message_type)
    if kind == _Field.CPPTYPE_ENUM:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return lambda value: None
        names = {value.number: value.name for value in field.enum_type.values}
        return lambda value: names.get(value, value)
    if kind in _strings:
        return str
    if field.type == _Field.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode("utf-8")
    if kind == _Field.CPPTYPE_DOUBLE:
        return _double
    if kind == _Field.CPPTYPE_FLOAT:
        return _float
    return _same


def _special(value: float) -> str | None:
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return None


def _double(value: float) -> Any:
    special = _special(value)
    return value if special is None else special


def _float(value: float) -> Any:
    special = _special(value)
    return _shortest_float(value) if special is None else special
