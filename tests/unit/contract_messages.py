"""Messages of the whole contract, filled at random, for tests of the JSON forms."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from purse.admin.v1 import admin_service_pb2
from purse.platform.v1 import platform_service_pb2
from purse.v1 import terminal_service_pb2

_Field = FieldDescriptor
nesting_depth_max = 4
_services = [
    terminal_service_pb2.DESCRIPTOR.services_by_name["TerminalService"],
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
    platform_service_pb2.DESCRIPTOR.services_by_name["PlatformService"],
]
message_types = sorted(
    {
        message
        for service in _services
        for method in service.methods
        for message in (method.input_type, method.output_type)
    },
    key=lambda descriptor: descriptor.full_name,
)
_integers = {
    _Field.TYPE_INT32: (-(2**31), 2**31 - 1),
    _Field.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _Field.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _Field.TYPE_UINT32: (0, 2**32 - 1),
    _Field.TYPE_FIXED32: (0, 2**32 - 1),
    _Field.TYPE_INT64: (-(2**63), 2**63 - 1),
    _Field.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _Field.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _Field.TYPE_UINT64: (0, 2**64 - 1),
    _Field.TYPE_FIXED64: (0, 2**64 - 1),
}


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _integers:
        low, high = _integers[field.type]
        return st.integers(low, high)
    if field.type == _Field.TYPE_BOOL:
        return st.booleans()
    if field.type == _Field.TYPE_STRING:
        return st.text(max_size=8)
    if field.type == _Field.TYPE_BYTES:
        return st.binary(max_size=8)
    if field.type == _Field.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if field.type == _Field.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    assert field.type == _Field.TYPE_ENUM
    return st.sampled_from([value.number for value in field.enum_type.values])


def filled(message: Message, data: st.DataObject, depth: int) -> Message:
    for field in message.DESCRIPTOR.fields:
        if data.draw(st.booleans()):
            _fill_field(message, field, data, depth)
    return message


def _fill_field(message: Message, field: FieldDescriptor, data: st.DataObject, depth: int) -> None:
    nested = field.message_type
    container = getattr(message, field.name)
    if nested is not None and nested.GetOptions().map_entry:
        key_field, value_field = nested.fields_by_name["key"], nested.fields_by_name["value"]
        for _ in range(data.draw(st.integers(0, 2))):
            key = data.draw(scalar(key_field))
            if value_field.message_type is None:
                container[key] = data.draw(scalar(value_field))
            elif depth < nesting_depth_max:
                filled(container[key], data, depth + 1)
    elif (
        nested is not None
        and nested.full_name == "google.protobuf.Timestamp"
        and not field.is_repeated
    ):
        container.seconds = data.draw(st.integers(0, 2**32))
    elif nested is not None:
        if depth >= nesting_depth_max or nested.full_name.startswith("google.protobuf."):
            return
        for _ in range(data.draw(st.integers(0, 2)) if field.is_repeated else 1):
            filled(container.add() if field.is_repeated else container, data, depth + 1)
    elif field.is_repeated:
        container.extend(data.draw(st.lists(scalar(field), max_size=3)))
    else:
        setattr(message, field.name, data.draw(scalar(field)))
