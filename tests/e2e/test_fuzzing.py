"""Random and malformed requests to a real server: never INTERNAL or UNKNOWN, and a
refused call changes nothing.

Hypothesis builds every TerminalService request from its descriptor: strings with NUL
characters, foreign digits and lengths past every limit, integers at the ends of their
types, enum numbers the contract does not name, timestamps at the ends of what a
Timestamp holds, repeated fields longer than allowed, and ids of things that exist so
that the calls reach past the first check. Undecodable bytes go through a raw channel.
The state of the fuzzed business is compared before and after every refused call, and
the business fixture audits its ledger at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import asyncpg
import grpc
import pytest
from admin_support import customer_with_points, set_program
from google.protobuf import descriptor as descriptors
from google.protobuf import message_factory
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import Tenant, bearer
from test_transactions import sale

from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

_field = descriptors.FieldDescriptor
_methods = [
    method
    for method in pb.DESCRIPTOR.services_by_name["TerminalService"].methods
    if not method.client_streaming
]
# Codes a caller's request may earn; INTERNAL and UNKNOWN never.
_bad_codes = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
_depth_max = 4
_repeated_max = 6
_phones = ["+380501234567", "0501234567", "+38099" + "9" * 7, "٠٥٠١٢٣٤٥٦٧", "+1" + "9" * 40]
_words = ["", " ", "\x00", "a\x00b", "GOODS", "CAP", "ESPRESSO-1", "x" * 300, "ü" * 70, "\ud7ff"]

# Ids that exist in the fuzzed business, filled in before each test's first example.
_known_ids: list[int] = [0, 1, -1]
_prepared: dict[str, int] = {}


def _strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(_words + _phones),
        st.text(max_size=24),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=200),
    )


def _integers(field: descriptors.FieldDescriptor) -> st.SearchStrategy[int]:
    signed = {
        _field.TYPE_INT32: 31, _field.TYPE_SINT32: 31, _field.TYPE_SFIXED32: 31,
        _field.TYPE_INT64: 63, _field.TYPE_SINT64: 63, _field.TYPE_SFIXED64: 63,
    }  # fmt: skip
    bits = signed.get(field.type)
    if bits is None:
        unsigned_bits = 32 if field.type in (_field.TYPE_UINT32, _field.TYPE_FIXED32) else 64
        low, high = 0, 2**unsigned_bits - 1
    else:
        low, high = -(2**bits), 2**bits - 1
    edges = [value for value in (low, high, 0, 1, -1, 10**13, 10**9) if low <= value <= high]
    return st.one_of(
        st.sampled_from(edges),
        st.sampled_from([value for value in _known_ids if low <= value <= high]),
        st.integers(low, high),
        st.integers(max(low, -2_000), min(high, 2_000_000)),
    )


def _scalar(field: descriptors.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == _field.TYPE_STRING:
        return _strings()
    if field.type == _field.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == _field.TYPE_BOOL:
        return st.booleans()
    if field.type in (_field.TYPE_DOUBLE, _field.TYPE_FLOAT):
        return st.floats(allow_nan=False, width=32)
    if field.type == _field.TYPE_ENUM:
        return st.integers(-3, 12)  # named values and numbers the contract lacks
    return _integers(field)


@st.composite
def _message(draw: st.DrawFn, descriptor: descriptors.Descriptor, depth: int = 0) -> Message:
    message: Message = message_factory.GetMessageClass(descriptor)()
    if depth >= _depth_max:
        return message
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue  # no request has a map today
        if field.message_type is not None:
            children = _message(field.message_type, depth + 1)
            if field.is_repeated:
                for child in draw(st.lists(children, max_size=_repeated_max)):
                    getattr(message, field.name).add().CopyFrom(child)
            else:
                getattr(message, field.name).CopyFrom(draw(children))
        elif field.is_repeated:
            getattr(message, field.name).extend(
                draw(st.lists(_scalar(field), max_size=_repeated_max))
            )
        else:
            setattr(message, field.name, draw(_scalar(field)))
    return message


async def _state(pool: asyncpg.Pool, business_id: int) -> tuple[Any, ...]:
    row = await pool.fetchrow(
        """
        SELECT (SELECT count(*) FROM transactions WHERE business_id = $1),
               (SELECT string_agg(status, ',' ORDER BY transaction_id)
                  FROM transactions WHERE business_id = $1),
               (SELECT count(*) FROM ledger_entries WHERE business_id = $1),
               (SELECT coalesce(sum(balance), 0) || '/' || coalesce(sum(held), 0)
                  FROM pockets WHERE business_id = $1),
               (SELECT count(*) FROM memberships WHERE business_id = $1),
               (SELECT count(*) FROM customer_identifiers WHERE business_id = $1),
               (SELECT count(*) FROM refunds WHERE business_id = $1),
               (SELECT count(*) FROM outbox_messages WHERE business_id = $1)
        """,
        business_id,
    )
    assert row is not None
    return tuple(row)


async def _prepare(
    business: Tenant, stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
    """A customer with points, a completed and a pending sale: ids worth guessing."""
    await set_program(channel, business, points_redemption_limit_without_pin=100)
    phone = await customer_with_points(channel, business, 50_000)
    auth = bearer(business.cash_desk.api_key)
    completed = await stub.ProcessCheck(sale("FUZZ-1", phone), metadata=auth)
    pending = await stub.ProcessCheck(
        sale("FUZZ-2", phone, redeem=20_000, amount=100_000), metadata=auth
    )
    assert pending.transaction.status == pb.TRANSACTION_STATUS_PENDING
    _known_ids[3:] = sorted(
        {
            completed.transaction.transaction_id,
            pending.transaction.transaction_id,
            completed.membership.customer_id,
            business.cash_desk.terminal_id,
        }
    )


@pytest.mark.parametrize("method", _methods, ids=lambda method: method.name)
@settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
@given(data=st.data())
async def test_no_request_earns_an_internal_error_and_a_refused_one_changes_nothing(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant, method: Any, data: Any
) -> None:
    stub = TerminalServiceStub(channel)
    if _prepared.get("business") != business.business_id:
        await _prepare(business, stub, channel)
        _prepared["business"] = business.business_id
    request = data.draw(_message(method.input_type))
    before = await _state(pool, business.business_id)
    try:
        await getattr(stub, method.name)(
            request, metadata=bearer(business.cash_desk.api_key), timeout=10
        )
    except grpc.aio.AioRpcError as error:
        assert error.code() not in _bad_codes, (request, error.details())
        assert await _state(pool, business.business_id) == before, (request, error.code())


async def test_bytes_that_are_not_a_request_are_invalid_argument(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    for method in _methods:
        raw = channel.unary_unary(
            f"/purse.v1.TerminalService/{method.name}",
            request_serializer=lambda payload: payload,
            response_deserializer=lambda payload: payload,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await raw(b"\xff\xff\xff\xff", metadata=bearer(business.cash_desk.api_key), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method.name
        assert "DecodeError" not in (refused.value.details() or "")


@settings(
    max_examples=30, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
@given(messages=st.lists(_message(pb.ProcessChecksRequest.DESCRIPTOR), min_size=1, max_size=3))
async def test_a_stream_of_random_checks_answers_every_message_without_internal_errors(
    channel: grpc.aio.Channel, business: Tenant, messages: list[Message]
) -> None:
    stub = TerminalServiceStub(channel)
    answers = []
    try:
        async for answer in stub.ProcessChecks(
            # Built from ProcessChecksRequest.DESCRIPTOR, so they are ProcessChecksRequests.
            iter(cast("list[pb.ProcessChecksRequest]", messages)),
            metadata=bearer(business.cash_desk.api_key),
            timeout=20,
        ):
            answers.append(answer)
    except grpc.aio.AioRpcError as error:
        assert error.code() not in _bad_codes, error.details()
        return
    assert len(answers) == len(messages)
    for answer in answers:
        for result in answer.results:
            if result.WhichOneof("outcome") == "error":
                assert result.error.code not in {code.value[0] for code in _bad_codes}, result
