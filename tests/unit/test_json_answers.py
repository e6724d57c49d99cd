"""The fast printer gives what json_format.MessageToDict gives, for any message of the
contract: generated messages of every response type (and every request type), with every
kind of field set to ordinary and extreme values."""

from __future__ import annotations

from contract_messages import filled, message_types
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from purse.api.http.json_answers import message_to_dict
from purse.v1 import terminal_service_pb2


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(message_types), st.data())
def test_any_contract_message_prints_as_message_to_dict_prints_it(
    descriptor: Descriptor, data: st.DataObject
) -> None:
    message = filled(message_factory.GetMessageClass(descriptor)(), data, 0)
    # Special floats are strings in both ("NaN", "Infinity"), so plain equality holds.
    assert message_to_dict(message) == json_format.MessageToDict(message)


def test_an_empty_message_is_an_empty_object() -> None:
    assert message_to_dict(terminal_service_pb2.ProcessCheckResponse()) == {}
