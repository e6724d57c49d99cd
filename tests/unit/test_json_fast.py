"""The fast reader of requests accepts only what json_format accepts, as the same message:
documents printed from random messages of the whole contract (JSON names or proto names),
and the same documents with one member replaced by any JSON value."""

from __future__ import annotations

from typing import Any

from contract_messages import filled, message_types
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from purse.api.http.json_fast import parsed
from purse.v1 import terminal_service_pb2 as pb

_json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["1", "-7", "+3", "1_000", " 5", "1e3", "NaN", "2026-12-07T10:00:00Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def _replace_one(document: Any, data: st.DataObject) -> Any:
    """`document` with one member, at any depth (mostly a leaf), replaced by any JSON value."""
    descend = data.draw(st.integers(0, 9)) > 0
    if isinstance(document, dict) and document and descend:
        key = data.draw(st.sampled_from(sorted(document)))
        return {**document, key: _replace_one(document[key], data)}
    if isinstance(document, list) and document and descend:
        index = data.draw(st.integers(0, len(document) - 1))
        return [*document[:index], _replace_one(document[index], data), *document[index + 1 :]]
    return data.draw(_json_values)


def _read_as_json_format(descriptor: Descriptor, document: Any) -> Any:
    message = message_factory.GetMessageClass(descriptor)()
    json_format.ParseDict(document, message)
    return message


_hot_requests = [
    pb.ProcessCheckRequest.DESCRIPTOR,
    pb.CalculateCheckRequest.DESCRIPTOR,
    pb.IdentifyCustomerRequest.DESCRIPTOR,
    pb.ProcessChecksRequest.DESCRIPTOR,
]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(message_types) | st.sampled_from(_hot_requests), st.data())
def test_what_the_fast_reader_accepts_json_format_reads_as_the_same_message(
    descriptor: Descriptor, data: st.DataObject
) -> None:
    source = filled(message_factory.GetMessageClass(descriptor)(), data, 0)
    proto_names = data.draw(st.booleans())
    document = json_format.MessageToDict(source, preserving_proto_field_name=proto_names)
    if data.draw(st.booleans()):
        document = _replace_one(document, data)
    if not isinstance(document, dict):
        return
    message = message_factory.GetMessageClass(descriptor)()
    if parsed(document, message):
        assert message == _read_as_json_format(descriptor, document)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["position", "productCode", "priceMinorUnits", "quantityThousandths"]),
    _json_values,
)
def test_any_value_of_a_check_line_is_read_as_json_format_reads_it_or_declined(
    member: str, value: Any
) -> None:
    line = {"position": 1, "productCode": "LATTE", "priceMinorUnits": "7000", member: value}
    document = {"checkNumber": "A-1", "check": {"lines": [line]}}
    message = pb.ProcessCheckRequest()
    if parsed(document, message):
        assert message == _read_as_json_format(pb.ProcessCheckRequest.DESCRIPTOR, document)


def test_a_check_with_lines_and_a_sale_time_is_read_by_the_fast_reader() -> None:
    document = {
        "checkNumber": "A-1",
        "identifier": {"phone": "+380501234567"},
        "check": {
            "currency": "UAH",
            "lines": [{"position": 1, "productCode": "LATTE", "priceMinorUnits": "7000"}],
        },
        "redemption": {"pointsHundredths": 500, "couponCodes": ["C-1"]},
        "saleTime": "2026-12-07T10:00:00Z",
    }
    message = pb.ProcessCheckRequest()
    assert parsed(document, message)
    assert message == _read_as_json_format(pb.ProcessCheckRequest.DESCRIPTOR, document)


def test_forms_left_to_json_format_are_declined() -> None:
    for document in (
        {"checkNumber": "A", "check_number": "B"},
        {"identifier": {"phone": "1", "cardNumber": "2"}},
        {"check": {"lines": [{"position": "+1"}]}},
        {"check": {"lines": [{"position": 1.5}]}},
        {"check": {"lines": [{"priceMinorUnits": 2**63}]}},
        {"redemption": {"couponCodes": "C-1"}},
        {"check": None},
        {"unknown": 1},
    ):
        assert not parsed(document, pb.ProcessCheckRequest()), document
