"""AdminService: the customer list (pages, counts, the CSV export), its filter tree mapped
from the contract onto `purse.domain.segments`.

A wrong part of a filter is named by its path in the request's own field names
(`filter.all[1].condition.value`), as the domain names what it validates: the shape
(exactly one of condition, all, any; a column and an operator set) here, the rest there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Final

from purse.admin.v1 import admin_service_pb2 as pb
from purse.admin.v1 import customers_pb2
from purse.api.grpc.admin.calls import administrator_call, administrator_stream
from purse.api.grpc.common.calls import Context
from purse.api.grpc.common.mapping import ACCESS_TYPES, moment_from_proto, timestamp
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.checks import AccessType
from purse.domain.errors import invalid
from purse.domain.segments import (
    Combination,
    Condition,
    CustomerColumn,
    Direction,
    Filter,
    FromNow,
    Group,
    Operator,
    Sort,
    Value,
    filter_depth_max,
)
from purse.service.admin.customer_export import CustomerExport
from purse.service.admin.customer_list import CustomerList
from purse.store.postgres.customer_list import CustomerRow, ListScope, selected_customers_max

# The contract's enum numbers follow the domain's columns in order, from 1.
_columns: Final[Mapping[int, CustomerColumn]] = {
    number: column for number, column in enumerate(CustomerColumn, start=1)
}
_operators: Final[Mapping[int, Operator]] = {
    customers_pb2.FILTER_OPERATOR_EXISTS: Operator.EXISTS,
    customers_pb2.FILTER_OPERATOR_NOT_EXISTS: Operator.NOT_EXISTS,
    customers_pb2.FILTER_OPERATOR_EQUALS: Operator.EQUALS,
    customers_pb2.FILTER_OPERATOR_MORE_THAN: Operator.MORE_THAN,
    customers_pb2.FILTER_OPERATOR_LESS_THAN: Operator.LESS_THAN,
    customers_pb2.FILTER_OPERATOR_IN: Operator.IN,
}
_directions: Final[Mapping[int, Direction]] = {
    customers_pb2.SORT_DIRECTION_UNSPECIFIED: Direction.ASCENDING,
    customers_pb2.SORT_DIRECTION_ASCENDING: Direction.ASCENDING,
    customers_pb2.SORT_DIRECTION_DESCENDING: Direction.DESCENDING,
}


def filter_from_proto(message: customers_pb2.Filter, path: str = "filter") -> Filter:
    """The domain's filter tree; InvalidArgument naming the path of a wrong shape."""
    return _filter(message, path, 0)


def _filter(message: customers_pb2.Filter, path: str, depth: int) -> Filter:
    parts = [message.HasField("condition"), bool(message.all), bool(message.any)]
    if parts.count(True) != 1:
        raise invalid(path, "set exactly one of condition, all, any", "FILTER_INVALID")
    if message.HasField("condition"):
        return _condition(message.condition, f"{path}.condition")
    combination = Combination.ALL if message.all else Combination.ANY
    members = message.all if message.all else message.any
    group_path = f"{path}.{combination.value}"
    if depth >= filter_depth_max:
        raise invalid(group_path, f"groups nest at most {filter_depth_max} deep", "FILTER_TOO_DEEP")
    return Group(
        combination,
        tuple(
            _filter(member, f"{group_path}[{index}]", depth + 1)
            for index, member in enumerate(members)
        ),
    )


def _condition(message: customers_pb2.Condition, path: str) -> Condition:
    column = _columns.get(message.column)
    if column is None:
        raise invalid(f"{path}.column", "a column of the customer list", "FILTER_INVALID")
    operator = _operators.get(message.operator)
    if operator is None:
        raise invalid(f"{path}.operator", "an operator", "FILTER_INVALID")
    return Condition(column, operator, _value(message.value, f"{path}.value"))


def _value(message: customers_pb2.FilterValue, path: str) -> Value:
    which = message.WhichOneof("value")
    if which is None:
        return None
    if which == "moment":
        return moment_from_proto(message.moment, f"{path}.moment")
    if which == "seconds_from_now":
        return FromNow(message.seconds_from_now)
    if which == "integers":
        return tuple(message.integers.values)
    if which == "texts":
        return tuple(message.texts.values)
    single: int | bool | str = getattr(message, which)
    return single


# Each domain column and operator is the contract's value of the same name.
_column_numbers: Final[Mapping[CustomerColumn, customers_pb2.CustomerColumn.ValueType]] = {
    column: customers_pb2.CustomerColumn.Value(f"CUSTOMER_COLUMN_{column.name}")
    for column in CustomerColumn
}
_operator_numbers: Final[Mapping[Operator, customers_pb2.FilterOperator.ValueType]] = {
    operator: customers_pb2.FilterOperator.Value(f"FILTER_OPERATOR_{operator.name}")
    for operator in Operator
}


def filter_to_proto(tree: Filter) -> customers_pb2.Filter:
    """The contract's filter of a domain tree (`filter_from_proto` reads it back)."""
    if isinstance(tree, Group):
        members = [filter_to_proto(member) for member in tree.members]
        if tree.combination is Combination.ALL:
            return customers_pb2.Filter(all=members)
        return customers_pb2.Filter(any=members)
    condition = customers_pb2.Condition(
        column=_column_numbers[tree.column],
        operator=_operator_numbers[tree.operator],
        value=_value_to_proto(tree.value),
    )
    return customers_pb2.Filter(condition=condition)


def _value_to_proto(value: Value) -> customers_pb2.FilterValue | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return customers_pb2.FilterValue(boolean=value)
    if isinstance(value, int):
        return customers_pb2.FilterValue(integer=value)
    if isinstance(value, str):
        return customers_pb2.FilterValue(text=value)
    if isinstance(value, datetime):
        return customers_pb2.FilterValue(moment=timestamp(value))
    if isinstance(value, FromNow):
        return customers_pb2.FilterValue(seconds_from_now=value.seconds)
    texts = [each for each in value if isinstance(each, str)]
    if texts:
        return customers_pb2.FilterValue(texts=customers_pb2.TextList(values=texts))
    integers = [each for each in value if isinstance(each, int)]
    return customers_pb2.FilterValue(integers=customers_pb2.IntegerList(values=integers))


def sort_from_proto(message: customers_pb2.CustomerSort) -> Sort:
    column = (
        CustomerColumn.CUSTOMER_ID
        if message.column == customers_pb2.CUSTOMER_COLUMN_UNSPECIFIED
        else _columns.get(message.column)
    )
    if column is None:
        raise invalid("sort.column", "a column of the customer list")
    direction = _directions.get(message.direction)
    if direction is None:
        raise invalid("sort.direction", "ascending or descending")
    return Sort(column, direction)


def scope_from_proto(message: customers_pb2.CustomerListScope, path: str = "scope") -> ListScope:
    if len(message.customer_ids) > selected_customers_max:
        raise invalid(f"{path}.customer_ids", f"at most {selected_customers_max} customers")
    return ListScope(
        program_id=message.program_id or None,
        point_of_sale_id=message.point_of_sale_id or None,
        terminal_id=message.terminal_id or None,
        customer_ids=tuple(message.customer_ids),
    )


def scope_to_proto(scope: ListScope) -> customers_pb2.CustomerListScope:
    return customers_pb2.CustomerListScope(
        program_id=scope.program_id or 0,
        point_of_sale_id=scope.point_of_sale_id or 0,
        terminal_id=scope.terminal_id or 0,
        customer_ids=scope.customer_ids,
    )


def row_to_proto(row: CustomerRow) -> customers_pb2.CustomerListRow:
    return customers_pb2.CustomerListRow(
        customer_id=row.customer_id,
        phone=row.phone,
        given_name=row.given_name or "",
        family_name=row.family_name or "",
        category_id=row.category_id,
        access_type=ACCESS_TYPES[AccessType(row.access_type)],
        personal_data_consent=row.personal_data_consent,
        participation_confirmed=row.participation_confirmed,
        sales_count=row.sales_count,
        sales_sum_minor_units=row.sales_sum,
        average_check_minor_units=row.average_check or 0,
        first_visit_time=timestamp(row.first_visit),
        last_visit_time=timestamp(row.last_visit),
        points_balance_hundredths=row.points_balance,
        points_expiring_hundredths=row.points_expiring_amount or 0,
        points_expiring_time=timestamp(row.points_expiring_at),
        create_time=timestamp(row.created_at),
    )


def _optional_filter(
    request: pb.ListCustomersRequest | pb.CountCustomersRequest | pb.ExportCustomersRequest,
) -> Filter | None:
    return filter_from_proto(request.filter) if request.HasField("filter") else None


class CustomerListCalls:
    customer_list: CustomerList
    customer_export: CustomerExport

    @administrator_call(Access.READ)
    async def ListCustomers(
        self, request: pb.ListCustomersRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListCustomersResponse:
        page = await self.customer_list.page(
            caller.business_id,
            scope_from_proto(request.scope),
            _optional_filter(request),
            sort_from_proto(request.sort),
            request.page_size,
            request.page_token,
            request.segment_id,
        )
        return pb.ListCustomersResponse(
            rows=[row_to_proto(row) for row in page.rows], next_page_token=page.next_page_token
        )

    @administrator_call(Access.READ)
    async def CountCustomers(
        self, request: pb.CountCustomersRequest, context: Context, caller: AdministratorContext
    ) -> pb.CountCustomersResponse:
        count = await self.customer_list.count(
            caller.business_id,
            scope_from_proto(request.scope),
            _optional_filter(request),
            request.segment_id,
        )
        return pb.CountCustomersResponse(count=count)

    @administrator_stream(Access.READ)
    async def ExportCustomers(
        self, request: pb.ExportCustomersRequest, context: Context, caller: AdministratorContext
    ) -> AsyncGenerator[pb.ExportCustomersResponse, None]:
        chunks = self.customer_export.chunks(
            caller.business_id,
            scope_from_proto(request.scope),
            _optional_filter(request),
            sort_from_proto(request.sort),
            request.segment_id,
        )
        async with aclosing(chunks):
            async for chunk in chunks:
                yield pb.ExportCustomersResponse(csv=chunk)
