"""Request bodies in JSON: what the OpenAPI document describes is taken, and nothing else,
each refusal naming the field by its proto path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.protobuf.message import Message

from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.api.grpc.common.surface import Refused
from purse.api.http.json_requests import decode
from purse.v1 import terminal_service_pb2 as pb


def refused_field(body: bytes, message_class: type[Message]) -> str:
    """The one field a refusal of `body` names."""
    decoded = decode(body, message_class)
    assert isinstance(decoded, Refused), f"taken: {decoded}"
    assert decoded.refusal.reason == "REQUEST_UNDECODABLE"
    [violation] = decoded.refusal.violations
    return violation.field


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"pageToken": None}, "page_token"),
        ({"check": None}, "check"),
        ({"check": {"lines": None}}, "check.lines"),
        ({"check": {"lines": [{"position": 1}, {"title": None}]}}, "check.lines[1].title"),
        ({"redemption": {"couponCodes": ["A", None]}}, "redemption.coupon_codes[1]"),
    ],
)
def test_null_is_refused_wherever_it_stands(document: dict[str, Any], field: str) -> None:
    message_class = pb.ListGoodsRequest if "pageToken" in document else pb.CalculateCheckRequest
    assert refused_field(orjson.dumps(document), message_class) == field


def test_null_as_a_map_value_is_refused_naming_the_map() -> None:
    body = orjson.dumps({"accountType": {"title": {"en": "Wallet", "uk": None}}})
    assert refused_field(body, catalogue.CreateAccountTypeRequest) == "account_type.title"


def test_null_inside_a_text_is_only_text() -> None:
    decoded = decode(b'{"pageToken": "null"}', pb.ListGoodsRequest)
    assert isinstance(decoded, pb.ListGoodsRequest)
    assert decoded.page_token == "null"


@pytest.mark.parametrize("status", [2, "2", 2.0, True, "TRANSACTION_STATUS_GONE"])
def test_an_enum_value_is_taken_by_its_name_only(status: object) -> None:
    body = orjson.dumps({"status": status})
    assert refused_field(body, pb.ListTransactionsRequest) == "status"


def test_an_enum_value_named_is_taken() -> None:
    decoded = decode(b'{"status": "TRANSACTION_STATUS_COMPLETED"}', pb.ListTransactionsRequest)
    assert isinstance(decoded, pb.ListTransactionsRequest)
    assert decoded.status == pb.TRANSACTION_STATUS_COMPLETED


@pytest.mark.parametrize(
    "integer", [b"-9223372036854775809", b"9223372036854775808", b"99999999999999999999999"]
)
def test_an_integer_past_64_bits_is_refused_not_rounded(integer: bytes) -> None:
    body = b'{"terminalId": ' + integer + b"}"
    assert refused_field(body, pb.ListTransactionsRequest) == "terminal_id"


def test_the_smallest_int64_is_taken_exactly() -> None:
    decoded = decode(b'{"terminalId": -9223372036854775808}', pb.ListTransactionsRequest)
    assert isinstance(decoded, pb.ListTransactionsRequest)
    assert decoded.terminal_id == -(2**63)


@pytest.mark.parametrize("body", [b'{"pageSize": NaN}', b'{"pageSize": Infinity}', b"\xff{}"])
def test_what_is_not_json_is_refused_as_a_whole(body: bytes) -> None:
    decoded = decode(body, pb.ListGoodsRequest)
    assert isinstance(decoded, Refused)
    assert decoded.refusal.reason == "REQUEST_UNDECODABLE"
    assert decoded.refusal.message.startswith("the body is not JSON")


def test_a_body_nested_deeper_than_any_request_is_refused() -> None:
    depth = 1_000
    body = b'{"pageToken": ' + b"[" * depth + b"]" * depth + b"}"
    decoded = decode(body, pb.ListGoodsRequest)
    assert isinstance(decoded, Refused)
    assert decoded.refusal.reason == "REQUEST_UNDECODABLE"
