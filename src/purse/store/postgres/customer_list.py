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
* Filters and keyset pages are `purse.domain.segments`' compiled SQL over `columns_sql`,
  this module's trusted expressions; every value is a parameter. A page is one round trip;
  `count` is another. A lot counts as live, and relative moments resolve, against the
  query's `now`: the caller's on the first page, the token's after it.
"""

from __future__ import annotations

from collections.abc import Mapping
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

_select_list = ",\n       ".join(
    f"{expression} AS {column.value}" for column, expression in columns_sql.items()
)

# $1 the business, $2 the query's now; the scope's, the filter's and the page's
# parameters follow.
_from = """
  FROM memberships m
  JOIN customers c ON c.customer_id = m.customer_id
  LEFT JOIN pockets p
    ON p.business_id = $1 AND p.customer_id = m.customer_id AND p.account_type_id = 0
  LEFT JOIN LATERAL (
        SELECT l.remaining, l.expires_at FROM points_lots l
         WHERE l.business_id = $1 AND l.pocket_id = p.pocket_id
           AND l.remaining > 0 AND l.expires_at > $2
         ORDER BY l.expires_at, l.lot_id LIMIT 1) e ON TRUE
 WHERE m.business_id = $1"""

# A sale of the customer's at the business, at a terminal the scope names.
_bought_at = """
   AND EXISTS (SELECT 1 FROM transactions t
                WHERE t.business_id = $1 AND t.customer_id = m.customer_id
                  AND t.operation IS NULL
                  AND t.status IN ('completed', 'partially_refunded', 'refunded')
                  AND t.terminal_id IN ({terminals}))"""
_terminals_of_program = (
    "SELECT r.terminal_id FROM terminals r JOIN points_of_sale s"
    " ON s.business_id = r.business_id AND s.point_of_sale_id = r.point_of_sale_id"
    " WHERE r.business_id = $1 AND s.program_id = ${number}"
)
_terminals_of_point_of_sale = (
    "SELECT r.terminal_id FROM terminals r WHERE r.business_id = $1"
    " AND r.point_of_sale_id = ${number}"
)
_the_terminal = "${number}"


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
        if not 1 <= page_size <= customer_list_page_size_max:
            raise invalid("page_size", f"from 1 to {customer_list_page_size_max}")
        digest_scope = scope.digest_parts(business_id)
        start = page_start(token, tree, sort, digest_scope)
        moment = now if start is None else start.now
        selected = selection(business_id, scope, tree, moment)
        page = compile_page(sort, columns_sql, start, 1 + len(selected.parameters))
        # One row more than the page tells whether another page follows.
        statement = (
            f"SELECT {_select_list}{selected.text}\n   AND {page.after}"
            f"\n ORDER BY {page.order_by}\n LIMIT {page_size + 1}"
        )
        async with self._pool.acquire() as connection:
            records = await connection.fetch(statement, *selected.parameters, *page.parameters)
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
        selected = selection(business_id, scope, tree, now)
        async with self._pool.acquire() as connection:
            counted: int = await connection.fetchval(
                f"SELECT count(*){selected.text}", *selected.parameters
            )
        return counted


def selection_sql(
    business_id: int, scope: ListScope, tree: Filter | None, now: datetime
) -> CompiledSql:
    """A statement of the customer ids the selection holds (a bulk action freezes it):
    its first parameter is the business, the rest follow."""
    selected = selection(business_id, scope, tree, now)
    return CompiledSql(f"SELECT m.customer_id{selected.text}", selected.parameters)


def selection(
    business_id: int, scope: ListScope, tree: Filter | None, now: datetime
) -> CompiledSql:
    """FROM and WHERE of the business's memberships in `scope` that `tree` selects
    (memberships `m`, customers `c`, the points pocket `p`, its soonest lot `e`): the text
    and its parameters, numbered from $1."""
    if len(scope.customer_ids) > selected_customers_max:
        raise invalid("customer_ids", f"at most {selected_customers_max} customers")
    parameters: list[object] = [business_id, now]
    text = _from
    for template, value in (
        (_terminals_of_program, scope.program_id),
        (_terminals_of_point_of_sale, scope.point_of_sale_id),
        (_the_terminal, scope.terminal_id),
    ):
        if value is not None:
            parameters.append(value)
            terminals = template.replace("{number}", str(len(parameters)))
            text += _bought_at.replace("{terminals}", terminals)
    if scope.customer_ids:
        parameters.append(list(scope.customer_ids))
        text += f"\n   AND m.customer_id = ANY(${len(parameters)}::bigint[])"
    where = compile_filter(tree, columns_sql, now, 1 + len(parameters))
    return CompiledSql(f"{text}\n   AND {where.text}", parameters + where.parameters)


def _row(record: asyncpg.Record) -> CustomerRow:
    # The row's fields are named as the columns are.
    return CustomerRow(**{column.value: record[column.value] for column in CustomerColumn})
