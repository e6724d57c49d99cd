"""The customer list through the API: the issue's example filter over customers whose
sales went through a till, pages both ways, the count, a wrong filter refused by its
path, another business seeing none of them, and the same call over HTTP/JSON."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
import httpx
from admin_support import assert_refused, credit_points, enrol, refused
from google.protobuf import json_format
from support import Tenant, bearer, found_business, make_terminal_through_api
from test_http_json import headers, http  # noqa: F401  (the fixture)
from test_transactions import sale

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import customers_pb2 as lists
from purse.admin.v1 import setup_pb2 as setup
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import terminal_service_pb2 as terminal_pb

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

_seconds_per_day = 86_400


def _condition(
    column: lists.CustomerColumn.ValueType,
    operator: lists.FilterOperator.ValueType,
    value: lists.FilterValue,
) -> lists.Filter:
    return lists.Filter(condition=lists.Condition(column=column, operator=operator, value=value))


# More than 5 sales, no visit in the last 30 days, more than 100 points.
loyal_but_away = lists.Filter(
    all=[
        _condition(
            lists.CUSTOMER_COLUMN_SALES_COUNT,
            lists.FILTER_OPERATOR_MORE_THAN,
            lists.FilterValue(integer=5),
        ),
        _condition(
            lists.CUSTOMER_COLUMN_LAST_VISIT,
            lists.FILTER_OPERATOR_LESS_THAN,
            lists.FilterValue(seconds_from_now=-30 * _seconds_per_day),
        ),
        _condition(
            lists.CUSTOMER_COLUMN_POINTS_BALANCE,
            lists.FILTER_OPERATOR_MORE_THAN,
            lists.FilterValue(integer=100_00),
        ),
    ]
)


async def customer_with_sales(
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    old_sales: int,
    points_hundredths: int,
    recent_sale: bool = False,
) -> int:
    """A customer with `old_sales` sales 40 days ago (and one now if asked), credited
    `points_hundredths`."""
    membership = await enrol(channel, business)
    till = bearer(business.cash_desk.api_key)
    sold_at = datetime.now(UTC) - timedelta(days=40)
    for number in range(old_sales):
        request = sale(f"old-{membership.customer_id}-{number}", membership.phone)
        request.sale_time.FromDatetime(sold_at + timedelta(minutes=number))
        await terminal_stub.ProcessCheck(request, metadata=till)
    if recent_sale:
        await terminal_stub.ProcessCheck(
            sale(f"new-{membership.customer_id}", membership.phone), metadata=till
        )
    if points_hundredths:
        await credit_points(channel, business, membership.customer_id, points_hundredths)
    return membership.customer_id


async def test_the_issue_s_filter_pages_both_ways_counts_and_stays_in_its_business(
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    pool: asyncpg.Pool,
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    key = bearer(business.administrator_api_key)
    least = await customer_with_sales(channel, terminal_stub, business, 6, 150_00)
    most = await customer_with_sales(channel, terminal_stub, business, 6, 300_00)
    middle = await customer_with_sales(channel, terminal_stub, business, 7, 200_00)
    await customer_with_sales(channel, terminal_stub, business, 6, 200_00, recent_sale=True)
    await customer_with_sales(channel, terminal_stub, business, 6, 0)
    await customer_with_sales(channel, terminal_stub, business, 2, 200_00)
    by_points = lists.CustomerSort(column=lists.CUSTOMER_COLUMN_POINTS_BALANCE)
    seen: dict[int, list[int]] = {}
    for direction in (lists.SORT_DIRECTION_ASCENDING, lists.SORT_DIRECTION_DESCENDING):
        by_points.direction = direction
        request = admin.ListCustomersRequest(filter=loyal_but_away, sort=by_points, page_size=2)
        first = await stub.ListCustomers(request, metadata=key)
        request.page_token = first.next_page_token
        second = await stub.ListCustomers(request, metadata=key)
        assert len(first.rows) == 2 and second.next_page_token == ""
        seen[direction] = [row.customer_id for row in [*first.rows, *second.rows]]
    assert seen[lists.SORT_DIRECTION_ASCENDING] == [least, middle, most]
    assert seen[lists.SORT_DIRECTION_DESCENDING] == [most, middle, least]
    counted = await stub.CountCustomers(
        admin.CountCustomersRequest(filter=loyal_but_away), metadata=key
    )
    everyone = await stub.CountCustomers(admin.CountCustomersRequest(), metadata=key)
    assert (counted.count, everyone.count) == (3, 6)
    row = (
        await stub.ListCustomers(
            admin.ListCustomersRequest(
                scope=lists.CustomerListScope(
                    customer_ids=[middle], terminal_id=business.cash_desk.terminal_id
                )
            ),
            metadata=key,
        )
    ).rows[0]
    assert (row.sales_count, row.sales_sum_minor_units, row.average_check_minor_units) == (
        7,
        70_000,
        10_000,
    )
    assert row.last_visit_time.ToDatetime(UTC) < datetime.now(UTC) - timedelta(days=39)
    assert row.points_balance_hundredths >= 200_00 and row.HasField("create_time")
    stranger = bearer((await found_business(channel, pool)).owner_api_key)
    theirs = await stub.ListCustomers(
        admin.ListCustomersRequest(scope=lists.CustomerListScope(customer_ids=[middle])),
        metadata=stranger,
    )
    nothing = await stub.CountCustomers(admin.CountCustomersRequest(), metadata=stranger)
    assert (list(theirs.rows), nothing.count) == ([], 0)


async def test_a_wrong_part_of_a_filter_is_refused_naming_its_path(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    wrong = lists.Filter(all=list(loyal_but_away.all))
    wrong.all[1].condition.value.CopyFrom(lists.FilterValue(text="a month ago"))
    error = await refused(
        stub.CountCustomers(
            admin.CountCustomersRequest(filter=wrong),
            metadata=bearer(business.administrator_api_key),
        )
    )
    assert_refused(
        error, grpc.StatusCode.INVALID_ARGUMENT, "FILTER_INVALID", "filter.all[1].condition.value"
    )
    empty = await refused(
        stub.ListCustomers(
            admin.ListCustomersRequest(filter=lists.Filter(any=[lists.Filter()])),
            metadata=bearer(business.administrator_api_key),
        )
    )
    assert_refused(empty, grpc.StatusCode.INVALID_ARGUMENT, "FILTER_INVALID", "filter.any[0]")


async def test_the_list_is_served_over_http_json_as_over_grpc(
    channel: grpc.aio.Channel,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    chosen = await customer_with_sales(channel, terminal_stub, business, 6, 200_00)
    await customer_with_sales(channel, terminal_stub, business, 1, 0)
    body = {"filter": json_format.MessageToDict(loyal_but_away), "pageSize": 10}
    answer = await http.post(
        "/purse.admin.v1.AdminService/ListCustomers",
        json=body,
        headers=headers(business.administrator_api_key),
    )
    assert answer.status_code == 200, answer.text
    assert [row["customerId"] for row in answer.json()["rows"]] == [str(chosen)]
    counted = await http.post(
        "/purse.admin.v1.AdminService/CountCustomers",
        json={"filter": body["filter"]},
        headers=headers(business.administrator_api_key),
    )
    assert counted.json() == {"count": "1"}


async def test_scoped_by_a_point_of_sale_the_list_shows_its_figures_and_a_refund_keeps_them(
    channel: grpc.aio.Channel, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    owner = bearer(business.administrator_api_key)
    shop = await stub.CreatePointOfSale(
        setup.CreatePointOfSaleRequest(
            point_of_sale=setup.PointOfSale(
                program_id=business.program_id, name="Second shop", time_zone="UTC"
            )
        ),
        metadata=owner,
    )
    second_shop = shop.point_of_sale.point_of_sale_id
    second_till = await make_terminal_through_api(
        channel, business.administrator_api_key, second_shop, terminal_pb.TERMINAL_KIND_CASH_DESK
    )
    phone = (await enrol(channel, business)).phone
    first_till = bearer(business.cash_desk.api_key)
    sold = [
        await terminal_stub.ProcessCheck(sale(number, phone, amount=amount), metadata=till)
        for number, amount, till in (
            ("PS-1", 10_000, first_till),
            ("PS-2", 20_001, first_till),
            ("PS-3", 5_000, bearer(second_till.api_key)),
        )
    ]

    async def figures() -> list[tuple[int, int, int]]:
        found = []
        for point_of_sale_id in (business.point_of_sale_id, second_shop, 0):
            answer = await stub.ListCustomers(
                admin.ListCustomersRequest(
                    scope=lists.CustomerListScope(point_of_sale_id=point_of_sale_id)
                ),
                metadata=owner,
            )
            [row] = answer.rows
            found.append(
                (row.sales_count, row.sales_sum_minor_units, row.average_check_minor_units)
            )
        return found

    before = await figures()
    exported = b"".join(
        [
            piece.csv
            async for piece in stub.ExportCustomers(
                admin.ExportCustomersRequest(
                    scope=lists.CustomerListScope(point_of_sale_id=second_shop)
                ),
                metadata=owner,
            )
        ]
    )
    await terminal_stub.RefundTransaction(
        terminal_pb.RefundTransactionRequest(
            transaction_id=sold[0].transaction.transaction_id, refund_number="PS-1-R"
        ),
        metadata=first_till,
    )
    after = await figures()

    assert before == [(2, 30_001, 15_001), (1, 5_000, 5_000), (3, 35_001, 11_667)]
    # The export of a point of sale shows its figures too.
    [row] = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
    assert (row["sales_count"], row["sales_sum_UAH"]) == ("1", "50.00")
    # A refund takes nothing back, from the membership or its point of sale.
    assert after == before
