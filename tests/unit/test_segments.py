"""The customer list's filters: validation names the wrong part's path, compilation gives
parameterised SQL whose text never depends on input, and page tokens are tied to their
query."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.domain import reasons
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
    PageStart,
    Sort,
    Value,
    ValueType,
    compile_filter,
    compile_page,
    days_ago,
    filter_conditions_max,
    filter_depth_max,
    filter_from_document,
    filter_to_document,
    operators_by_type,
    page_start,
    page_token,
    query_digest,
    validate_filter,
)

now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
columns_sql = {column: f"m.{column.value}" for column in CustomerColumn}
scope: list[str | int] = ["customers", 7]


def condition(column: CustomerColumn, operator: Operator, value: Value = None) -> Condition:
    return Condition(column, operator, value)


def every(*members: Filter) -> Group:
    return Group(Combination.ALL, members)


def some(*members: Filter) -> Group:
    return Group(Combination.ANY, members)


def refusal(tree: Filter) -> tuple[str, str]:
    """The path and reason validation refuses `tree` with."""
    with pytest.raises(InvalidArgument) as raised:
        validate_filter(tree)
    return raised.value.violations[0].field, raised.value.reason


# "More than 5 sales, no visit in the last 30 days, and more than 100 points."
lapsed = every(
    condition(CustomerColumn.SALES_COUNT, Operator.MORE_THAN, 5),
    some(
        condition(CustomerColumn.LAST_VISIT, Operator.NOT_EXISTS),
        condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, days_ago(30)),
    ),
    condition(CustomerColumn.POINTS_BALANCE, Operator.MORE_THAN, 100_00),
)


def test_a_nested_filter_compiles_to_sql_with_every_value_a_parameter() -> None:
    compiled = compile_filter(lapsed, columns_sql, now, 3)

    assert compiled.text == (
        "((m.sales_count > $3::bigint) AND ((m.last_visit IS NULL) OR"
        " (m.last_visit < $4::timestamptz)) AND (m.points_balance > $5::bigint))"
    )
    assert compiled.parameters == [5, now - timedelta(days=30), 100_00]


def test_no_filter_selects_every_row() -> None:
    assert compile_filter(None, columns_sql, now, 1) == ("TRUE", [])


def test_in_takes_one_array_parameter_and_exists_none() -> None:
    tree = every(
        condition(CustomerColumn.ACCESS_TYPE, Operator.IN, ("full", "limited")),
        condition(CustomerColumn.GIVEN_NAME, Operator.EXISTS),
    )

    compiled = compile_filter(tree, columns_sql, now, 1)

    assert compiled.text == "((m.access_type = ANY($1::text[])) AND (m.given_name IS NOT NULL))"
    assert compiled.parameters == [["full", "limited"]]


def test_a_moment_ahead_of_now_resolves_forwards() -> None:
    tree = condition(CustomerColumn.POINTS_EXPIRING_AT, Operator.LESS_THAN, FromNow(3600))

    assert compile_filter(tree, columns_sql, now, 1).parameters == [now + timedelta(hours=1)]


@pytest.mark.parametrize(
    ("tree", "path", "reason"),
    [
        (
            condition(CustomerColumn.PHONE, Operator.MORE_THAN, "+380"),
            "filter.condition.operator",
            "FILTER_INVALID",
        ),
        (
            condition(CustomerColumn.SALES_COUNT, Operator.EQUALS, True),
            "filter.condition.value",
            "FILTER_INVALID",
        ),
        (
            every(condition(CustomerColumn.ACCESS_TYPE, Operator.EQUALS, "gold")),
            "filter.all[0].condition.value",
            "FILTER_INVALID",
        ),
        (
            some(lapsed, condition(CustomerColumn.LAST_VISIT, Operator.EXISTS, 1)),
            "filter.any[1].condition.value",
            "FILTER_INVALID",
        ),
        (
            condition(CustomerColumn.CREATED_AT, Operator.MORE_THAN, datetime(2025, 1, 1)),
            "filter.condition.value",
            "FILTER_INVALID",
        ),
        (
            condition(CustomerColumn.CREATED_AT, Operator.MORE_THAN, days_ago(100_000)),
            "filter.condition.value",
            "FILTER_INVALID",
        ),
        (
            condition(CustomerColumn.CATEGORY_ID, Operator.IN, ()),
            "filter.condition.value",
            "FILTER_INVALID",
        ),
        (
            condition(CustomerColumn.CATEGORY_ID, Operator.IN, (1, 2**63)),
            "filter.condition.value",
            "FILTER_INVALID",
        ),
        (
            condition(CustomerColumn.PERSONAL_DATA_CONSENT, Operator.EQUALS, 1),
            "filter.condition.value",
            "FILTER_INVALID",
        ),
        (every(lapsed, some()), "filter.all[1].any", "FILTER_INVALID"),
        (
            condition(CustomerColumn.FAMILY_NAME, Operator.EQUALS, "Ko\0val"),
            "filter.condition.value",
            "STRING_HAS_NUL",
        ),
    ],
)
def test_a_wrong_part_is_refused_by_its_path(tree: Filter, path: str, reason: str) -> None:
    assert refusal(tree) == (path, reason)


def test_groups_nested_deeper_than_the_limit_are_refused_at_the_first_too_deep() -> None:
    tree: Filter = condition(CustomerColumn.SALES_COUNT, Operator.EXISTS)
    for _ in range(filter_depth_max):
        tree = some(tree)
    validate_filter(tree)

    assert refusal(every(tree)) == ("filter.all[0]" + ".any[0]" * 3 + ".any", "FILTER_TOO_DEEP")


def test_more_conditions_than_the_limit_are_refused_at_the_first_too_many() -> None:
    one = condition(CustomerColumn.SALES_COUNT, Operator.MORE_THAN, 1)
    validate_filter(every(*[one] * filter_conditions_max))

    path, reason = refusal(every(*[one] * (filter_conditions_max + 1)))

    assert (path, reason) == (f"filter.all[{filter_conditions_max}]", "FILTER_TOO_LARGE")


def test_the_catalogue_tells_the_limits_the_module_keeps() -> None:
    assert f"{filter_depth_max} deep" in reasons.ERROR_REASONS["FILTER_TOO_DEEP"].action
    assert f"{filter_conditions_max} conditions" in reasons.ERROR_REASONS["FILTER_TOO_LARGE"].action


# Random trees: a value of each column's type, hostile text included.
hostile_texts = st.one_of(
    st.sampled_from(["'; DROP TABLE memberships; --", "$1", '"', "\\", "') OR TRUE --", "/*"]),
    st.text(st.characters(blacklist_characters="\0"), max_size=40),
)
_values_by_type: dict[ValueType, st.SearchStrategy[Value]] = {
    ValueType.INTEGER: st.integers(-(2**63), 2**63 - 1),
    ValueType.MONEY: st.integers(-(10**12), 10**12),
    ValueType.POINTS: st.integers(0, 10**12),
    ValueType.TIMESTAMP: st.one_of(
        st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=st.just(UTC)),
        st.integers(-(10**9), 10**9).map(FromNow),
    ),
    ValueType.TEXT: hostile_texts,
    ValueType.WORD: st.sampled_from(["full", "limited", "none", "blacklisted"]),
    ValueType.BOOLEAN: st.booleans(),
}


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    column = draw(st.sampled_from(CustomerColumn))
    value_type = column.column_type.value_type
    operator = draw(st.sampled_from(sorted(operators_by_type[value_type], key=str)))
    if operator in (Operator.EXISTS, Operator.NOT_EXISTS):
        return Condition(column, operator)
    values = _values_by_type[value_type]
    if operator is Operator.IN:
        listed = tuple(draw(st.lists(values, min_size=1, max_size=4)))
        return Condition(column, operator, cast(Value, listed))
    return Condition(column, operator, draw(values))


def trees(groups_left: int = filter_depth_max) -> st.SearchStrategy[Filter]:
    if groups_left == 0:
        return conditions()
    groups = st.builds(
        Group,
        st.sampled_from(Combination),
        st.lists(st.deferred(lambda: trees(groups_left - 1)), min_size=1, max_size=3).map(tuple),
    )
    return st.one_of(conditions(), groups)


def positions(tree: Filter, path: str = "filter") -> Iterator[tuple[tuple[int, ...], str]]:
    """Where each condition of `tree` stands: its member indices and its path."""
    if isinstance(tree, Condition):
        yield (), path
        return
    for index, member in enumerate(tree.members):
        for chain, inner in positions(member, f"{path}.{tree.combination.value}[{index}]"):
            yield (index, *chain), inner


def replaced(tree: Filter, chain: tuple[int, ...], part: Filter) -> Filter:
    if not chain:
        return part
    assert isinstance(tree, Group)
    members = list(tree.members)
    members[chain[0]] = replaced(members[chain[0]], chain[1:], part)
    return Group(tree.combination, tuple(members))


defects: list[tuple[Condition, str]] = [
    (condition(CustomerColumn.SALES_COUNT, Operator.EQUALS, "5"), ".condition.value"),
    (condition(CustomerColumn.GIVEN_NAME, Operator.LESS_THAN, "M"), ".condition.operator"),
    (condition(CustomerColumn.ACCESS_TYPE, Operator.IN, ("full", "gold")), ".condition.value"),
    (condition(CustomerColumn.LAST_VISIT, Operator.EXISTS, days_ago(1)), ".condition.value"),
    (condition(CustomerColumn.AVERAGE_CHECK, Operator.IN, (1,)), ".condition.operator"),
    (condition(CustomerColumn.PHONE, Operator.EQUALS, "x" * 300), ".condition.value"),
]


@given(trees(), st.data())
def test_validation_names_the_path_of_a_wrong_part_anywhere_in_a_tree(
    tree: Filter, data: st.DataObject
) -> None:
    validate_filter(tree)
    chain, path = data.draw(st.sampled_from(list(positions(tree))))
    defect, suffix = data.draw(st.sampled_from(defects))

    assert refusal(replaced(tree, chain, defect)) == (path + suffix, "FILTER_INVALID")


def blanked(tree: Filter) -> Filter:
    """`tree` with every value replaced by one fixed value of its kind."""
    if isinstance(tree, Group):
        return Group(tree.combination, tuple(blanked(member) for member in tree.members))
    value = tree.value
    if value is None:
        return tree
    fixed: dict[ValueType, Value] = {
        ValueType.WORD: "full",
        ValueType.TEXT: "",
        ValueType.BOOLEAN: True,
        ValueType.TIMESTAMP: now,
    }
    blank = fixed.get(tree.column.column_type.value_type, 0)
    listed = cast(Value, (blank,))
    return Condition(tree.column, tree.operator, listed if isinstance(value, tuple) else blank)


@given(trees(), st.integers(1, 100))
def test_the_sql_text_never_depends_on_the_values_and_numbers_every_parameter(
    tree: Filter, first: int
) -> None:
    compiled = compile_filter(tree, columns_sql, now, first)

    assert compiled.text == compile_filter(blanked(tree), columns_sql, now, first).text
    assert not any(mark in compiled.text for mark in ("'", '"', ";", "--", "/*"))
    numbers = [int(number) for number in re.findall(r"\$(\d+)", compiled.text)]
    assert numbers == list(range(first, first + len(compiled.parameters)))


def test_a_first_page_is_ordered_with_absent_values_last_and_ties_by_customer_id() -> None:
    ascending = compile_page(Sort(CustomerColumn.AVERAGE_CHECK), columns_sql, None, 4)
    descending = compile_page(
        Sort(CustomerColumn.SALES_COUNT, Direction.DESCENDING), columns_sql, None, 4
    )

    assert ascending.after == "TRUE"
    assert ascending.order_by == "m.average_check ASC NULLS LAST, m.customer_id ASC"
    assert descending.order_by == "m.sales_count DESC, m.customer_id DESC"


def test_a_later_page_starts_after_the_last_row_and_keeps_the_absent_values_for_last() -> None:
    sort = Sort(CustomerColumn.LAST_VISIT, Direction.DESCENDING)
    start = PageStart(now, 42, now)

    page = compile_page(sort, columns_sql, start, 4)

    assert page.after == (
        "((m.last_visit, m.customer_id) < ($4::timestamptz, $5::bigint) OR m.last_visit IS NULL)"
    )
    assert page.parameters == [now, 42]


def test_a_page_inside_the_absent_values_continues_by_customer_id_among_them() -> None:
    page = compile_page(Sort(CustomerColumn.LAST_VISIT), columns_sql, PageStart(None, 42, now), 1)

    assert page.after == "(m.last_visit IS NULL AND m.customer_id > $1::bigint)"
    assert page.parameters == [42]


def test_sorting_by_customer_id_needs_no_tie_break() -> None:
    sort = Sort(CustomerColumn.CUSTOMER_ID, Direction.DESCENDING)

    page = compile_page(sort, columns_sql, PageStart(42, 42, now), 1)

    assert (page.after, page.order_by) == ("(m.customer_id < $1::bigint)", "m.customer_id DESC")


@pytest.mark.parametrize(
    ("sort", "start"),
    [
        (Sort(CustomerColumn.LAST_VISIT), PageStart(now, 42, now)),
        (Sort(CustomerColumn.LAST_VISIT, Direction.DESCENDING), PageStart(None, 9, now)),
        (Sort(CustomerColumn.GIVEN_NAME), PageStart("Оксана '\"", 3, now)),
        (Sort(CustomerColumn.PARTICIPATION_CONFIRMED), PageStart(False, 3, now)),
        (Sort(CustomerColumn.POINTS_BALANCE), PageStart(-5, 2**63 - 1, now)),
    ],
)
def test_a_page_token_gives_back_its_page_start_for_its_own_query(
    sort: Sort, start: PageStart
) -> None:
    token = page_token(lapsed, sort, scope, start)

    assert page_start(token, lapsed, sort, scope) == start
    assert page_start("", lapsed, sort, scope) is None


@pytest.mark.parametrize(
    ("tree", "sort", "token_scope"),
    [
        (every(lapsed), Sort(CustomerColumn.LAST_VISIT), scope),
        (lapsed, Sort(CustomerColumn.LAST_VISIT, Direction.DESCENDING), scope),
        (lapsed, Sort(CustomerColumn.FIRST_VISIT), scope),
        (lapsed, Sort(CustomerColumn.LAST_VISIT), ["customers", 8]),
        (None, Sort(CustomerColumn.LAST_VISIT), scope),
    ],
)
def test_a_page_token_of_another_query_is_refused(
    tree: Filter | None, sort: Sort, token_scope: list[str | int]
) -> None:
    token = page_token(lapsed, Sort(CustomerColumn.LAST_VISIT), scope, PageStart(now, 1, now))

    with pytest.raises(InvalidArgument) as raised:
        page_start(token, tree, sort, token_scope)

    assert raised.value.violations[0].field == "page_token"


@given(st.text(max_size=300))
def test_any_other_token_is_refused_naming_the_page_token(token: str) -> None:
    try:
        start = page_start(token, lapsed, Sort(CustomerColumn.LAST_VISIT), scope)
    except InvalidArgument as refused:
        assert refused.violations[0].field == "page_token"
    else:
        assert start is None and token == ""


def test_a_true_and_a_one_are_different_queries() -> None:
    sort = Sort()
    as_boolean = condition(CustomerColumn.PERSONAL_DATA_CONSENT, Operator.EQUALS, True)
    as_integer = condition(CustomerColumn.SALES_COUNT, Operator.EQUALS, 1)

    assert query_digest(as_boolean, sort, scope) != query_digest(
        Condition(CustomerColumn.PERSONAL_DATA_CONSENT, Operator.EQUALS, 1), sort, scope
    )
    assert query_digest(as_integer, sort, scope) == query_digest(as_integer, sort, [*scope])


@given(trees())
def test_a_filter_read_back_from_its_document_as_json_text_is_the_same_filter(
    tree: Filter,
) -> None:
    stored = json.dumps(filter_to_document(tree))

    assert filter_from_document(json.loads(stored)) == tree


def test_a_filter_s_document_names_each_value_s_kind() -> None:
    tree = every(
        condition(CustomerColumn.PERSONAL_DATA_CONSENT, Operator.EQUALS, True),
        condition(CustomerColumn.SALES_COUNT, Operator.EQUALS, 1),
        some(
            condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, days_ago(30)),
            condition(CustomerColumn.PHONE, Operator.IN, ("380", "381")),
        ),
    )

    assert filter_to_document(tree) == {
        "all": [
            {"column": "personal_data_consent", "operator": "equals", "value": {"boolean": True}},
            {"column": "sales_count", "operator": "equals", "value": {"integer": 1}},
            {
                "any": [
                    {
                        "column": "last_visit",
                        "operator": "less_than",
                        "value": {"from_now": -2_592_000},
                    },
                    {"column": "phone", "operator": "in", "value": {"list": ["380", "381"]}},
                ]
            },
        ]
    }


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"all": {}},
        {"every": []},
        {"column": "sales_count", "operator": "equals"},
        {"column": "visits", "operator": "equals", "value": None},
        {"column": "sales_count", "operator": "about", "value": None},
        {"column": "sales_count", "operator": "equals", "value": 1},
        {"column": "sales_count", "operator": "equals", "value": {"integer": True}},
        {"column": "sales_count", "operator": "equals", "value": {"integer": 2**63}},
        {"column": "sales_count", "operator": "equals", "value": {"integer": 1, "text": "1"}},
        {"column": "last_visit", "operator": "more_than", "value": {"moment": "2025-01-01"}},
        {"column": "phone", "operator": "in", "value": {"list": ["380", 381]}},
    ],
)
def test_a_document_that_is_no_filter_s_is_refused(document: object) -> None:
    with pytest.raises(ValueError):
        filter_from_document(document)
