"""Whatever bytes a caller sends, the answer is a clear refusal that names the field,
never INTERNAL or UNKNOWN, never an echo that grows with the input."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_status import rpc_status
from support import ServerProcess, Tenant, bearer, error_reason, field_violations, new_phone
from test_transactions import sale

from purse.admin.v1 import setup_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

call_seconds_max = 10.0
# What an error may weigh at most; gRPC clients refuse trailers over 16 KiB.
error_details_bytes_max = 8_192
# Serializers that send and receive bytes as they are.
as_bytes: dict[str, Any] = {
    "request_serializer": lambda payload: payload,
    "response_deserializer": lambda payload: payload,
}


def details_size(error: grpc.aio.AioRpcError) -> int:
    status = rpc_status.from_call(error)
    assert status is not None
    return len(status.SerializeToString())


async def test_bytes_that_are_not_protobuf_are_invalid_argument(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    raw = channel.unary_unary("/purse.v1.TerminalService/IdentifyCustomer", **as_bytes)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await raw(
            b"\xff\xff\xff\xff not protobuf",
            metadata=bearer(business.cash_desk.api_key),
            timeout=call_seconds_max,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "REQUEST_UNDECODABLE"
    status = rpc_status.from_call(refused.value)
    assert status is not None and b"DecodeError" not in status.SerializeToString()


@pytest.mark.parametrize(
    "method",
    ["/purse.admin.v1.AdminService/GetCaller", "/purse.platform.v1.PlatformService/CreateBusiness"],
)
async def test_bytes_that_are_not_protobuf_are_invalid_argument_for_every_service(
    channel: grpc.aio.Channel, business: Tenant, method: str
) -> None:
    raw = channel.unary_unary(method, **as_bytes)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await raw(
            b"\xff\xff\xff\xff not protobuf",
            metadata=bearer(business.administrator_api_key),
            timeout=call_seconds_max,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "REQUEST_UNDECODABLE"


async def test_a_nul_character_in_a_back_office_request_is_refused_naming_the_field(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreatePointOfSale(
            setup_pb2.CreatePointOfSaleRequest(
                point_of_sale=setup_pb2.PointOfSale(
                    program_id=business.program_id, name="Kiosk\x00", time_zone="UTC"
                )
            ),
            metadata=bearer(business.administrator_api_key),
            timeout=call_seconds_max,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "STRING_HAS_NUL"
    assert list(field_violations(refused.value)) == ["point_of_sale.name"]


async def test_undecodable_stream_messages_are_invalid_argument(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    raw = channel.stream_stream("/purse.v1.TerminalService/ProcessChecks", **as_bytes)
    stream = raw(metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max)
    await stream.write(b"\x0a\xff\xff\xff\xff")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream.read()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "REQUEST_UNDECODABLE"


async def test_a_nul_character_anywhere_in_a_request_is_refused_naming_the_field(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    request = sale("NUL-1", new_phone())
    request.check.lines[0].title = "Latte\x00"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ProcessCheck(
            request, metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "STRING_HAS_NUL"
    assert list(field_violations(refused.value)) == ["check.lines[0].title"]
    with pytest.raises(grpc.aio.AioRpcError) as registered:
        await terminal_stub.RegisterCustomer(
            pb.RegisterCustomerRequest(phone=new_phone(), given_name="Ol\x00ena"),
            metadata=bearer(business.cash_desk.api_key),
            timeout=call_seconds_max,
        )
    assert registered.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(registered.value)) == ["given_name"]


@pytest.mark.parametrize("phone", ["+380٥٠١٢٣٤٥٦٧", "+38050123456²", "+" + "7" * 10_000])
async def test_phones_with_other_than_ascii_digits_or_too_long_are_refused_without_echo(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, phone: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.IdentifyCustomer(
            pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
            metadata=bearer(business.cash_desk.api_key),
            timeout=call_seconds_max,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "PHONE_INVALID"
    assert list(field_violations(refused.value)) == ["identifier.phone"]
    assert details_size(refused.value) < 1_000


@pytest.mark.parametrize(
    ("field", "count"),
    [("coupon_codes", 10_000), ("certificate_codes", 11), ("account_payments", 21)],
)
async def test_a_check_naming_too_many_codes_or_payments_is_refused_naming_the_list(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, field: str, count: int
) -> None:
    request = pb.CalculateCheckRequest(check=sale("X").check)
    if field == "account_payments":
        for _ in range(count):
            request.redemption.account_payments.add(account_type_id=1, maximum=True)
    else:
        getattr(request.redemption, field).extend(f"UNKNOWN-{n:06d}" for n in range(count))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.CalculateCheck(
            request, metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(refused.value)) == [f"redemption.{field}"]
    assert details_size(refused.value) < error_details_bytes_max


async def test_unknown_codes_within_the_limit_give_a_bounded_error(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    request = sale("MANY-CODES", new_phone())
    request.redemption.coupon_codes.extend("C" * 60 + f"{n:02d}" for n in range(20))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ProcessCheck(
            request, metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == "COUPON_NOT_USABLE"
    violations = field_violations(refused.value)
    assert list(violations) == [f"redemption.coupon_codes[{n}]" for n in range(20)]
    assert all(len(text) < 120 for text in violations.values())


@pytest.mark.parametrize(
    "token",
    [
        "MDAwMS0wMS0wMVQwMDowMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # 0001-01-01|huge id
        "OTk5OS0xMi0zMVQyMzo1OTo1OXwx",  # 9999-12-31T23:59:59|1, no time zone
        "not base64 at all!",
    ],
)
async def test_a_page_token_out_of_range_is_invalid_argument(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, token: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ListTransactions(
            pb.ListTransactionsRequest(page_token=token),
            metadata=bearer(business.cash_desk.api_key),
            timeout=call_seconds_max,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(refused.value)) == ["page_token"]


async def test_a_connection_silent_before_its_request_head_ends_is_dropped_after_the_limit(
    server: ServerProcess,
) -> None:
    def silent_connection_lifetime() -> float:
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as opened:
            opened.sendall(b"GET /metr")
            started = time.monotonic()
            assert opened.recv(1024) == b""
            return time.monotonic() - started

    assert await asyncio.to_thread(silent_connection_lifetime) < 5


async def test_stream_calls_and_their_messages_are_counted_in_the_metrics(
    server: ServerProcess, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    stream = terminal_stub.ProcessChecks(
        metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
    )
    await stream.write(pb.ProcessChecksRequest(checks=[sale("M-1", new_phone())]))
    await stream.read()
    await stream.done_writing()
    assert await stream.code() == grpc.StatusCode.OK
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    method = "/purse.v1.TerminalService/ProcessChecks"
    assert f'purse_grpc_calls_total{{code="OK",method="{method}"}}' in text
    assert f'purse_grpc_stream_messages_total{{method="{method}"}}' in text


@pytest.mark.parametrize("seconds", [253_402_300_799, -62_135_596_800])
async def test_a_time_filter_out_of_range_is_invalid_argument(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, seconds: int
) -> None:
    request = pb.ListTransactionsRequest()
    request.end_time.seconds = seconds
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ListTransactions(
            request, metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(refused.value)) == ["end_time"]
