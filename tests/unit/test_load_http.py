"""The load benchmark's HTTP/JSON side (benchmarks/load): the JSON requests it sends, how
it reads an answer off a kept-alive connection, and the gRPC code it counts each by."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest
from google.protobuf import json_format

from purse.v1 import terminal_service_pb2 as pb

# benchmarks/ is not an installed package: import it from the repository, as `make` does.
_repository = Path(__file__).resolve().parents[2]
if str(_repository) not in sys.path:
    sys.path.insert(0, str(_repository))

from benchmarks.load import generator, http_client  # noqa: E402

target = generator.Target("127.0.0.1:1", "key", generator.PhoneNumbers("+38063", 50))


@pytest.mark.parametrize(
    ("workload", "message_class"),
    [("identify", pb.IdentifyCustomerRequest), ("process", pb.ProcessCheckRequest)],
)
def test_an_http_request_is_the_grpc_request_of_the_same_call_in_canonical_json(
    workload: str, message_class: type[pb.IdentifyCustomerRequest | pb.ProcessCheckRequest]
) -> None:
    over_grpc = generator.Requests(workload, target, "run", 1, 2, 1)
    over_http = generator.Requests(f"http-{workload}", target, "run", 1, 2, 1)

    for sequence in range(60):  # past the 50 customers: a kept request is used again
        binary = message_class.FromString(over_grpc.message(sequence))
        document = orjson.loads(over_http.message(sequence))
        assert json_format.ParseDict(document, message_class()) == binary
        assert document == json_format.MessageToDict(binary)


def test_an_http_process_request_carries_a_unique_check_number_and_the_ten_line_check() -> None:
    requests = generator.Requests("http-process", target, "run", 0, 1, 1)

    first, second = (orjson.loads(requests.message(sequence)) for sequence in (0, 1))

    assert (first["checkNumber"], second["checkNumber"]) == ("run-0-0", "run-0-1")
    assert len(first["check"]["lines"]) == 10
    assert first["identifier"] != second["identifier"]


def test_a_request_is_its_prepared_head_then_its_length_and_body() -> None:
    request = http_client.HttpRequest(
        "127.0.0.1:8080", "/purse.v1.TerminalService/IdentifyCustomer", {"authorization": "x"}
    )

    assert request.bytes_for(b'{"a":1}') == (
        b"POST /purse.v1.TerminalService/IdentifyCustomer HTTP/1.1\r\n"
        b"host: 127.0.0.1:8080\r\nauthorization: x\r\ncontent-length: 7\r\n\r\n"
        b'{"a":1}'
    )


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, b"{}", "OK"),
        (204, b"", "OK"),
        (401, b'{"code":"unauthenticated","message":"no key"}', "UNAUTHENTICATED"),
        (400, b'{"code":"failed_precondition","message":"used"}', "FAILED_PRECONDITION"),
        (409, b'{"code":"aborted"}', "ABORTED"),
        (503, b"Service Unavailable", "UNAVAILABLE"),  # uvicorn's own, over its limit
        (400, b"not json", "INTERNAL"),
        (404, b'{"code":"no_such_code"}', "UNIMPLEMENTED"),
        (418, b"[1, 2]", "UNKNOWN"),
    ],
)
def test_an_answer_counts_by_its_connect_code_or_else_by_its_http_status(
    status: int, body: bytes, code: str
) -> None:
    assert http_client.code_name(status, body) == code


class RecordedTransport(asyncio.Transport):
    """What a connection writes, and whether it closed; no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.written = asyncio.Event()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))
        self.written.set()

    def close(self) -> None:
        self.closed = True


def connected() -> tuple[http_client._Connection, RecordedTransport]:
    connection = http_client._Connection()
    transport = RecordedTransport()
    connection.connection_made(transport)
    return connection, transport


async def answered(
    connection: http_client._Connection, transport: RecordedTransport, *chunks: bytes
) -> tuple[int, bytes]:
    transport.written.clear()
    exchange = asyncio.ensure_future(connection.exchange(b"request"))
    await transport.written.wait()
    for chunk in chunks:
        connection.data_received(chunk)
    return await exchange


async def test_answers_on_a_kept_alive_connection_are_read_one_after_another() -> None:
    connection, transport = connected()

    first = await answered(
        connection,
        transport,
        b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{"a":',
        b'"bcd"}',
    )
    second = await answered(
        connection,
        transport,
        b"HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n"
        b'3\r\n{"c\r\n5\r\node"}\r\n0\r\n\r\n',
    )

    assert first == (200, b'{"a":"bcd"}')
    assert second == (401, b'{"code"}')
    assert transport.sent == [b"request", b"request"]
    assert connection.reusable
    assert not transport.closed


async def test_an_answer_that_closes_the_connection_leaves_it_not_reusable() -> None:
    connection, transport = connected()

    answer = await answered(
        connection,
        transport,
        b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    )

    assert answer == (413, b"{}")
    assert not connection.reusable
    assert transport.closed


@pytest.mark.parametrize(
    ("received", "lost"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{", True),  # closed mid-body
        (b"\x00 not HTTP\r\n\r\n", False),
    ],
)
async def test_a_connection_lost_mid_answer_or_an_unparsable_answer_fails_the_call(
    received: bytes, lost: bool
) -> None:
    connection, transport = connected()
    exchange = asyncio.ensure_future(connection.exchange(b"request"))
    await transport.written.wait()

    connection.data_received(received)
    if lost:
        connection.connection_lost(None)

    with pytest.raises(http_client.ConnectionClosed):
        await exchange
    assert not connection.reusable
    assert transport.closed
