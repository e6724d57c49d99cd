"""Compiled filters and keyset pages select, in a real PostgreSQL, exactly the rows a plain
reading of the same filter in Python selects, in the same order, every row exactly once
across pages, sorted by any column in either direction, absent values included."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from purse.domain.amounts import divide_rounded
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
    compile_filter,
    compile_page,
    days_ago,
    days_ahead,
    page_start,
    page_token,
)

now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
rows_in_table = 90
page_size = 7
scope: list[str | int] = ["customers", 1]

Row = dict[CustomerColumn, Any]

# How a store would read each column from a memberships-like table; text in the "C"
# collation, whose order is Python's order of strings.
columns_sql: Mapping[CustomerColumn, str] = {
    **{column: column.value for column in CustomerColumn},
    CustomerColumn.PHONE: 'phone COLLATE "C"',
    CustomerColumn.GIVEN_NAME: "NULLIF(given_name, '') COLLATE \"C\"",
    CustomerColumn.FAMILY_NAME: "NULLIF(family_name, '') COLLATE \"C\"",
    CustomerColumn.ACCESS_TYPE: 'access_type COLLATE "C"',
    CustomerColumn.AVERAGE_CHECK: (
        "CASE WHEN sales_count > 0 THEN round(sales_sum::numeric / sales_count)::bigint END"
    ),
}

_table = """
CREATE TEMPORARY TABLE customer_rows (
    customer_id bigint PRIMARY KEY,
    phone text NOT NULL,
    given_name text NOT NULL,
    family_name text NOT NULL,
    category_id bigint NOT NULL,
    access_type text NOT NULL,
    personal_data_consent boolean NOT NULL,
    participation_confirmed boolean NOT NULL,
    sales_count bigint NOT NULL,
    sales_sum bigint NOT NULL,
    first_visit timestamptz,
    last_visit timestamptz,
    points_balance bigint NOT NULL,
    points_expiring_amount bigint,
    points_expiring_at timestamptz,
    created_at timestamptz NOT NULL
) ON COMMIT DROP
"""
_stored = [column for column in CustomerColumn if column is not CustomerColumn.AVERAGE_CHECK]


def make_rows(generator: random.Random) -> list[Row]:
    """Rows with few distinct values (many ties) and many absent ones."""
    rows = []
    for customer_id in generator.sample(range(1, 1000), rows_in_table):
        sales_count = generator.choice([0, 0, 1, 3, 6, 6])
        last_visit = now - timedelta(days=generator.choice([2, 30, 45, 45, 90]))
        expiring = generator.choice([None, 50_00, 120_00])
        row: Row = {
            CustomerColumn.CUSTOMER_ID: customer_id,
            CustomerColumn.PHONE: f"+38050{generator.randrange(10_000, 10_010)}",
            CustomerColumn.GIVEN_NAME: generator.choice(["", "Olena", "olena", "Оксана", "Ivan"]),
            CustomerColumn.FAMILY_NAME: generator.choice(["", "Koval", "Ko'val"]),
            CustomerColumn.CATEGORY_ID: generator.choice([1, 2, 3]),
            CustomerColumn.ACCESS_TYPE: generator.choice(["full", "limited", "blacklisted"]),
            CustomerColumn.PERSONAL_DATA_CONSENT: generator.random() < 0.5,
            CustomerColumn.PARTICIPATION_CONFIRMED: generator.random() < 0.5,
            CustomerColumn.SALES_COUNT: sales_count,
            CustomerColumn.SALES_SUM: sales_count * generator.choice([0, 150_00, 333]),
            CustomerColumn.FIRST_VISIT: last_visit - timedelta(days=100) if sales_count else None,
            CustomerColumn.LAST_VISIT: last_visit if sales_count else None,
            CustomerColumn.POINTS_BALANCE: generator.choice([0, 50_00, 100_00, 250_00]),
            CustomerColumn.POINTS_EXPIRING_AMOUNT: expiring,
            CustomerColumn.POINTS_EXPIRING_AT: (
                now + timedelta(days=generator.choice([3, 20])) if expiring else None
            ),
            CustomerColumn.CREATED_AT: now - timedelta(days=generator.choice([1, 400])),
        }
        count, total = row[CustomerColumn.SALES_COUNT], row[CustomerColumn.SALES_SUM]
        row[CustomerColumn.AVERAGE_CHECK] = divide_rounded(total, count) if count else None
        rows.append(row)
    return rows


async def fill(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], rows: list[Row]
) -> None:
    """The rows in a table of this transaction's own."""
    await connection.execute(_table)
    await connection.copy_records_to_table(
        "customer_rows",
        records=[tuple(row[column] for column in _stored) for row in rows],
        columns=[column.value for column in _stored],
    )


def value_of(row: Row, column: CustomerColumn) -> Any:
    """The column's value as the store's expression gives it (blank names are absent)."""
    value = row[column]
    return None if value == "" else value


def holds(tree: Filter, row: Row) -> bool:
    """The reference reading of a filter: absent values satisfy nothing but NOT_EXISTS."""
    if isinstance(tree, Group):
        results = (holds(member, row) for member in tree.members)
        return all(results) if tree.combination is Combination.ALL else any(results)
    value = value_of(row, tree.column)
    if tree.operator in (Operator.EXISTS, Operator.NOT_EXISTS):
        return (value is None) == (tree.operator is Operator.NOT_EXISTS)
    if value is None:
        return False
    target = tree.value
    if isinstance(target, FromNow):
        target = now + timedelta(seconds=target.seconds)
    if tree.operator is Operator.IN:
        assert isinstance(target, tuple)
        return value in target
    if tree.operator is Operator.EQUALS:
        return bool(value == target)
    return bool(value > target if tree.operator is Operator.MORE_THAN else value < target)


def reference_order(rows: list[Row], tree: Filter | None, sort: Sort) -> list[int]:
    selected = [row for row in rows if tree is None or holds(tree, row)]
    descending = sort.direction is Direction.DESCENDING
    identifier = CustomerColumn.CUSTOMER_ID
    present = [row for row in selected if value_of(row, sort.column) is not None]
    absent = [row for row in selected if value_of(row, sort.column) is None]
    present.sort(key=lambda row: (value_of(row, sort.column), row[identifier]), reverse=descending)
    absent.sort(key=lambda row: row[identifier], reverse=descending)
    return [row[identifier] for row in present + absent]


async def paged_order(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], tree: Filter | None, sort: Sort
) -> list[int]:
    """Every page of the query in the database, each continued by the last one's token."""
    found: list[int] = []
    token = ""
    while True:
        start = page_start(token, tree, sort, scope)
        moment = now if start is None else start.now
        where = compile_filter(tree, columns_sql, moment, 1)
        page = compile_page(sort, columns_sql, start, 1 + len(where.parameters))
        statement = (
            f"SELECT customer_id, {columns_sql[sort.column]} AS sort_value FROM customer_rows"
            f" WHERE {where.text} AND {page.after} ORDER BY {page.order_by} LIMIT {page_size}"
        )
        rows = await connection.fetch(statement, *where.parameters, *page.parameters)
        found += [row["customer_id"] for row in rows]
        if len(rows) < page_size:
            return found
        last = PageStart(rows[-1]["sort_value"], rows[-1]["customer_id"], moment)
        token = page_token(tree, sort, scope, last)


def condition(column: CustomerColumn, operator: Operator, value: Any = None) -> Condition:
    return Condition(column, operator, value)


filters: list[Filter | None] = [
    None,
    Group(
        Combination.ALL,
        (
            condition(CustomerColumn.SALES_COUNT, Operator.MORE_THAN, 5),
            Group(
                Combination.ANY,
                (
                    condition(CustomerColumn.LAST_VISIT, Operator.NOT_EXISTS),
                    condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, days_ago(30)),
                ),
            ),
            condition(CustomerColumn.POINTS_BALANCE, Operator.MORE_THAN, 100_00),
        ),
    ),
    Group(
        Combination.ANY,
        (
            condition(CustomerColumn.GIVEN_NAME, Operator.IN, ("Olena", "Оксана")),
            condition(CustomerColumn.FAMILY_NAME, Operator.EQUALS, "Ko'val"),
            condition(CustomerColumn.PHONE, Operator.EQUALS, "+380501000"),
        ),
    ),
    Group(
        Combination.ALL,
        (
            condition(CustomerColumn.AVERAGE_CHECK, Operator.MORE_THAN, 333),
            condition(CustomerColumn.ACCESS_TYPE, Operator.IN, ("full", "limited")),
            condition(CustomerColumn.PERSONAL_DATA_CONSENT, Operator.EQUALS, True),
        ),
    ),
    Group(
        Combination.ANY,
        (
            condition(CustomerColumn.POINTS_EXPIRING_AT, Operator.LESS_THAN, days_ahead(7)),
            condition(CustomerColumn.POINTS_EXPIRING_AMOUNT, Operator.EQUALS, 120_00),
            condition(CustomerColumn.FIRST_VISIT, Operator.MORE_THAN, now - timedelta(days=150)),
        ),
    ),
    Group(
        Combination.ALL,
        (
            condition(CustomerColumn.CATEGORY_ID, Operator.IN, (2, 3)),
            condition(CustomerColumn.PARTICIPATION_CONFIRMED, Operator.EQUALS, False),
            condition(CustomerColumn.CREATED_AT, Operator.LESS_THAN, days_ago(10)),
            condition(CustomerColumn.SALES_SUM, Operator.LESS_THAN, 500_00),
            condition(CustomerColumn.GIVEN_NAME, Operator.EXISTS),
        ),
    ),
    condition(CustomerColumn.CUSTOMER_ID, Operator.LESS_THAN, 500),
]
sorts = [Sort(column, direction) for column in CustomerColumn for direction in Direction]


async def test_pages_of_compiled_filters_hold_the_reference_rows_in_the_reference_order(
    pool: asyncpg.Pool,
) -> None:
    rows = make_rows(random.Random(13))
    async with pool.acquire() as connection, connection.transaction():
        await fill(connection, rows)
        for tree in filters:
            expected_by_sort = {sort: reference_order(rows, tree, sort) for sort in sorts}
            assert expected_by_sort[Sort()], "every filter selects some rows"
            for sort, expected in expected_by_sort.items():
                assert await paged_order(connection, tree, sort) == expected, (tree, sort)


@pytest.mark.parametrize("direction", list(Direction))
async def test_a_page_ending_among_absent_values_continues_with_the_rest_of_them(
    pool: asyncpg.Pool, direction: Direction
) -> None:
    rows = make_rows(random.Random(5))
    sort = Sort(CustomerColumn.POINTS_EXPIRING_AT, direction)
    expected = reference_order(rows, None, sort)
    absent = [row for row in rows if row[CustomerColumn.POINTS_EXPIRING_AT] is None]
    async with pool.acquire() as connection, connection.transaction():
        await fill(connection, rows)
        found = await paged_order(connection, None, sort)

    assert len(absent) > page_size, "the absent values span more than one page"
    assert found == expected and len(set(found)) == len(rows)
