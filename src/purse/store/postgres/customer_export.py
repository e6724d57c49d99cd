"""The customer list of a business as CSV, written by PostgreSQL itself.

Contract:

* `export` writes one CSV file through `write`: first the UTF-8 byte order mark and the
  header row, then a row per membership of the selection (`customer_list.selection`: the
  business, the scope, the filter; relative moments and live lots as of `now`) in the
  sort's order, with every `CustomerColumn` in the list's order. It returns how many rows
  it wrote.
* The rows are `COPY (SELECT …) TO STDOUT (FORMAT csv)`: PostgreSQL formats and quotes them
  (RFC 4180 quoting; lines end in LF; NULL, an absent value, is an empty cell; an empty
  text never occurs, blank names being absent), and asyncpg hands its output over as it
  arrives, reading no more from the connection while `write` waits. Nothing holds more
  than what one read brings, however many rows the selection has.
* Formats for a spreadsheet: money as a decimal of the business's currency with its minor
  digits (the header names the currency: `sales_sum_UAH`), points as a decimal with two
  digits, moments as ISO 8601 in UTC to the second (`2024-05-01T09:30:00Z`), yes or no as
  `true` / `false`, access types as their words. Names are quoted always, and a name that
  begins with a character a spreadsheet starts a formula with (`formula_characters`) is
  written with a `'` before it (OWASP's advice on CSV injection). The phone is not: the
  database holds only `+` and digits there, a number to any spreadsheet.
* One moment's list: the export runs in a REPEATABLE READ, READ ONLY transaction, so rows
  committed while it streams are not in it. Its statement may take `seconds_max` (far
  longer than the pool's statement timeout, which suits calls a till waits for); past it
  (or a little later, for a reader that stopped reading) `export` raises TimedOut
  `EXPORT_TOO_LONG`, the statement cancelled.
* Every value is a parameter. COPY takes none, so asyncpg inlines them: PostgreSQL itself
  quotes each as a literal of its parameter's type (`quote_literal`), and the query text
  holds no `$n` but its parameters (the trusted expressions here and in `customer_list`).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import asyncpg

from purse.domain.errors import DomainError, NotFound, TimedOut
from purse.domain.segments import CustomerColumn, Filter, Sort, compile_page
from purse.store.postgres.back_office import Connection
from purse.store.postgres.customer_list import ListScope, columns_of, selection

# What the export is written to: a coroutine function, awaited before more is read.
Write = Callable[[bytes], Coroutine[Any, Any, None]]

byte_order_mark: Final = "\ufeff"
# What a spreadsheet reads as the start of a formula when a cell begins with it: = + - @,
# a tab and a carriage return (OWASP), and the full-width = + - @ some spreadsheets take
# for the same.
formula_characters: Final = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
# asyncpg's own limit on the whole COPY (the time `write` waits included), a little past
# PostgreSQL's statement timeout, so that PostgreSQL's cancellation comes first when the
# query is what takes long. PostgreSQL does not cancel a statement while it is blocked
# sending to a client that reads nothing; asyncpg's limit ends that too.
client_seconds_margin_default: Final = 5.0
_hundredth: Final = Decimal("0.01")


def _quoted_literal(character: str) -> str:
    return "chr(9)" if character == "\t" else "chr(13)" if character == "\r" else f"'{character}'"


def _spreadsheet_text(expression: str) -> str:
    """`expression`, with a `'` before it when it begins with a formula character."""
    leading = ", ".join(_quoted_literal(character) for character in formula_characters)
    return (
        f"CASE WHEN left({expression}, 1) IN ({leading}) THEN '''' || {expression}"
        f" ELSE {expression} END"
    )


def _utc(expression: str) -> str:
    return f"""to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


# Each cell from its column's expression in the list (`{column}`: the membership's, or
# scoped by a point of sale the statistics there); `{money}` is the parameter of the
# currency's minor unit (0.01 for 2 digits).
_cells: Final[Mapping[CustomerColumn, str]] = {
    **{column: "{column}" for column in CustomerColumn},
    CustomerColumn.GIVEN_NAME: _spreadsheet_text("{column}"),
    CustomerColumn.FAMILY_NAME: _spreadsheet_text("{column}"),
    CustomerColumn.PERSONAL_DATA_CONSENT: "{column}::text",
    CustomerColumn.PARTICIPATION_CONFIRMED: "{column}::text",
    CustomerColumn.SALES_SUM: "{column} * {money}",
    CustomerColumn.AVERAGE_CHECK: "{column} * {money}",
    CustomerColumn.FIRST_VISIT: _utc("{column}"),
    CustomerColumn.LAST_VISIT: _utc("{column}"),
    CustomerColumn.POINTS_BALANCE: f"{{column}} * {_hundredth}",
    CustomerColumn.POINTS_EXPIRING_AMOUNT: f"{{column}} * {_hundredth}",
    CustomerColumn.POINTS_EXPIRING_AT: _utc("{column}"),
    CustomerColumn.CREATED_AT: _utc("{column}"),
}
# The header's names: the contract's (CustomerListRow) where the unit does not change.
_headers: Final[Mapping[CustomerColumn, str]] = {
    **{column: column.value for column in CustomerColumn},
    CustomerColumn.SALES_SUM: "sales_sum_{currency}",
    CustomerColumn.AVERAGE_CHECK: "average_check_{currency}",
    CustomerColumn.POINTS_EXPIRING_AMOUNT: "points_expiring",
    CustomerColumn.POINTS_EXPIRING_AT: "points_expiring_time",
    CustomerColumn.FIRST_VISIT: "first_visit_time",
    CustomerColumn.LAST_VISIT: "last_visit_time",
    CustomerColumn.CREATED_AT: "create_time",
}
_quoted_always: Final = (CustomerColumn.GIVEN_NAME.value, CustomerColumn.FAMILY_NAME.value)
_currency = "SELECT currency, currency_exponent FROM businesses WHERE business_id = $1"


def header(currency: str) -> bytes:
    """The byte order mark and the header row, lines ending as PostgreSQL's do."""
    text = io.StringIO()
    names = [_headers[column].format(currency=currency) for column in CustomerColumn]
    csv.writer(text, lineterminator="\n").writerow(names)
    return (byte_order_mark + text.getvalue()).encode()


class CustomerExportStore:
    """CSV exports of a business's customer list."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        seconds_max: float,
        client_seconds_margin: float = client_seconds_margin_default,
    ) -> None:
        self._pool = pool
        self._seconds_max = seconds_max
        self._client_seconds_margin = client_seconds_margin

    async def export(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        now: datetime,
        write: Write,
    ) -> int:
        """Writes the selection as CSV through `write`; returns the rows written.
        InvalidArgument for a wrong filter or selection (before anything is written)."""
        query, parameters = _query(business_id, scope, tree, sort, now)
        started = time.monotonic()
        async with self._pool.acquire() as connection:
            snapshot = connection.transaction(isolation="repeatable_read", readonly=True)
            await snapshot.start()
            try:
                status = await self._copy(connection, business_id, query, parameters, write)
            except (asyncpg.PostgresError, DomainError) as failure:
                await snapshot.rollback()
                self._refuse_over_time(failure, started)
                raise
            except BaseException as failure:
                # The COPY may have stopped halfway (its reader gone, or too slow): asyncpg
                # then waits for PostgreSQL to answer its cancel request, which no answer
                # follows when the COPY had already ended. The connection is dropped
                # instead (the pool opens another), so nothing waits on it.
                connection.terminate()
                self._refuse_over_time(failure, started)
                raise
            await snapshot.rollback()  # read only: nothing to keep
        return int(status.rpartition(" ")[2])

    def _refuse_over_time(self, failure: BaseException, started: float) -> None:
        """TimedOut EXPORT_TOO_LONG, when `failure` is a cancellation or a time-out that
        came once the export's time was over."""
        cancelled = isinstance(failure, asyncpg.QueryCanceledError | TimeoutError)
        if cancelled and time.monotonic() - started >= self._seconds_max:
            raise TimedOut(
                f"an export may take at most {self._seconds_max:g} s; narrow the selection",
                reason="EXPORT_TOO_LONG",
            ) from failure

    async def _copy(
        self,
        connection: Connection,
        business_id: int,
        query: str,
        parameters: list[object],
        write: Write,
    ) -> str:
        await connection.execute(
            "SELECT set_config('statement_timeout', $1, true)",
            str(round(self._seconds_max * 1000)),
        )
        business = await connection.fetchrow(_currency, business_id)
        if business is None:
            raise NotFound("no such business", reason="BUSINESS_NOT_FOUND")
        await write(header(business["currency"]))
        status: str = await connection.copy_from_query(
            query,
            *parameters,
            Decimal(1).scaleb(-business["currency_exponent"]),
            output=write,
            format="csv",
            force_quote=_quoted_always,
            timeout=self._seconds_max + self._client_seconds_margin,
        )
        return status


def _query(
    business_id: int, scope: ListScope, tree: Filter | None, sort: Sort, now: datetime
) -> tuple[str, list[object]]:
    """The export's SELECT and its parameters but the last, the currency's minor unit."""
    selected = selection(business_id, scope, tree, now)
    columns = columns_of(scope)
    money = f"${len(selected.parameters) + 1}::numeric"
    cells = ",\n       ".join(
        f"{expression.format(money=money, column=columns[column])} AS {column.value}"
        for column, expression in _cells.items()
    )
    # The first page's order: no keyset predicate, so no parameters of its own.
    order = compile_page(sort, columns, None, len(selected.parameters) + 2)
    return f"SELECT {cells}{selected.text}\n ORDER BY {order.order_by}", selected.parameters
