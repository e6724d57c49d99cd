"""The customer list's filters, sort and keyset pages, compiled to parameterised SQL.

Contract:

* The list has one row per membership; its columns are `CustomerColumn`s, each of a
  `ValueType` (integers, money in minor units, points in hundredths, moments, text, yes/no,
  or one of a fixed set of words) and either always present or possibly absent (NULL).
  Text columns a business may leave blank (names) are absent when blank: the store's SQL
  expression for them says so (`NULLIF(given_name, '')`).
* A filter is a tree: a `Condition` (column, operator, value) or a `Group` of filters
  that must ALL or ANY hold, groups nested at most `filter_depth_max` deep, with at most
  `filter_conditions_max` conditions in all. Its message shape is
  `Filter { Condition condition; repeated Filter all; repeated Filter any }` (exactly one
  set), so a wrong part is named by its path: `filter.all[1].any[0].condition.value`.
  Validation raises InvalidArgument naming that path with reason FILTER_INVALID,
  FILTER_TOO_DEEP, FILTER_TOO_LARGE or STRING_HAS_NUL.
* Moments are absolute (an aware datetime) or relative (`FromNow`), resolved against a
  `now` the caller passes; operators always compare the column's own value, so "last visit
  more than 30 days ago" is `LAST_VISIT LESS_THAN days_ago(30)`.
* What users mean by absence: EXISTS holds when the value is present, NOT_EXISTS when it
  is absent, and EQUALS, MORE_THAN, LESS_THAN and IN never hold on an absent value (SQL's
  unknown, which in a tree of AND and OR without negation selects no row, as false would).
* Compilation gives SQL text made only of the trusted expressions the store passes in
  (`columns_sql`, one per column) and fixed operator text; every value is a `$n`
  parameter, numbered from `first_parameter_number`, so the text never depends on input.
* Pages are keyset pages ordered by one column in either direction, absent values last
  in both, ties broken by customer id in the same direction. A page token carries the last
  row's sort value and customer id, the `now` relative moments were resolved against on
  the first page (every page of a query selects from the same moment), and a digest of
  the query (filter, sort and scope): a token given for another query is refused naming
  `page_token`. A token is not secret: whatever position it claims is read as typed
  parameters of the caller's own query.
* A filter's document (`filter_to_document`) is its canonical form as JSON values: a
  group is `{"all": [...]}` or `{"any": [...]}`, a condition `{"column", "operator",
  "value"}` in the enums' words, each value under a key naming its kind (`{"integer":
  5}`, `{"moment": microseconds since the epoch}`, `{"from_now": seconds}` ...), so
  `true` and `1` never read alike. Saved segments store it, page tokens digest it, and
  `filter_from_document` reads it back to the equal tree (ValueError for anything
  else). Reading does not validate: a stored filter was validated when it was saved.

Pure: no I/O, no clock, no protobuf.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final, NamedTuple, TypeAlias, TypeGuard

from purse.domain import pages
from purse.domain.errors import invalid
from purse.domain.moments import moment_earliest, moment_latest

# Groups inside groups: `all` of `any` of `all` of `any` at most.
filter_depth_max: Final = 4
filter_conditions_max: Final = 50
# Values of one IN condition (a manual selection of customer ids is a list of its own).
in_values_max: Final = 1000
# The longest text a condition compares with (names are at most 200 characters).
filter_text_characters_max: Final = 256
# Relative moments reach as far as absolute ones may: a century either way.
from_now_seconds_max: Final = 100 * 366 * 86_400
# A token holds a digest, a sort value of at most 256 characters, an id and a moment.
segment_page_token_characters_max: Final = 2048
_bigint_min: Final = -(2**63)
_bigint_max: Final = 2**63 - 1
_seconds_per_day: Final = 86_400
_epoch: Final = datetime(1970, 1, 1, tzinfo=UTC)


class ValueType(Enum):
    """What a column's values are, and so which values and operators a condition takes."""

    INTEGER = "integer"
    MONEY = "money"  # minor units of the business's currency
    POINTS = "points"  # hundredths of a point
    TIMESTAMP = "timestamp"
    TEXT = "text"
    BOOLEAN = "boolean"
    WORD = "word"  # one of the column's `words`


@dataclass(frozen=True, slots=True)
class ColumnType:
    value_type: ValueType
    absent_possible: bool
    words: frozenset[str] = frozenset()


class CustomerColumn(Enum):
    """A column of the customer list (one row per membership)."""

    CUSTOMER_ID = "customer_id"
    PHONE = "phone"
    GIVEN_NAME = "given_name"
    FAMILY_NAME = "family_name"
    CATEGORY_ID = "category_id"
    ACCESS_TYPE = "access_type"
    PERSONAL_DATA_CONSENT = "personal_data_consent"
    PARTICIPATION_CONFIRMED = "participation_confirmed"
    SALES_COUNT = "sales_count"
    SALES_SUM = "sales_sum"
    # The sales sum divided by their count, rounded; absent while there are no sales.
    AVERAGE_CHECK = "average_check"
    FIRST_VISIT = "first_visit"
    LAST_VISIT = "last_visit"
    POINTS_BALANCE = "points_balance"
    # The lot of points that expires first: how many points, and when.
    POINTS_EXPIRING_AMOUNT = "points_expiring_amount"
    POINTS_EXPIRING_AT = "points_expiring_at"
    CREATED_AT = "created_at"

    @property
    def column_type(self) -> ColumnType:
        return _column_types[self]


# The membership's access types (purse.domain.checks.AccessType's values).
access_type_words: Final = frozenset({"full", "limited", "none", "blacklisted"})

_present = {
    ValueType.INTEGER: ColumnType(ValueType.INTEGER, absent_possible=False),
    ValueType.MONEY: ColumnType(ValueType.MONEY, absent_possible=False),
    ValueType.POINTS: ColumnType(ValueType.POINTS, absent_possible=False),
    ValueType.TIMESTAMP: ColumnType(ValueType.TIMESTAMP, absent_possible=False),
    ValueType.TEXT: ColumnType(ValueType.TEXT, absent_possible=False),
    ValueType.BOOLEAN: ColumnType(ValueType.BOOLEAN, absent_possible=False),
}
_optional = {
    value_type: ColumnType(value_type, absent_possible=True)
    for value_type in (ValueType.MONEY, ValueType.POINTS, ValueType.TIMESTAMP, ValueType.TEXT)
}
_column_types: Final[Mapping[CustomerColumn, ColumnType]] = {
    CustomerColumn.CUSTOMER_ID: _present[ValueType.INTEGER],
    CustomerColumn.PHONE: _present[ValueType.TEXT],
    CustomerColumn.GIVEN_NAME: _optional[ValueType.TEXT],
    CustomerColumn.FAMILY_NAME: _optional[ValueType.TEXT],
    CustomerColumn.CATEGORY_ID: _present[ValueType.INTEGER],
    CustomerColumn.ACCESS_TYPE: ColumnType(ValueType.WORD, False, access_type_words),
    CustomerColumn.PERSONAL_DATA_CONSENT: _present[ValueType.BOOLEAN],
    CustomerColumn.PARTICIPATION_CONFIRMED: _present[ValueType.BOOLEAN],
    CustomerColumn.SALES_COUNT: _present[ValueType.INTEGER],
    CustomerColumn.SALES_SUM: _present[ValueType.MONEY],
    CustomerColumn.AVERAGE_CHECK: _optional[ValueType.MONEY],
    CustomerColumn.FIRST_VISIT: _optional[ValueType.TIMESTAMP],
    CustomerColumn.LAST_VISIT: _optional[ValueType.TIMESTAMP],
    CustomerColumn.POINTS_BALANCE: _present[ValueType.POINTS],
    CustomerColumn.POINTS_EXPIRING_AMOUNT: _optional[ValueType.POINTS],
    CustomerColumn.POINTS_EXPIRING_AT: _optional[ValueType.TIMESTAMP],
    CustomerColumn.CREATED_AT: _present[ValueType.TIMESTAMP],
}


class Operator(Enum):
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    EQUALS = "equals"
    MORE_THAN = "more_than"
    LESS_THAN = "less_than"
    IN = "in"  # equals one of a list


_presence = frozenset({Operator.EXISTS, Operator.NOT_EXISTS})
_ordered = _presence | {Operator.EQUALS, Operator.MORE_THAN, Operator.LESS_THAN}
_matched = _presence | {Operator.EQUALS, Operator.IN}
# Order is meaningful for numbers and moments only; text and words are matched exactly.
operators_by_type: Final[Mapping[ValueType, frozenset[Operator]]] = {
    ValueType.INTEGER: _ordered | {Operator.IN},
    ValueType.MONEY: _ordered,
    ValueType.POINTS: _ordered,
    ValueType.TIMESTAMP: _ordered,
    ValueType.TEXT: _matched,
    ValueType.WORD: _matched,
    ValueType.BOOLEAN: _presence | {Operator.EQUALS},
}


@dataclass(frozen=True, slots=True)
class FromNow:
    """A moment relative to the query's `now`: negative seconds lie in the past."""

    seconds: int


def days_ago(days: int) -> FromNow:
    return FromNow(-days * _seconds_per_day)


def days_ahead(days: int) -> FromNow:
    return FromNow(days * _seconds_per_day)


# None for EXISTS and NOT_EXISTS; a tuple for IN.
Value: TypeAlias = int | bool | str | datetime | FromNow | tuple[int, ...] | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Condition:
    column: CustomerColumn
    operator: Operator
    value: Value = None


class Combination(Enum):
    ALL = "all"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class Group:
    combination: Combination
    members: tuple[Filter, ...]


Filter: TypeAlias = Condition | Group


def validate_filter(tree: Filter, field: str = "filter") -> None:
    """InvalidArgument naming the path of the first wrong part of `tree`, if any."""
    _validate(tree, field, 0, [0])


def _validate(tree: Filter, path: str, groups_around: int, counted: list[int]) -> None:
    if isinstance(tree, Condition):
        counted[0] += 1
        if counted[0] > filter_conditions_max:
            raise invalid(
                path, f"at most {filter_conditions_max} conditions in all", "FILTER_TOO_LARGE"
            )
        _validate_condition(tree, f"{path}.condition")
        return
    group_path = f"{path}.{tree.combination.value}"
    if groups_around >= filter_depth_max:
        raise invalid(group_path, f"groups nest at most {filter_depth_max} deep", "FILTER_TOO_DEEP")
    if not tree.members:
        raise invalid(group_path, "a group holds at least one filter", "FILTER_INVALID")
    for index, member in enumerate(tree.members):
        _validate(member, f"{group_path}[{index}]", groups_around + 1, counted)


def _validate_condition(condition: Condition, path: str) -> None:
    column_type = condition.column.column_type
    if condition.operator not in operators_by_type[column_type.value_type]:
        raise invalid(
            f"{path}.operator",
            f"{condition.operator.value} does not apply to {condition.column.value}",
            "FILTER_INVALID",
        )
    if condition.operator in _presence:
        if condition.value is not None:
            raise invalid(f"{path}.value", "exists and not_exists take no value", "FILTER_INVALID")
        return
    values = condition.value if condition.operator is Operator.IN else (condition.value,)
    if not isinstance(values, tuple) or not 1 <= len(values) <= in_values_max:
        raise invalid(f"{path}.value", f"in takes 1 to {in_values_max} values", "FILTER_INVALID")
    for value in values:
        _validate_value(column_type, value, f"{path}.value")


def _validate_value(column_type: ColumnType, value: object, path: str) -> None:
    value_type = column_type.value_type
    if value_type in (ValueType.INTEGER, ValueType.MONEY, ValueType.POINTS):
        valid = _is_integer(value)
    elif value_type is ValueType.TIMESTAMP:
        valid = _is_moment(value) or (
            isinstance(value, FromNow)
            and _is_integer(value.seconds)
            and abs(value.seconds) <= from_now_seconds_max
        )
    elif value_type is ValueType.BOOLEAN:
        valid = isinstance(value, bool)
    elif value_type is ValueType.WORD:
        valid = isinstance(value, str) and value in column_type.words
    else:
        valid = isinstance(value, str) and len(value) <= filter_text_characters_max
        if valid and "\0" in str(value):
            raise invalid(path, "text cannot hold a NUL character", "STRING_HAS_NUL")
    if not valid:
        raise invalid(path, _expected[value_type], "FILTER_INVALID")


_expected: Final[Mapping[ValueType, str]] = {
    ValueType.INTEGER: "an integer",
    ValueType.MONEY: "an amount in minor units",
    ValueType.POINTS: "an amount in hundredths of a point",
    ValueType.TIMESTAMP: (
        f"a moment from {moment_earliest:%Y-%m-%d} to before {moment_latest:%Y-%m-%d}, or at"
        f" most {from_now_seconds_max} seconds from now"
    ),
    ValueType.TEXT: f"text of at most {filter_text_characters_max} characters",
    ValueType.WORD: "one of the column's words",
    ValueType.BOOLEAN: "true or false",
}


def _is_integer(value: object) -> TypeGuard[int]:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and _bigint_min <= value <= _bigint_max
    )


def _is_moment(value: object) -> bool:
    return (
        isinstance(value, datetime)
        and value.tzinfo is not None
        and moment_earliest <= value < moment_latest
    )


def filter_columns(tree: Filter | None) -> frozenset[CustomerColumn]:
    """The columns a filter reads (none for no filter)."""
    if tree is None:
        return frozenset()
    if isinstance(tree, Condition):
        return frozenset((tree.column,))
    return frozenset().union(*(filter_columns(member) for member in tree.members))


class CompiledSql(NamedTuple):
    """SQL text with `$n` placeholders, and the values they stand for, in order."""

    text: str
    parameters: list[object]


# The trusted SQL expression of each column, from the store.
ColumnsSql: TypeAlias = Mapping[CustomerColumn, str]

_sql_types: Final[Mapping[ValueType, str]] = {
    ValueType.INTEGER: "bigint",
    ValueType.MONEY: "bigint",
    ValueType.POINTS: "bigint",
    ValueType.TIMESTAMP: "timestamptz",
    ValueType.TEXT: "text",
    ValueType.WORD: "text",
    ValueType.BOOLEAN: "boolean",
}
_comparisons: Final[Mapping[Operator, str]] = {
    Operator.EQUALS: "=",
    Operator.MORE_THAN: ">",
    Operator.LESS_THAN: "<",
}


def compile_filter(
    tree: Filter | None,
    columns_sql: ColumnsSql,
    now: datetime,
    first_parameter_number: int,
    field: str = "filter",
) -> CompiledSql:
    """A boolean SQL expression selecting the rows `tree` holds for (TRUE for no filter),
    relative moments resolved against `now`; InvalidArgument for a wrong tree."""
    assert now.tzinfo is not None, "now is an aware moment"
    if tree is None:
        return CompiledSql("TRUE", [])
    validate_filter(tree, field)
    parameters: list[object] = []
    text = _compiled(tree, columns_sql, now, first_parameter_number, parameters)
    return CompiledSql(text, parameters)


def _compiled(
    tree: Filter, columns_sql: ColumnsSql, now: datetime, first: int, parameters: list[object]
) -> str:
    if isinstance(tree, Group):
        joint = " AND " if tree.combination is Combination.ALL else " OR "
        members = (
            _compiled(member, columns_sql, now, first, parameters) for member in tree.members
        )
        return "(" + joint.join(members) + ")"
    expression = columns_sql[tree.column]
    if tree.operator is Operator.EXISTS:
        return f"({expression} IS NOT NULL)"
    if tree.operator is Operator.NOT_EXISTS:
        return f"({expression} IS NULL)"
    sql_type = _sql_types[tree.column.column_type.value_type]
    if tree.operator is Operator.IN:
        assert isinstance(tree.value, tuple)
        parameters.append(list(tree.value))
        return f"({expression} = ANY(${first + len(parameters) - 1}::{sql_type}[]))"
    value = tree.value
    parameters.append(
        now + timedelta(seconds=value.seconds) if isinstance(value, FromNow) else value
    )
    placeholder = f"${first + len(parameters) - 1}::{sql_type}"
    return f"({expression} {_comparisons[tree.operator]} {placeholder})"


class Direction(Enum):
    ASCENDING = "ascending"
    DESCENDING = "descending"


@dataclass(frozen=True, slots=True)
class Sort:
    column: CustomerColumn = CustomerColumn.CUSTOMER_ID
    direction: Direction = Direction.ASCENDING


SortValue: TypeAlias = int | bool | str | datetime | None


@dataclass(frozen=True, slots=True)
class PageStart:
    """Where a page starts: after the row with this sort value and customer id, in the
    selection as of `now`."""

    sort_value: SortValue
    customer_id: int
    now: datetime


@dataclass(frozen=True, slots=True)
class CompiledPage:
    """`after` selects the rows past the page start (TRUE on the first page); `order_by`
    is the list for ORDER BY; `parameters` are `after`'s."""

    after: str
    order_by: str
    parameters: list[object]


def compile_page(
    sort: Sort, columns_sql: ColumnsSql, start: PageStart | None, first_parameter_number: int
) -> CompiledPage:
    """The order of `sort` (absent values last, ties by customer id) and the keyset
    predicate that continues it after `start`."""
    identifier = columns_sql[CustomerColumn.CUSTOMER_ID]
    keyword, comparison = ("DESC", "<") if sort.direction is Direction.DESCENDING else ("ASC", ">")
    first = first_parameter_number
    if sort.column is CustomerColumn.CUSTOMER_ID:
        if start is None:
            return CompiledPage("TRUE", f"{identifier} {keyword}", [])
        return CompiledPage(
            f"({identifier} {comparison} ${first}::bigint)",
            f"{identifier} {keyword}",
            [start.customer_id],
        )
    column_type = sort.column.column_type
    expression = columns_sql[sort.column]
    # Without NULLS, a column that is never absent keeps PostgreSQL's default null order,
    # so one ascending index serves both directions (read backwards for DESC).
    nulls = " NULLS LAST" if column_type.absent_possible else ""
    order_by = f"{expression} {keyword}{nulls}, {identifier} {keyword}"
    if start is None:
        return CompiledPage("TRUE", order_by, [])
    if start.sort_value is None:
        # Inside the absent values at the end: only the rest of them, by customer id.
        after = f"({expression} IS NULL AND {identifier} {comparison} ${first}::bigint)"
        return CompiledPage(after, order_by, [start.customer_id])
    sql_type = _sql_types[column_type.value_type]
    after = (
        f"({expression}, {identifier}) {comparison} (${first}::{sql_type}, ${first + 1}::bigint)"
    )
    if column_type.absent_possible:
        after = f"({after} OR {expression} IS NULL)"
    return CompiledPage(after, order_by, [start.sort_value, start.customer_id])


def query_digest(tree: Filter | None, sort: Sort, scope: Sequence[str | int]) -> str:
    """A digest of a query: equal for the same filter, sort and scope, and (but for a
    hash collision) different otherwise."""
    document = [
        list(scope),
        None if tree is None else filter_to_document(tree),
        sort.column.value,
        sort.direction.value,
    ]
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def filter_to_document(tree: Filter) -> dict[str, object]:
    """The canonical document of `tree`: JSON values only (see the module's contract)."""
    if isinstance(tree, Group):
        return {tree.combination.value: [filter_to_document(member) for member in tree.members]}
    return {
        "column": tree.column.value,
        "operator": tree.operator.value,
        "value": _value_document(tree.value),
    }


def filter_from_document(document: object) -> Filter:
    """The tree whose document `document` is; ValueError when it is none."""
    if not isinstance(document, dict):
        raise ValueError("a filter document is an object")
    if len(document) == 1:
        ((key, members),) = document.items()
        if not isinstance(members, list):
            raise ValueError("a group's members are a list")
        combination = Combination(key)
        return Group(combination, tuple(filter_from_document(member) for member in members))
    if set(document) != {"column", "operator", "value"}:
        raise ValueError("a condition has a column, an operator and a value")
    return Condition(
        CustomerColumn(document["column"]),
        Operator(document["operator"]),
        _value_from_document(document["value"]),
    )


def _value_document(value: Value) -> object:
    """Each kind of value under a key of its own: `true` and `1` never digest alike."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"boolean": value}
    if isinstance(value, int):
        return {"integer": value}
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, datetime):
        return {"moment": _microseconds(value)}
    if isinstance(value, FromNow):
        return {"from_now": value.seconds}
    return {"list": list(value)}


def _value_from_document(document: object) -> Value:
    if document is None:
        return None
    if not isinstance(document, dict) or len(document) != 1:
        raise ValueError("a value is null or an object of one kind")
    ((kind, value),) = document.items()
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "list" and isinstance(value, list) and _is_listed(value):
        return tuple(value)
    if _is_integer(value):
        if kind == "integer":
            return value
        if kind == "from_now":
            return FromNow(value)
        moment = _moment_of(value) if kind == "moment" else None
        if moment is not None:
            return moment
    raise ValueError(f"not a value of kind {kind!r}")


def _is_listed(values: list[object]) -> bool:
    """The values of an IN condition: all integers or all text."""
    return all(_is_integer(each) for each in values) or all(
        isinstance(each, str) for each in values
    )


def _microseconds(moment: datetime) -> int:
    return (moment - _epoch) // timedelta(microseconds=1)


def page_token(tree: Filter | None, sort: Sort, scope: Sequence[str | int], last: PageStart) -> str:
    """The token of the page after the one that ended with `last`."""
    value = last.sort_value
    stored = _microseconds(value) if isinstance(value, datetime) else value
    key = json.dumps([stored, last.customer_id, _microseconds(last.now)], ensure_ascii=False)
    return pages.page_token([query_digest(tree, sort, scope)], key)


def page_start(
    token: str, tree: Filter | None, sort: Sort, scope: Sequence[str | int]
) -> PageStart | None:
    """Where the page of `token` starts (None for the first page); InvalidArgument naming
    `page_token` for a token not given for this very query."""
    key = pages.page_start(
        token, [query_digest(tree, sort, scope)], segment_page_token_characters_max
    )
    if key is None:
        return None
    refusal = invalid("page_token", "not a token this server gave for this query")
    try:
        decoded = json.loads(key)
    except ValueError as error:
        raise refusal from error
    if not isinstance(decoded, list) or len(decoded) != 3:
        raise refusal
    stored, customer_id, now_microseconds = decoded
    now = _moment_of(now_microseconds)
    value = _sort_value(sort.column.column_type, stored)
    if not _is_integer(customer_id) or now is None or not _is_moment(now):
        raise refusal
    if isinstance(value, _Unfit):
        raise refusal
    return PageStart(value, customer_id, now)


class _Unfit:
    """A token's sort value the column cannot hold."""


_unfit: Final = _Unfit()


def _sort_value(column_type: ColumnType, stored: object) -> SortValue | _Unfit:
    """A token's sort value as the column holds it (moments travel as microseconds)."""
    value_type = column_type.value_type
    if stored is None:
        return None if column_type.absent_possible else _unfit
    if value_type is ValueType.BOOLEAN:
        return stored if isinstance(stored, bool) else _unfit
    if value_type in (ValueType.TEXT, ValueType.WORD):
        return stored if isinstance(stored, str) else _unfit
    if value_type is ValueType.TIMESTAMP:
        moment = _moment_of(stored)
        return _unfit if moment is None else moment
    return stored if _is_integer(stored) else _unfit


def _moment_of(microseconds: object) -> datetime | None:
    """The moment `microseconds` after the epoch, or None when it is no moment."""
    if not _is_integer(microseconds):
        return None
    try:
        return _epoch + timedelta(microseconds=microseconds)
    except OverflowError:
        return None
