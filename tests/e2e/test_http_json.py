"""Every RPC over HTTP/1.1 with JSON: the same servicers, answers and refusals as gRPC.

A POS that cannot speak HTTP/2 calls `POST /purse.v1.TerminalService/<Method>` with the
request in protobuf's JSON mapping and gets the gRPC call's answer in the same mapping, or
its google.rpc.Status as Connect's error JSON with the HTTP status AIP-193 gives the code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from support import ServerProcess, Tenant, bearer, new_phone, operator_key
from test_transactions import sale

from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

call_seconds_max = 10.0
terminal_service = "/purse.v1.TerminalService"


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.http_port}", timeout=call_seconds_max
    ) as client:
        yield client


def headers(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}", "content-type": "application/json"}


def reason_of(answer: httpx.Response) -> str:
    for detail in answer.json()["details"]:
        if detail["type"] == "google.rpc.ErrorInfo":
            info = error_details_pb2.ErrorInfo.FromString(_unpadded(detail["value"]))
            assert detail["debug"]["reason"] == info.reason
            return str(info.reason)
    raise AssertionError(f"no ErrorInfo in {answer.text}")


def violations_of(answer: httpx.Response) -> dict[str, str]:
    for detail in answer.json()["details"]:
        if detail["type"] == "google.rpc.BadRequest":
            return {
                violation["field"]: violation["description"]
                for violation in detail["debug"]["fieldViolations"]
            }
    return {}


def _unpadded(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def as_json(message: Any) -> dict[str, Any]:
    document: dict[str, Any] = json_format.MessageToDict(message)
    return document


async def test_a_customer_is_identified_over_http_json_as_over_grpc(
    http: httpx.AsyncClient, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    request = pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone))
    # The first identification enrols the phone; both answers below are of the member.
    over_grpc = await terminal_stub.IdentifyCustomer(
        request, metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
    )
    answer = await http.post(
        f"{terminal_service}/IdentifyCustomer",
        json=as_json(request),
        headers=headers(business.cash_desk.api_key),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    over_grpc = await terminal_stub.IdentifyCustomer(
        request, metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
    )
    assert answer.json() == as_json(over_grpc)
    assert answer.json()["membership"]["phone"] == phone


async def test_a_check_processed_over_http_is_applied_once_and_answered_alike_when_retried(
    http: httpx.AsyncClient, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    request = sale(f"H-{new_phone()}", new_phone())
    first, again = [
        await http.post(
            f"{terminal_service}/ProcessCheck",
            json=as_json(request),
            headers=headers(business.cash_desk.api_key),
        )
        for _ in range(2)
    ]
    assert first.status_code == 200, first.text
    assert again.json()["transaction"] == first.json()["transaction"]
    assert first.json()["membership"]["newlyEnrolled"] is True
    over_grpc = await terminal_stub.ProcessCheck(
        request, metadata=bearer(business.cash_desk.api_key), timeout=call_seconds_max
    )
    # A retry is answered from the stored receipt and the membership as it is now.
    assert as_json(over_grpc) == again.json()
    assert first.json()["transaction"]["transactionId"]


async def test_the_binary_form_is_answered_in_the_binary_form(
    http: httpx.AsyncClient, business: Tenant
) -> None:
    phone = new_phone()
    request = pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone))
    answer = await http.post(
        f"{terminal_service}/IdentifyCustomer",
        content=request.SerializeToString(),
        headers={
            "authorization": f"Bearer {business.cash_desk.api_key}",
            "content-type": "application/proto",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/proto"
    assert pb.IdentifyCustomerResponse.FromString(answer.content).membership.phone == phone


async def test_a_wrong_field_is_refused_400_naming_its_proto_path_and_nothing_is_applied(
    http: httpx.AsyncClient, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    number = f"H-{new_phone()}"
    document = as_json(sale(number, new_phone()))
    document["check"]["lines"][0]["quantityThousandths"] = "a thousand"
    answer = await http.post(
        f"{terminal_service}/ProcessCheck",
        json=document,
        headers=headers(business.cash_desk.api_key),
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_argument"
    assert reason_of(answer) == "REQUEST_UNDECODABLE"
    assert list(violations_of(answer)) == ["check.lines[0].quantity_thousandths"]
    listed = await terminal_stub.ListTransactions(
        pb.ListTransactionsRequest(),
        metadata=bearer(business.cash_desk.api_key),
        timeout=call_seconds_max,
    )
    assert number not in {transaction.check_number for transaction in listed.transactions}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identifier": {"phone": 380}}, "identifier.phone"),
        ({"identifier": {"fax": "1"}}, "identifier.'fax'"),
        ({"identifier": {"phone": "+380\u00001"}}, "identifier.phone"),
    ],
)
async def test_json_the_method_cannot_take_is_refused_by_field(
    http: httpx.AsyncClient, business: Tenant, body: dict[str, Any], field: str
) -> None:
    answer = await http.post(
        f"{terminal_service}/IdentifyCustomer",
        json=body,
        headers=headers(business.cash_desk.api_key),
    )
    assert answer.status_code == 400
    assert list(violations_of(answer)) == [field]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/purse.admin.v1.AdminService/GetCaller", {"shoeSize": 42}, "'shoeSize'"),
        ("/purse.platform.v1.PlatformService/CreateBusiness", {"name": 42}, "name"),
        (f"{terminal_service}/ListTransactions", {"pageToken": None}, "page_token"),
        (f"{terminal_service}/ListTransactions", {"status": 2}, "status"),
        (f"{terminal_service}/ListTransactions", {"status": False}, "status"),
        (f"{terminal_service}/ListTransactions", {"terminalId": -(2**63) - 1}, "terminal_id"),
    ],
)
async def test_json_the_document_does_not_describe_is_refused_by_field_by_every_service(
    http: httpx.AsyncClient,
    business: Tenant,
    pool: asyncpg.Pool,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    credentials = {
        "purse.v1": business.cash_desk.api_key,
        "purse.admin.v1": business.administrator_api_key,
        "purse.platform.v1": await operator_key(pool),
    }
    credential = credentials[path.split("/")[1].rsplit(".", 1)[0]]
    answer = await http.post(path, json=body, headers=headers(credential))
    assert answer.status_code == 400
    assert reason_of(answer) == "REQUEST_UNDECODABLE"
    assert list(violations_of(answer)) == [field]


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'"text"', b"", b'{"identifier": {"phone": "1"}']
)
async def test_a_body_that_is_not_a_json_object_is_refused_400(
    http: httpx.AsyncClient, business: Tenant, body: bytes
) -> None:
    answer = await http.post(
        f"{terminal_service}/IdentifyCustomer",
        content=body,
        headers=headers(business.cash_desk.api_key),
    )
    assert answer.status_code == 400
    assert reason_of(answer) == "REQUEST_UNDECODABLE"


async def test_a_call_without_credentials_is_refused_401_with_the_grpc_reason(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post(
        f"{terminal_service}/IdentifyCustomer",
        json={"identifier": {"phone": new_phone()}},
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"
    assert reason_of(answer) == "CREDENTIALS_MISSING"


async def test_requests_http_itself_refuses_get_their_status_and_reason(
    http: httpx.AsyncClient, business: Tenant
) -> None:
    key = business.cash_desk.api_key
    unknown = await http.post("/purse.v1.TerminalService/Teleport", json={}, headers=headers(key))
    assert (unknown.status_code, reason_of(unknown)) == (404, "NOT_FOUND")
    fetched = await http.get(f"{terminal_service}/IdentifyCustomer")
    assert (fetched.status_code, reason_of(fetched)) == (405, "HTTP_METHOD_NOT_ALLOWED")
    assert fetched.headers["allow"] == "POST"
    as_text = await http.post(
        f"{terminal_service}/IdentifyCustomer",
        content=b"{}",
        headers={"authorization": f"Bearer {key}", "content-type": "text/plain"},
    )
    assert (as_text.status_code, reason_of(as_text)) == (415, "CONTENT_TYPE_UNSUPPORTED")
    timed = await http.post(
        f"{terminal_service}/IdentifyCustomer",
        json={},
        headers={**headers(key), "connect-timeout-ms": "soon"},
    )
    assert (timed.status_code, reason_of(timed)) == (400, "INVALID_ARGUMENT")


async def test_a_body_over_the_limit_is_refused_413_before_it_is_sent(
    server: ServerProcess, business: Tenant
) -> None:
    def announce_large_body() -> bytes:
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as opened:
            opened.sendall(
                b"POST /purse.v1.TerminalService/IdentifyCustomer HTTP/1.1\r\n"
                b"host: purse\r\ncontent-type: application/json\r\n"
                b"authorization: Bearer " + business.cash_desk.api_key.encode() + b"\r\n"
                b"expect: 100-continue\r\ncontent-length: 5242880\r\n\r\n"
            )
            received = b""
            while chunk := opened.recv(4096):
                received += chunk
            return received

    answer = await asyncio.to_thread(announce_large_body)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"REQUEST_TOO_LARGE" in answer


async def test_a_request_head_over_the_limit_is_answered_431_and_closed(
    server: ServerProcess,
) -> None:
    def send_large_head() -> bytes:
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as opened:
            opened.sendall(
                b"POST /purse.v1.TerminalService/IdentifyCustomer HTTP/1.1\r\n"
                + b"x-padding: "
                + b"a" * 64 * 1024
                + b"\r\n\r\n"
            )
            received = b""
            while chunk := opened.recv(4096):
                received += chunk
            return received

    assert (await asyncio.to_thread(send_large_head)).startswith(b"HTTP/1.1 431 ")


def ndjson(*messages: Any) -> bytes:
    return b"".join(json.dumps(as_json(message)).encode() + b"\n" for message in messages)


async def test_a_stream_of_checks_is_answered_line_by_line_in_ndjson(
    http: httpx.AsyncClient, business: Tenant
) -> None:
    messages = [
        pb.ProcessChecksRequest(checks=[sale(f"N-{new_phone()}", new_phone())]),
        pb.ProcessChecksRequest(
            checks=[sale(f"N-{new_phone()}", new_phone()), sale(f"N-{new_phone()}")]
        ),
    ]
    answer = await http.post(
        f"{terminal_service}/ProcessChecks",
        content=ndjson(*messages),
        headers={
            "authorization": f"Bearer {business.cash_desk.api_key}",
            "content-type": "application/x-ndjson",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [len(line["results"]) for line in lines] == [1, 2]
    assert all("processed" in result for line in lines for result in line["results"]), lines


async def test_a_stream_line_that_is_not_a_message_ends_the_stream_with_an_error_line(
    http: httpx.AsyncClient, business: Tenant
) -> None:
    good = pb.ProcessChecksRequest(checks=[sale(f"N-{new_phone()}", new_phone())])
    answer = await http.post(
        f"{terminal_service}/ProcessChecks",
        content=ndjson(good) + b'{"checks": 7}\n' + ndjson(good),
        headers={
            "authorization": f"Bearer {business.cash_desk.api_key}",
            "content-type": "application/x-ndjson",
        },
    )
    assert answer.status_code == 200
    first, last = [json.loads(line) for line in answer.text.splitlines()]
    assert len(first["results"]) == 1
    assert last["error"]["code"] == "invalid_argument"
    assert last["error"]["details"][1]["debug"]["fieldViolations"][0]["field"] == "checks"


async def test_a_stream_refused_before_any_answer_gets_the_error_as_its_response(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post(
        f"{terminal_service}/ProcessChecks",
        content=ndjson(pb.ProcessChecksRequest(checks=[sale(f"N-{new_phone()}")])),
        headers={"authorization": "Bearer nobody", "content-type": "application/x-ndjson"},
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"


async def test_http_calls_are_counted_with_the_grpc_calls_in_the_metrics(
    http: httpx.AsyncClient,
) -> None:
    await http.post(f"{terminal_service}/IdentifyCustomer", json={}, headers={})
    metrics = (await http.get("/metrics")).text
    method = f"{terminal_service}/IdentifyCustomer"
    assert f'purse_grpc_calls_total{{code="UNAUTHENTICATED",method="{method}"}}' in metrics
    assert grpc.StatusCode.UNAUTHENTICATED.name in metrics


async def test_the_openapi_document_and_its_reference_page_are_served_from_the_server(
    http: httpx.AsyncClient,
) -> None:
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert f"{terminal_service}/ProcessCheck" in document["paths"]
    page = await http.get("/docs")
    assert page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    script = await http.get("/docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert (await http.get("/docs/..%2Fpyproject.toml")).status_code == 404
