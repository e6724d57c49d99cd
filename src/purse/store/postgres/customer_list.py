"""The customer list of a business: pages of memberships filtered and sorted on the real
tables, and the count of a selection.

Contract:

* A row per membership of the business, with every `CustomerColumn`: the phone (shared
  customer row), names, category, access type, consent and participation, the statistics
  the sale path keeps on the membership (sales count and sum, the stored average check,
  first and last visit), the points pocket's balance (account type 0; 0 without a
  pocket), the soonest-expiring live points lot (amount and moment, absent without one)
  and when the membership was created.
* Every statement filters by the business. A `ListScope` narrows it further: to the
  customers who bought (a completed sale, refunded or not; an administrator's operation is
  no sale) in a program, at a point of sale or at a terminal, and to a manual selection of
  at most `selected_customers_max` customer ids. The scope is part of a page token's query.
* Scoped by a point of sale, the list holds the customers who bought there, and its
  statistic columns (sales count and sum, average check, first and last visit) are the
  customer's at that point of sale, as the sale path keeps them per point of sale
  (`point_of_sale_statistics`), for filters and sorts as for what a row shows: a customer
  who bought at several points of sale is in the list of each with its own figures.
* Filters and keyset pages are `purse.domain.segments`' compiled SQL over `columns_sql`
  (`point_of_sale_columns_sql` scoped by a point of sale), this module's trusted
  expressions; every value is a parameter. A page is one round trip; `count` is another.
  A lot counts as live, and relative moments resolve, against the query's `now`: the
  caller's on the first page, the token's after it.
* A statement reads only the tables its filter and sort need to choose its rows (a page
  then reads its chosen rows whole), so that no index on what a sale updates is needed
  (migration 0021 says what this measured).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from purse.domain.errors import invalid
from purse.domain.segments import (
    CompiledSql,
    CustomerColumn,
    Filter,
    PageStart,
    Sort,
    compile_filter,
    compile_page,
    filter_columns,
    page_start,
    page_token,
)

customer_list_page_size_max: Final = 1000
selected_customers_max: Final = 10_000

# Text in the "C" collation: byte order, the same on every server, and what the
# keyset comparison of a page token compares with.
columns_sql: Final[Mapping[CustomerColumn, str]] = {
    CustomerColumn.CUSTOMER_ID: "m.customer_id",
    CustomerColumn.PHONE: 'c.phone COLLATE "C"',
    CustomerColumn.GIVEN_NAME: "NULLIF(m.given_name, '') COLLATE \"C\"",
    CustomerColumn.FAMILY_NAME: "NULLIF(m.family_name, '') COLLATE \"C\"",
    CustomerColumn.CATEGORY_ID: "m.category_id",
    CustomerColumn.ACCESS_TYPE: 'm.access_type COLLATE "C"',
    CustomerColumn.PERSONAL_DATA_CONSENT: "m.personal_data_consent",
    CustomerColumn.PARTICIPATION_CONFIRMED: "m.participation_confirmed",
    CustomerColumn.SALES_COUNT: "m.sales_count",
    CustomerColumn.SALES_SUM: "m.sales_sum_minor_units",
    CustomerColumn.AVERAGE_CHECK: "m.average_check_minor_units",
    CustomerColumn.FIRST_VISIT: "m.first_visit_at",
    CustomerColumn.LAST_VISIT: "m.last_visit_at",
    CustomerColumn.POINTS_BALANCE: "coalesce(p.balance, 0)",
    CustomerColumn.POINTS_EXPIRING_AMOUNT: "e.remaining",
    CustomerColumn.POINTS_EXPIRING_AT: "e.expires_at",
    CustomerColumn.CREATED_AT: "m.created_at",
}

# The statistics of a point of sale, scoped by one (`s`: its row of the customer).
point_of_sale_columns_sql: Final[Mapping[CustomerColumn, str]] = {
    **columns_sql,
    CustomerColumn.CUSTOMER_ID: "s.customer_id",
    CustomerColumn.SALES_COUNT: "s.sales_count",
    CustomerColumn.SALES_SUM: "s.sales_sum_minor_units",
    CustomerColumn.AVERAGE_CHECK: "s.average_check_minor_units",
    CustomerColumn.FIRST_VISIT: "s.first_visit_at",
    CustomerColumn.LAST_VISIT: "s.last_visit_at",
}

# The tables a column reads: `m` the membership, `c` the customer, `p` the points pocket,
# `e` its soonest-expiring live lot (which needs `p`), `s` the point of sale's statistics.
_tables_of: Final[Mapping[CustomerColumn, tuple[str, ...]]] = {
    CustomerColumn.PHONE: ("c",),
    CustomerColumn.POINTS_BALANCE: ("p",),
    CustomerColumn.POINTS_EXPIRING_AMOUNT: ("p", "e"),
    CustomerColumn.POINTS_EXPIRING_AT: ("p", "e"),
}
_point_of_sale_tables_of: Final[Mapping[CustomerColumn, tuple[str, ...]]] = {
    **_tables_of,
    **{
        column: ("s",)
        for column, expression in point_of_sale_columns_sql.items()
        if expression.startswith("s.")
    },
}


def _select_list(columns: Mapping[CustomerColumn, str]) -> str:
    return ",\n       ".join(
        f"{expression} AS {column.value}" for column, expression in columns.items()
    )


# Placeholders: {business} the business's parameter, {now} the query's now, {customer}
# the customer id of the rows joined to, {point_of_sale} the scope's point of sale.
_memberships = """
  JOIN memberships m ON m.business_id = {business} AND m.customer_id = {customer}"""
_statistics = """
  JOIN point_of_sale_statistics s ON s.business_id = {business}
   AND s.point_of_sale_id = {point_of_sale} AND s.customer_id = {customer}"""
_customers = "\n  JOIN customers c ON c.customer_id = {customer}"
_pockets = """
  LEFT JOIN pockets p
    ON p.business_id = {business} AND p.customer_id = {customer} AND p.account_type_id = 0"""
# For a page's rows: each pocket's soonest lot, an index probe each.
_soonest_lot_of_each = """
  LEFT JOIN LATERAL (
        SELECT l.remaining, l.expires_at FROM points_lots l
         WHERE l.business_id = {business} AND l.pocket_id = p.pocket_id
           AND l.remaining > 0 AND l.expires_at > {now}
         ORDER BY l.expires_at, l.lot_id LIMIT 1) e ON TRUE"""
# For a whole selection: every pocket's soonest lot in one pass over the live lots, to be
# joined by hash (a probe per membership of a million is seconds).
_soonest_lots = """
  LEFT JOIN (SELECT DISTINCT ON (l.pocket_id) l.pocket_id, l.remaining, l.expires_at
               FROM points_lots l
              WHERE l.business_id = {business} AND l.remaining > 0 AND l.expires_at > {now}
              ORDER BY l.pocket_id, l.expires_at, l.lot_id) e ON e.pocket_id = p.pocket_id"""

# A completed sale of the customer's (refunded or not) at the business, at a terminal.
_bought_at_terminal = """
   AND EXISTS (SELECT 1 FROM transactions t
                WHERE t.business_id = {business} AND t.customer_id = {customer}
                  AND t.operation IS NULL
                  AND t.status IN ('completed', 'partially_refunded', 'refunded')
                  AND t.terminal_id = {value})"""
# A sale at a point of sale of the program: the statistics of each point of sale say.
_bought_in_program = """
   AND EXISTS (SELECT 1 FROM point_of_sale_statistics b
                JOIN points_of_sale o
                  ON o.business_id = b.business_id AND o.point_of_sale_id = b.point_of_sale_id
                WHERE b.business_id = {business} AND b.customer_id = {customer}
                  AND o.program_id = {value})"""


@dataclass(frozen=True, slots=True)
class ListScope:
    """Which of the business's memberships the list holds: None (or no ids) for all."""

    program_id: int | None = None
    point_of_sale_id: int | None = None
    terminal_id: int | None = None
    customer_ids: tuple[int, ...] = ()

    def digest_parts(self, business_id: int) -> list[str | int]:
        """The scope as a page token's query names it."""
        return [
            "customers",
            business_id,
            "program",
            -1 if self.program_id is None else self.program_id,
            "point_of_sale",
            -1 if self.point_of_sale_id is None else self.point_of_sale_id,
            "terminal",
            -1 if self.terminal_id is None else self.terminal_id,
            "customer_ids",
            *self.customer_ids,
        ]


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One membership as the list shows it; amounts in minor units or hundredths of a
    point, None where the column is absent."""

    customer_id: int
    phone: str
    given_name: str | None
    family_name: str | None
    category_id: int
    access_type: str
    personal_data_consent: bool
    participation_confirmed: bool
    sales_count: int
    sales_sum: int
    average_check: int | None
    first_visit: datetime | None
    last_visit: datetime | None
    points_balance: int
    points_expiring_amount: int | None
    points_expiring_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerPage:
    rows: list[CustomerRow]
    # Empty on the last page.
    next_page_token: str


class CustomerListStore:
    """Pages and counts of a business's customer list."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        page_size: int,
        token: str,
        now: datetime,
    ) -> CustomerPage:
        """The page `token` points at (the first for ""); InvalidArgument naming the field
        of a wrong filter, page size, selection or token."""
        digest_scope = scope.digest_parts(business_id)
        start = page_start(token, tree, sort, digest_scope)
        moment = now if start is None else start.now
        statement = page_statement(business_id, scope, tree, sort, page_size, start, moment)
        async with self._pool.acquire() as connection:
            records = await connection.fetch(statement.text, *statement.parameters)
        rows = [_row(record) for record in records[:page_size]]
        if len(records) <= page_size:
            return CustomerPage(rows, "")
        last = records[page_size - 1]
        after = PageStart(last[sort.column.value], last["customer_id"], moment)
        return CustomerPage(rows, page_token(tree, sort, digest_scope, after))

    async def count(
        self, business_id: int, scope: ListScope, tree: Filter | None, now: datetime
    ) -> int:
        """How many memberships the selection holds, relative moments as of `now`."""
        statement = count_statement(business_id, scope, tree, now)
        async with self._pool.acquire() as connection:
            counted: int = await connection.fetchval(statement.text, *statement.parameters)
        return counted


def page_statement(
    business_id: int,
    scope: ListScope,
    tree: Filter | None,
    sort: Sort,
    page_size: int,
    start: PageStart | None,
    now: datetime,
) -> CompiledSql:
    """The statement of a page of `page_size` rows after `start` (the first: None), and
    one row more, which tells whether another page follows.

    The page's customers are chosen first, reading only the tables the filter and the
    sort need, so that the database keeps the best `page_size + 1` rows as it reads
    (a bounded sort) rather than sorting whole rows of every membership; their rows are
    then read whole, a probe each."""
    if not 1 <= page_size <= customer_list_page_size_max:
        raise invalid("page_size", f"from 1 to {customer_list_page_size_max}")
    sources = _Sources(scope)
    columns = sources.columns
    chosen = sources.selection(tree, filter_columns(tree) | {sort.column}, now, business_id)
    page = compile_page(sort, columns, start, 1 + len(sources.values))
    sources.values += page.parameters
    names = {"business": sources.business, "customer": "chosen.customer_id"}
    rows = _memberships.format(**names)
    if sources.point_of_sale is not None:
        rows += _statistics.format(**names, point_of_sale=sources.point_of_sale)
    names["customer"] = "m.customer_id"
    rows += _customers.format(**names) + _pockets.format(**names)
    rows += _soonest_lot_of_each.format(**names, now=sources.add(now))
    text = (
        f"SELECT {_select_list(columns)}"
        f"\n  FROM (SELECT {columns[CustomerColumn.CUSTOMER_ID]} AS customer_id{chosen}"
        f"\n   AND {page.after}\n ORDER BY {page.order_by}\n LIMIT {page_size + 1}) chosen"
        f"{rows}\n ORDER BY {page.order_by}"
    )
    return CompiledSql(text, sources.values)


def count_statement(
    business_id: int, scope: ListScope, tree: Filter | None, now: datetime
) -> CompiledSql:
    """The statement counting the selection, reading only the tables the filter needs."""
    sources = _Sources(scope)
    selection = sources.selection(tree, filter_columns(tree), now, business_id)
    return CompiledSql(f"SELECT count(*){selection}", sources.values)


def selection_sql(
    business_id: int, scope: ListScope, tree: Filter | None, now: datetime
) -> CompiledSql:
    """A statement of the customer ids the selection holds (a bulk action freezes it):
    its first parameter is the business, the rest follow."""
    sources = _Sources(scope)
    selected = sources.selection(tree, filter_columns(tree), now, business_id)
    customer = sources.columns[CustomerColumn.CUSTOMER_ID]
    return CompiledSql(f"SELECT {customer} AS customer_id{selected}", sources.values)


def selection(
    business_id: int, scope: ListScope, tree: Filter | None, now: datetime
) -> CompiledSql:
    """FROM and WHERE of the business's memberships in `scope` that `tree` selects, with
    every table a row reads (memberships `m`, customers `c`, the points pocket `p`, its
    soonest lot `e`, and scoped by a point of sale its statistics `s`), for a statement
    that reads every row whole (an export): the text and its parameters, numbered from
    $1. `columns_of(scope)` are the columns' expressions over it."""
    sources = _Sources(scope)
    selected = sources.selection(tree, list(CustomerColumn), now, business_id)
    return CompiledSql(selected, sources.values)


def columns_of(scope: ListScope) -> Mapping[CustomerColumn, str]:
    """The columns' expressions in a statement of `scope` (the statistics of its point of
    sale when it names one)."""
    return point_of_sale_columns_sql if scope.point_of_sale_id is not None else columns_sql


class _Sources:
    """Where a statement's rows come from, by its scope, and its parameters, each
    placeholder numbered as it is added."""

    def __init__(self, scope: ListScope) -> None:
        if len(scope.customer_ids) > selected_customers_max:
            raise invalid("customer_ids", f"at most {selected_customers_max} customers")
        self.scope = scope
        self.values: list[object] = []
        self.business = ""
        self.point_of_sale: str | None = None
        self.columns = columns_of(scope)
        by_point_of_sale = scope.point_of_sale_id is not None
        self._tables_of = _point_of_sale_tables_of if by_point_of_sale else _tables_of

    def add(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def selection(
        self,
        tree: Filter | None,
        needed: Collection[CustomerColumn],
        now: datetime,
        business_id: int,
    ) -> str:
        """FROM and WHERE of the business's memberships in the scope that `tree` selects,
        joined with the tables the columns `needed` read."""
        scope = self.scope
        self.business = self.add(business_id)
        tables = {table for column in needed for table in self._tables_of.get(column, ("m",))}
        names = {"business": self.business, "customer": self.columns[CustomerColumn.CUSTOMER_ID]}
        if scope.point_of_sale_id is None:
            text = "\n  FROM memberships m"
            where = f"\n WHERE m.business_id = {self.business}"
        else:
            self.point_of_sale = self.add(scope.point_of_sale_id)
            text = "\n  FROM point_of_sale_statistics s"
            where = (
                f"\n WHERE s.business_id = {self.business}"
                f" AND s.point_of_sale_id = {self.point_of_sale}"
            )
            if "m" in tables:
                text += _memberships.format(**names)
        if "c" in tables:
            text += _customers.format(**names)
        if "p" in tables:
            text += _pockets.format(**names)
        if "e" in tables:
            text += _soonest_lots.format(**names, now=self.add(now))
        for template, value in (
            (_bought_in_program, scope.program_id),
            (_bought_at_terminal, scope.terminal_id),
        ):
            if value is not None:
                where += template.format(**names, value=self.add(value))
        if scope.customer_ids:
            chosen = self.add(list(scope.customer_ids))
            where += f"\n   AND {names['customer']} = ANY({chosen}::bigint[])"
        condition = compile_filter(tree, self.columns, now, 1 + len(self.values))
        self.values += condition.parameters
        return f"{text}{where}\n   AND {condition.text}"


def _row(record: asyncpg.Record) -> CustomerRow:
    # The row's fields are named as the columns are.
    return CustomerRow(**{column.value: record[column.value] for column in CustomerColumn})
