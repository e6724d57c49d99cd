"""The customer list's contract mapped onto the domain: every column and operator of the
contract has its domain twin, shapes the domain cannot see are refused by their path in
the request, and values arrive as the domain's own types."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_segments import trees

from purse.admin.v1 import customers_pb2 as lists
from purse.api.grpc.admin.customer_list import (
    filter_from_proto,
    filter_to_proto,
    scope_from_proto,
    scope_to_proto,
    sort_from_proto,
)
from purse.domain.errors import InvalidArgument
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
)
from purse.store.postgres.customer_list import ListScope, selected_customers_max


def _condition(**fields: object) -> lists.Filter:
    return lists.Filter(condition=lists.Condition(**fields))  # type: ignore[arg-type]


def _exists(column: int) -> lists.Filter:
    return _condition(column=column, operator=lists.FILTER_OPERATOR_EXISTS)


def test_every_column_of_the_contract_is_the_domain_column_of_the_same_name() -> None:
    names = [value.name for value in lists.CustomerColumn.DESCRIPTOR.values[1:]]
    mapped = [filter_from_proto(_exists(number)) for number in range(1, len(names) + 1)]
    assert names == [f"CUSTOMER_COLUMN_{each.column.name}" for each in mapped]  # type: ignore[union-attr]
    assert len(names) == len(CustomerColumn)


def test_every_operator_of_the_contract_is_the_domain_operator_of_the_same_name() -> None:
    operators = lists.FilterOperator.DESCRIPTOR.values[1:]
    mapped = [
        filter_from_proto(_condition(column=lists.CUSTOMER_COLUMN_PHONE, operator=each.number))
        for each in operators
    ]
    assert [each.name for each in operators] == [
        f"FILTER_OPERATOR_{each.operator.name}"  # type: ignore[union-attr]
        for each in mapped
    ]


def test_a_tree_arrives_with_its_groups_and_each_kind_of_value() -> None:
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    stamped = lists.FilterValue()
    stamped.moment.FromDatetime(moment)
    tree = lists.Filter(
        any=[
            _condition(
                column=lists.CUSTOMER_COLUMN_LAST_VISIT,
                operator=lists.FILTER_OPERATOR_LESS_THAN,
                value=lists.FilterValue(seconds_from_now=-60),
            ),
            lists.Filter(
                all=[
                    _condition(
                        column=lists.CUSTOMER_COLUMN_CREATED_AT,
                        operator=lists.FILTER_OPERATOR_MORE_THAN,
                        value=stamped,
                    ),
                    _condition(
                        column=lists.CUSTOMER_COLUMN_CATEGORY_ID,
                        operator=lists.FILTER_OPERATOR_IN,
                        value=lists.FilterValue(integers=lists.IntegerList(values=[1, 2])),
                    ),
                ]
            ),
        ]
    )
    assert filter_from_proto(tree) == Group(
        Combination.ANY,
        (
            Condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, FromNow(-60)),
            Group(
                Combination.ALL,
                (
                    Condition(CustomerColumn.CREATED_AT, Operator.MORE_THAN, moment),
                    Condition(CustomerColumn.CATEGORY_ID, Operator.IN, (1, 2)),
                ),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("tree", "path", "reason"),
    [
        (lists.Filter(), "filter", "FILTER_INVALID"),
        (
            lists.Filter(
                condition=lists.Condition(column=lists.CUSTOMER_COLUMN_PHONE),
                all=[lists.Filter()],
            ),
            "filter",
            "FILTER_INVALID",
        ),
        (lists.Filter(all=[lists.Filter()]), "filter.all[0]", "FILTER_INVALID"),
        (
            lists.Filter(any=[_condition(operator=lists.FILTER_OPERATOR_EXISTS)]),
            "filter.any[0].condition.column",
            "FILTER_INVALID",
        ),
        (
            _condition(column=lists.CUSTOMER_COLUMN_PHONE),
            "filter.condition.operator",
            "FILTER_INVALID",
        ),
    ],
)
def test_a_wrong_shape_is_refused_naming_its_path(
    tree: lists.Filter, path: str, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        filter_from_proto(tree)
    assert (refused.value.violations[0].field, refused.value.reason) == (path, reason)


def test_a_tree_deeper_than_the_domain_takes_is_refused_while_mapping() -> None:
    tree = _condition(column=lists.CUSTOMER_COLUMN_PHONE, operator=lists.FILTER_OPERATOR_EXISTS)
    for _ in range(50):
        tree = lists.Filter(all=[tree])
    with pytest.raises(InvalidArgument) as refused:
        filter_from_proto(tree)
    assert refused.value.reason == "FILTER_TOO_DEEP"
    assert refused.value.violations[0].field == "filter" + ".all[0]" * 4 + ".all"


def test_an_unset_sort_is_by_customer_id_ascending() -> None:
    assert sort_from_proto(lists.CustomerSort()) == Sort()
    descending = lists.CustomerSort(
        column=lists.CUSTOMER_COLUMN_SALES_SUM, direction=lists.SORT_DIRECTION_DESCENDING
    )
    assert sort_from_proto(descending) == Sort(CustomerColumn.SALES_SUM, Direction.DESCENDING)


def test_an_unset_scope_is_the_whole_business_and_a_selection_is_bounded() -> None:
    assert scope_from_proto(lists.CustomerListScope()) == ListScope()
    assert scope_from_proto(lists.CustomerListScope(terminal_id=7)) == ListScope(terminal_id=7)
    too_many = lists.CustomerListScope(customer_ids=range(selected_customers_max + 1))
    with pytest.raises(InvalidArgument) as refused:
        scope_from_proto(too_many)
    assert refused.value.violations[0].field == "scope.customer_ids"


def test_a_sort_by_a_column_the_contract_does_not_name_is_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        sort_from_proto(lists.CustomerSort(column=99))  # type: ignore[arg-type]
    assert refused.value.violations[0].field == "sort.column"


@given(trees())
def test_a_filter_sent_back_to_the_caller_reads_as_the_same_filter(tree: Filter) -> None:
    assert filter_from_proto(filter_to_proto(tree)) == tree


@given(
    st.builds(
        ListScope,
        st.none() | st.integers(1, 2**63 - 1),
        st.none() | st.integers(1, 2**63 - 1),
        st.none() | st.integers(1, 2**63 - 1),
        st.lists(st.integers(1, 2**63 - 1), max_size=5).map(tuple),
    )
)
def test_a_scope_sent_back_to_the_caller_reads_as_the_same_scope(scope: ListScope) -> None:
    assert scope_from_proto(scope_to_proto(scope)) == scope


def test_a_scope_too_large_is_refused_naming_its_path_in_the_request() -> None:
    too_many = lists.CustomerListScope(customer_ids=range(selected_customers_max + 1))
    with pytest.raises(InvalidArgument) as refused:
        scope_from_proto(too_many, "segment.scope")
    assert refused.value.violations[0].field == "segment.scope.customer_ids"
