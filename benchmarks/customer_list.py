"""The customer list on a business of a million members: `python -m benchmarks.customer_list`
(or `make bench-list`).

Contract. On 127.0.0.1 only, it starts PostgreSQL and Redis (the embedded ones under
`--data-dir`, else a temporary directory; or the servers PURSE_DATABASE_URL /
PURSE_REDIS_URL name), migrates, starts `python -m purse.cli serve` as a child process,
and builds a business of `--members` members with their history as `purse generate`
does (`purse.generation`: founded through the server's API, the members by COPY), unless
the data directory holds one an earlier run kept (`generated-business.json`). Then, from
one client, one call at a time over gRPC with the owner's API key, it times:

* *pages*: ListCustomers, 50 rows, of each selection in `selections` (the issue's "more
  than 5 sales, no visit in the last 30 days, more than 100 points", and one with an OR),
  sorted by average check, largest first: the first page `--runs` times, then `--pages`
  pages after it, each by the token of the one before;
* *counts*: CountCustomers of each selection, `--runs` times;
* *sorts*: the first page with no filter sorted by every column in both directions,
  `--sort-runs` times each;
* *scoped*: the first page and the count of the issue's selection at each point of sale.

Each is reported as p50, p95 and the slowest call in milliseconds against its target
(a page p95 ≤ 300 ms, a count ≤ 1 s), with `EXPLAIN (ANALYZE, BUFFERS)` of the slowest
filtered page's statement as the store builds it (`page_statement`). `--markdown PATH`
also writes it all as Markdown. Exit status 0 when it ran (whatever the figures), 1 when
something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import grpc

from benchmarks.load.run import ChildServer, _health_serving, log, purse_server
from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import customers_pb2 as pb

runs_default: Final = 30
pages_default: Final = 30
sort_runs_default: Final = 30
page_size: Final = 50
warm_up_calls: Final = 3
page_p95_target_ms: Final = 300.0
count_target_ms: Final = 1000.0
call_seconds_max: Final = 120.0
generated_file: Final = "generated-business.json"
_day_seconds: Final = 86_400


def _condition(
    column: pb.CustomerColumn.ValueType, operator: pb.FilterOperator.ValueType, **value: Any
) -> pb.Filter:
    return pb.Filter(
        condition=pb.Condition(column=column, operator=operator, value=pb.FilterValue(**value))
    )


def selections() -> dict[str, Any]:
    """The filters measured, by name."""
    more_sales = _condition(pb.CUSTOMER_COLUMN_SALES_COUNT, pb.FILTER_OPERATOR_MORE_THAN, integer=5)
    away = _condition(
        pb.CUSTOMER_COLUMN_LAST_VISIT,
        pb.FILTER_OPERATOR_LESS_THAN,
        seconds_from_now=-30 * _day_seconds,
    )
    points = _condition(
        pb.CUSTOMER_COLUMN_POINTS_BALANCE, pb.FILTER_OPERATOR_MORE_THAN, integer=100_00
    )
    return {
        "sales > 5 AND last visit > 30 days ago AND points > 100": pb.Filter(
            all=[more_sales, away, points]
        ),
        "sales > 5 AND (last visit > 30 days ago OR points > 100)": pb.Filter(
            all=[more_sales, pb.Filter(any=[away, points])]
        ),
    }


@dataclass
class Measured:
    """One query's call times, and its target."""

    kind: str
    name: str
    milliseconds: list[float]
    target_ms: float
    rows: int = 0

    def quantile(self, share: float) -> float:
        ordered = sorted(self.milliseconds)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    @property
    def met(self) -> bool:
        return self.quantile(0.95) <= self.target_ms


@dataclass
class Report:
    members: int = 0
    generated: str = ""
    measured: list[Measured] = field(default_factory=list)
    plan_of: str = ""
    plan: str = ""


async def _timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], Any]:
    """Milliseconds of `runs` calls (after `warm_up_calls` not counted), and the last answer."""
    answer = None
    for _ in range(warm_up_calls):
        answer = await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = await call()
        times.append(1000 * (time.perf_counter() - started))
    return times, answer


def _sort(
    column: pb.CustomerColumn.ValueType, direction: pb.SortDirection.ValueType
) -> pb.CustomerSort:
    return pb.CustomerSort(column=column, direction=direction)


async def measure(
    target: str, key: str, arguments: argparse.Namespace, points_of_sale: list[int]
) -> list[Measured]:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub

    metadata = (("authorization", f"Bearer {key}"),)
    measured: list[Measured] = []
    by_average = _sort(pb.CUSTOMER_COLUMN_AVERAGE_CHECK, pb.SORT_DIRECTION_DESCENDING)
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = AdminServiceStub(channel)

        def page(request: Any) -> Callable[[], Awaitable[Any]]:
            return lambda: stub.ListCustomers(request, metadata=metadata, timeout=call_seconds_max)

        def count(request: Any) -> Callable[[], Awaitable[Any]]:
            return lambda: stub.CountCustomers(request, metadata=metadata, timeout=call_seconds_max)

        for name, tree in selections().items():
            log(f"pages and counts: {name}")
            first = admin.ListCustomersRequest(filter=tree, sort=by_average, page_size=page_size)
            times, answer = await _timed(page(first), arguments.runs)
            measured.append(Measured("page", f"{name}, first page", times, page_p95_target_ms))
            measured.append(await _later_pages(page, first, answer, arguments.pages, name))
            times, answer = await _timed(
                count(admin.CountCustomersRequest(filter=tree)), arguments.runs
            )
            measured.append(Measured("count", name, times, count_target_ms, rows=int(answer.count)))
        example = next(iter(selections().values()))
        for point_of_sale_id in points_of_sale:
            log(f"scoped to point of sale {point_of_sale_id}")
            scope = pb.CustomerListScope(point_of_sale_id=point_of_sale_id)
            request = admin.ListCustomersRequest(
                filter=example, sort=by_average, page_size=page_size, scope=scope
            )
            times, _ = await _timed(page(request), arguments.runs)
            label = f"point of sale {point_of_sale_id}: the issue's selection"
            measured.append(Measured("scoped page", label, times, page_p95_target_ms))
            times, answer = await _timed(
                count(admin.CountCustomersRequest(filter=example, scope=scope)), arguments.runs
            )
            measured.append(
                Measured("scoped count", label, times, count_target_ms, rows=int(answer.count))
            )
        for column, column_name in _columns():
            for direction, direction_name in (
                (pb.SORT_DIRECTION_ASCENDING, "ascending"),
                (pb.SORT_DIRECTION_DESCENDING, "descending"),
            ):
                request = admin.ListCustomersRequest(
                    sort=_sort(column, direction), page_size=page_size
                )
                times, _ = await _timed(page(request), arguments.sort_runs)
                label = f"{column_name}, {direction_name}"
                measured.append(Measured("sort", label, times, page_p95_target_ms))
            log(f"sorted by {column_name}")
    return measured


async def _later_pages(
    page: Callable[[Any], Callable[[], Awaitable[Any]]],
    first: Any,
    answer: Any,
    pages: int,
    name: str,
) -> Measured:
    """`pages` pages after the first, each by the token of the one before."""
    times = []
    token = answer.next_page_token
    for _ in range(pages):
        if not token:
            break
        request = type(first)()
        request.CopyFrom(first)
        request.page_token = token
        started = time.perf_counter()
        answer = await page(request)()
        times.append(1000 * (time.perf_counter() - started))
        token = answer.next_page_token
    return Measured(
        "page", f"{name}, pages 2 to {len(times) + 1} by token", times, page_p95_target_ms
    )


def _columns() -> list[tuple[pb.CustomerColumn.ValueType, str]]:
    return [
        (number, pb.CustomerColumn.Name(number).removeprefix("CUSTOMER_COLUMN_").lower())
        for number in pb.CustomerColumn.values()
        if number != pb.CUSTOMER_COLUMN_UNSPECIFIED
    ]


async def explain(database_url: str, business_id: int, name: str, scoped_to: int | None) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the first page of selection `name`, as the store
    builds its statement."""
    from purse.api.grpc.admin.customer_list import filter_from_proto, sort_from_proto
    from purse.store.postgres.customer_list import ListScope, page_statement

    statement = page_statement(
        business_id,
        ListScope(point_of_sale_id=scoped_to),
        filter_from_proto(selections()[name]),
        sort_from_proto(_sort(pb.CUSTOMER_COLUMN_AVERAGE_CHECK, pb.SORT_DIRECTION_DESCENDING)),
        page_size,
        None,
        datetime.now(UTC),
    )
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS) {statement.text}", *statement.parameters
        )
    finally:
        await connection.close()
    return "\n".join(row[0] for row in rows)


async def _operator_key(database_url: str) -> str:
    from purse.domain import credentials
    from purse.store.postgres import database
    from purse.store.postgres.administrators import OperatorKeyStore

    key = credentials.new_api_key()
    pool = await database.create_pool(database_url, 1, 1, 10_000, 10.0)
    try:
        await OperatorKeyStore(pool).add("customer list benchmark", credentials.api_key_digest(key))
    finally:
        await pool.close()
    return key


async def _generate(target: str, database_url: str, members: int) -> tuple[dict[str, Any], str]:
    from purse.generation.founding import generate

    started = time.perf_counter()

    def progress(written: int) -> None:
        if written % 100_000 == 0:
            log(f"  {written:,} members written ({time.perf_counter() - started:.0f} s)")

    operator_key = await _operator_key(database_url)
    async with grpc.aio.insecure_channel(target) as channel:
        generated = await generate(channel, operator_key, database_url, members, progress=progress)
    copied = generated.copied
    summary = (
        f"{copied.rows['memberships']:,} members, {copied.rows['transactions']:,} transactions,"
        f" {copied.rows['ledger_entries']:,} ledger entries and {copied.rows['points_lots']:,}"
        f" special points lots written by COPY in {copied.seconds:.0f} s, the tables settled in"
        f" {generated.settling_seconds:.0f} s"
    )
    return asdict(generated.demo), summary


async def _points_of_sale(database_url: str, business_id: int) -> list[int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT point_of_sale_id FROM points_of_sale WHERE business_id = $1"
            " ORDER BY point_of_sale_id",
            business_id,
        )
    finally:
        await connection.close()
    return [row[0] for row in rows]


def run(arguments: argparse.Namespace, data_dir: Path, report: Report) -> None:
    from purse.bootstrap import Infrastructure
    from purse.config import load_settings
    from purse.store.embedded import free_port
    from purse.store.postgres import database

    infrastructure = Infrastructure(load_settings(data_dir=data_dir))
    server: ChildServer | None = None
    try:
        settings = infrastructure.start()
        asyncio.run(database.migrate(settings.database_url))
        port = free_port()
        server = purse_server(settings, data_dir, port, free_port())
        target = f"127.0.0.1:{port}"
        server.start(lambda: _health_serving(target))
        saved = data_dir / generated_file
        if saved.exists():
            business = json.loads(saved.read_text())
            report.generated = f"the business an earlier run generated in {data_dir}"
        else:
            log(f"generating {arguments.members:,} members")
            business, report.generated = asyncio.run(
                _generate(target, settings.database_url, arguments.members)
            )
            saved.write_text(json.dumps(business))
        report.members = arguments.members
        points_of_sale = asyncio.run(
            _points_of_sale(settings.database_url, business["business_id"])
        )
        report.measured = asyncio.run(
            measure(target, business["administrator_api_key"], arguments, points_of_sale)
        )
        slowest = max(
            (each for each in report.measured if each.kind == "page" and "first" in each.name),
            key=lambda each: each.quantile(0.95),
        )
        report.plan_of = slowest.name.removesuffix(", first page")
        report.plan = asyncio.run(
            explain(settings.database_url, business["business_id"], report.plan_of, None)
        )
    finally:
        if server is not None:
            server.stop()
        infrastructure.stop()


def render(report: Report) -> str:
    lines = [
        f"Customer list benchmark: {report.generated}.",
        "",
        "| kind | query | calls | p50 ms | p95 ms | slowest ms | rows | target | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for each in report.measured:
        target = f"p95 ≤ {each.target_ms:,.0f} ms"
        lines.append(
            f"| {each.kind} | {each.name} | {len(each.milliseconds)}"
            f" | {each.quantile(0.5):.1f} | {each.quantile(0.95):.1f}"
            f" | {max(each.milliseconds):.1f} | {each.rows or ''} | {target}"
            f" | {'met' if each.met else 'not met'} |"
        )
    lines += ["", f"EXPLAIN (ANALYZE, BUFFERS), first page of {report.plan_of}:", "", "```"]
    lines += [report.plan, "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=runs_default, help="calls of each query")
    parser.add_argument("--pages", type=int, default=pages_default, help="pages by token")
    parser.add_argument("--sort-runs", type=int, default=sort_runs_default)
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--data-dir", type=Path, help="kept, and its business reused")
    arguments = parser.parse_args(argv)
    temporary = arguments.data_dir is None
    data_dir = arguments.data_dir or Path(tempfile.mkdtemp(prefix="purse-customer-list-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    report = Report()
    try:
        run(arguments, data_dir, report)
    except Exception as error:
        log(f"the benchmark broke: {error!r}; logs are in {data_dir}")
        return 1
    text = render(report)
    print(text, flush=True)
    if arguments.markdown is not None:
        arguments.markdown.parent.mkdir(parents=True, exist_ok=True)
        arguments.markdown.write_text(text + "\n")
    if temporary:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
