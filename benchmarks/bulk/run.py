"""The bulk credit benchmark, end to end: `python -m benchmarks.bulk.run` (or
`make bench-bulk`).

Contract. On 127.0.0.1 only, in one run on one machine, it

1. starts PostgreSQL and Redis and `python -m purse.cli serve` as the other benchmarks
   against a real server do (`benchmarks.real_server`: the embedded servers under a
   temporary directory, or those PURSE_DATABASE_URL / PURSE_REDIS_URL name), founds the
   demo business through the server's API as the load benchmark does, enrols
   `--customers` customers in it for the tills, and builds `--bulk-customers` more
   memberships in it by COPY (`benchmarks.load.memberships`);
2. credits the memberships built by COPY (selected by a filter on the customer id,
   exactly them) 50 special points valid 14 days as a bulk action with nothing else
   running: dry run, start, GetOperation polled to the end; customers/s from the start
   call to the end seen and from the database's started_at to finished_at; the
   server's, PostgreSQL's and Redis's CPU per customer. This first credit writes into
   tables that never held special points, as a new installation's would;
3. settles the tables it wrote (VACUUM (ANALYZE) of `credited_tables`), as autovacuum
   would have within a minute;
4. measures the sales alone: ProcessCheck's closed-loop throughput for `--phase-seconds`
   (unless `--sales-rate` gives the rate), then unary ProcessCheck at a fixed arrival
   rate of `--latency-rate-fraction` of it for `--sales-seconds`: p50, p95, p99, p99.9;
5. credits the same memberships again alone (a new operation), measured as the first,
   and with pg_stat_statements (embedded PostgreSQL with
   PURSE_EMBEDDED_POSTGRES_STATEMENT_STATISTICS=true) its costliest statements per
   customer;
6. credits them a third time, started as the same sales load begins measuring; the
   sales phase ends when the credit does (at `--sales-seconds` at the latest), so that
   every sale measured ran while it did: the sales' percentiles during the credit, the
   credit's customers/s while the sales ran and to its end;
7. checks each operation in the database: succeeded, done == total, and each member
   exactly one transaction and one ledger entry (50 points, with an expiry);
8. prints the tables, the targets (bulk ≥ 10,000 customers/s while the sales run; their
   p99 then ≤ 2 × alone; durable) met or not, and what else loaded the machine during
   each phase; `--markdown PATH` writes them as Markdown too.

A CHECKPOINT precedes every measured phase, so that none pays for the one before's
writes and each starts alike. Exit status: 0 when it ran (whatever the figures), 1 when
something broke, 130 when stopped by a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from benchmarks.bulk import operation
from benchmarks.bulk.operation import BulkClient, Durability, StatementCosts
from benchmarks.load import generator
from benchmarks.load.generator import Target
from benchmarks.load.run import (
    Bench,
    Observed,
    PeakMemory,
    Snapshot,
    _at_least,
    _at_most,
    _figure,
    _ratio,
    _target,
    add_generator_arguments,
    add_output_arguments,
    copy_members,
    log,
    machine,
    mebibyte,
    metrics_timeout_seconds,
    provision,
    run_generator,
    run_reported,
    table,
)
from benchmarks.real_server import Served, served
from purse.generation import copying

bulk_customers_default = 100_000
sales_seconds_default = 20.0
# The targets.
bulk_customers_per_second_min = 10_000.0
sales_p99_multiple_max = 2.0
# What a credit writes. Settled after the first one as autovacuum would within a minute:
# the tills' reads then plan with the points lots counted. A plan that PostgreSQL cached
# while points_lots was empty and never analysed reads every lot of the table for each
# customer (measured here: 7.8 s for 200 phones once it held 20,000 lots, against 3.6 ms
# planned afresh) until an ANALYZE; no business with a history has an empty one.
credited_tables = (
    "transactions", "ledger_entries", "points_lots", "pockets", "bulk_operation_members",
    "audit_log",
)  # fmt: skip
# The server's settings that shape a bulk action (and its processes), shown with the figures.
bulk_settings = (
    "workers", "bulk_chunk_customers_max", "batch_bulk_operations_max", "batch_operations_max",
    "batch_concurrent_max",
)  # fmt: skip


@dataclass
class SalesRow:
    """Unary ProcessCheck at a fixed arrival rate, alone or during the bulk credit."""

    phase: str
    rate_offered: float
    seconds: float
    calls_per_second: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    server_cpu_us: float | None = None  # per call; None when the bulk shared the server
    errors: str = "0"


@dataclass
class BulkRow:
    """One bulk credit: how fast, what it cost, and what the database holds after."""

    phase: str
    customers: int  # the dry run's count
    dry_run_seconds: float
    stored: Durability
    polled_seconds: float | None = None  # the start call sent → the end seen
    # Per customer, over the run; None when sales shared the server.
    server_cpu_us: float | None = None
    postgres_cpu_us: float | None = None
    redis_cpu_us: float | None = None
    # With sales: members done while the sales phase ran, and how long that was.
    done_with_sales: int | None = None
    with_sales_seconds: float | None = None

    @property
    def polled_per_second(self) -> float | None:
        return _rate(self.stored.total, self.polled_seconds)

    @property
    def stored_per_second(self) -> float | None:
        return _rate(self.stored.total, self.stored.seconds)

    @property
    def with_sales_per_second(self) -> float | None:
        return _rate(self.done_with_sales, self.with_sales_seconds)


def _rate(count: int | None, seconds: float | None) -> float | None:
    return None if count is None or not seconds else count / seconds


@dataclass
class Report:
    sales: list[SalesRow] = field(default_factory=list)
    bulk: list[BulkRow] = field(default_factory=list)
    throughput_calls_per_second: float | None = None  # ProcessCheck's closed loop
    statements: StatementCosts | None = None  # of the bulk alone
    # How the business was made, and what the selection held.
    setup: list[str] = field(default_factory=list)
    # Notes on each phase: the machine's load, what else ran, overlaps.
    notes: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    peak_rss_bytes: int | None = None  # the server's, children included

    def sales_row(self, phase: str) -> SalesRow | None:
        return next((row for row in self.sales if row.phase == phase), None)

    def bulk_row(self, phase: str) -> BulkRow | None:
        return next((row for row in self.bulk if row.phase == phase), None)


alone, during = "alone", "during the bulk credit"
with_sales = "with sales"
# The first credit of special points, into tables that never held any.
first = "first, into no lots"


# --- the machine ------------------------------------------------------------------------


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent not idle, all cores together."""
    times = psutil.cpu_times()
    return float(sum(value for name, value in times._asdict().items() if name not in _idle))


_idle = frozenset({"idle", "iowait", "guest", "guest_nice"})  # guests count in user/nice


@dataclass
class Watch:
    """The machine's busy CPU, and the server's, PostgreSQL's and Redis's, from a start."""

    observed: Observed
    label: str
    before: Snapshot = field(init=False)
    busy_before: float = field(init=False)

    def __post_init__(self) -> None:
        self.load_average = os.getloadavg()[0]
        self.busy_before = busy_cpu_seconds()
        self.before = self.observed.snapshot()

    def end(self, report: Report) -> Snapshot:
        """The snapshot after; a note of the cores each server took, and the rest of
        the machine."""
        after = self.observed.snapshot()
        seconds = max(after.taken - self.before.taken, 1e-9)
        cores = {
            name: ((getattr(after, field) or 0.0) - (getattr(self.before, field) or 0.0)) / seconds
            for name, field in (
                ("the server", "server_cpu_seconds"),
                ("PostgreSQL", "postgres_cpu_seconds"),
                ("Redis", "redis_cpu_seconds"),
            )
        }
        others = (busy_cpu_seconds() - self.busy_before) / seconds - sum(cores.values())
        shown = ", ".join(f"{name} {used:.2f}" for name, used in cores.items())
        report.notes.append(
            f"{self.label}: load average {self.load_average:.2f} before; cores: {shown}, "
            f"everything else {max(others, 0.0):.2f} (the benchmark's own processes "
            f"included), over {seconds:.1f} s"
        )
        return after


def per_customer(before: Snapshot, after: Snapshot, name: str, customers: int) -> float | None:
    first, last = getattr(before, name), getattr(after, name)
    if first is None or last is None or customers <= 0:
        return None
    return float((last - first) * 1e6 / customers)


async def _settle(database_url: str, tables: Sequence[str]) -> None:
    connection = await asyncpg.connect(database_url, timeout=metrics_timeout_seconds)
    try:
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await copying.settle(connection, tables)
    finally:
        await connection.close()


# --- the phases -------------------------------------------------------------------------


@dataclass
class Run:
    """What every phase needs."""

    bench: Bench
    client: BulkClient
    request: Any  # the dry run's request
    business_id: int
    report: Report

    def settle(self, tables: Sequence[str] = ()) -> None:
        """VACUUM (ANALYZE) these tables, then CHECKPOINT (as far as the role may)."""
        asyncio.run(_settle(self.bench.database_url, tables))


def sales_rate(run: Run) -> float:
    """--sales-rate, or --latency-rate-fraction of ProcessCheck's closed-loop throughput."""
    arguments = run.bench.arguments
    if arguments.sales_rate:
        return float(arguments.sales_rate)
    _, result = run_generator(run.bench, "process", "throughput")
    run.report.throughput_calls_per_second = result.calls_per_second
    return float(arguments.latency_rate_fraction * result.calls_per_second)


def sales_row(phase: str, rate: float, seconds: float, found: Any) -> SalesRow:
    row, result = found
    p50, p95, p99, p999 = (result.latency_ms(percentile) for percentile in (50, 95, 99, 99.9))
    return SalesRow(
        phase, rate, seconds, result.calls_per_second, p50, p95, p99, p999, errors=row.errors
    )


def sales_alone(run: Run, rate: float) -> None:
    seconds = run.bench.arguments.sales_seconds
    run.settle()
    watch = Watch(run.bench.observed["purse"], f"sales {alone}")
    found = run_generator(run.bench, "process", "latency", rate, seconds)
    watch.end(run.report)
    row = sales_row(alone, rate, seconds, found)
    row.server_cpu_us = found[0].server_cpu_us
    run.report.sales.append(row)


def credit_alone(run: Run, phase: str) -> BulkRow:
    """The credit with nothing else running, and its CPU per customer; the statements'
    costs when it is the credit `alone`."""
    database_url = run.bench.database_url
    run.settle()
    draft = run.client.dry_run(run.request)
    log(f"bulk credit / {phase}: {draft.customers:,} customers, dry run {draft.seconds:.1f} s")
    counting = phase == alone and asyncio.run(operation.reset_statement_costs(database_url))
    watch = Watch(run.bench.observed["purse"], f"bulk credit {phase}")
    watcher = run.client.start_watched(draft, f"bulk credit / {phase}")
    watcher.wait()
    after = watch.end(run.report)
    if counting:
        run.report.statements = asyncio.run(operation.statement_costs(database_url))
    row = BulkRow(phase, draft.customers, draft.seconds, stored(run, draft))
    row.polled_seconds = watcher.finished_seconds()
    total = row.stored.total
    row.server_cpu_us = per_customer(watch.before, after, "server_cpu_seconds", total)
    row.postgres_cpu_us = per_customer(watch.before, after, "postgres_cpu_seconds", total)
    row.redis_cpu_us = per_customer(watch.before, after, "redis_cpu_seconds", total)
    run.report.bulk.append(row)
    return row


def stored(run: Run, draft: operation.Draft) -> Durability:
    """The operation as the database holds it after its end."""
    return asyncio.run(
        operation.durability(run.bench.database_url, run.business_id, draft.operation_id)
    )


def credit_with_sales(run: Run, rate: float) -> None:
    """The credit again, started as the sales phase begins measuring; the sales phase
    ends when the credit does (at --sales-seconds at the latest), so that every sale
    measured ran while it did."""
    seconds = run.bench.arguments.sales_seconds
    run.settle()
    draft = run.client.dry_run(run.request)
    log(f"bulk credit / {with_sales}: {draft.customers:,} customers, dry run {draft.seconds:.1f} s")
    watchers: list[operation.Watcher] = []
    ended = generator.stop_event()

    def start() -> None:
        label = f"bulk credit / {with_sales}"
        watchers.append(run.client.start_watched(draft, label, on_end=ended.set))

    watch = Watch(run.bench.observed["purse"], f"sales {during}")
    found = run_generator(
        run.bench, "process", "latency", rate, seconds, on_start=start, stop=ended
    )
    watch.end(run.report)
    watcher = watchers[0]
    watcher.wait()
    finished = watcher.finished_seconds()
    # The part of the credit that ran with the sales: all of it, unless the sales phase
    # ended first.
    overlap = min(seconds, finished or seconds)
    run.report.sales.append(sales_row(during, rate, overlap, found))
    row = BulkRow(with_sales, draft.customers, draft.seconds, stored(run, draft))
    row.polled_seconds = finished
    row.with_sales_seconds = overlap
    row.done_with_sales = watcher.done_by(watcher.started + overlap)
    if finished is not None and finished > seconds:
        run.report.notes.append(
            f"bulk credit {with_sales}: it ran {finished - seconds:.1f} s more after the sales "
            f"phase ended (--sales-seconds {seconds:g})"
        )
    run.report.bulk.append(row)


def measure(run: Run) -> None:
    """The phases in order: a first credit into tables that have never held special
    points, those tables settled, the sales alone, the credit alone, the credit with
    sales."""
    credit_alone(run, first)
    started = time.perf_counter()
    run.settle(credited_tables)
    run.report.notes.append(
        f"after the first credit: VACUUM (ANALYZE) of {', '.join(credited_tables)} and a "
        f"CHECKPOINT, {time.perf_counter() - started:.1f} s"
    )
    rate = sales_rate(run)
    sales_alone(run, rate)
    credit_alone(run, alone)
    credit_with_sales(run, rate)


# --- the setup --------------------------------------------------------------------------


async def _memberships(database_url: str, business_id: int) -> int:
    connection = await asyncpg.connect(database_url, timeout=metrics_timeout_seconds)
    try:
        found = "SELECT count(*) FROM memberships WHERE business_id = $1"
        return int(await connection.fetchval(found, business_id))
    finally:
        await connection.close()


def server_settings() -> dict[str, str]:
    """The bulk settings the server runs with: the environment's, or the defaults."""
    from purse.config import load_settings

    settings = load_settings(
        environment={key: value for key, value in os.environ.items() if key.startswith("PURSE_")}
    )
    return {f"PURSE_{name.upper()}": str(getattr(settings, name)) for name in bulk_settings}


def provisioned_run(
    arguments: argparse.Namespace,
    data_dir: Path,
    purse: Served,
    database_url: str,
    memory: PeakMemory,
    report: Report,
) -> Run:
    """The demo business, its tills' customers, the memberships to credit, the back
    office terminal, and what the phases need."""
    address = purse.target
    log(f"provisioning the demo business and {arguments.customers:,} customers")
    provisioned = asyncio.run(provision(database_url, address, arguments.customers))
    log(f"building {arguments.bulk_customers:,} memberships by COPY")
    copied = asyncio.run(
        copy_members(database_url, provisioned.business_id, arguments.bulk_customers)
    )
    held = asyncio.run(_memberships(database_url, provisioned.business_id))
    ids = copied.customer_ids
    report.setup = [
        f"the demo business holds {held:,} memberships: {arguments.customers:,} enrolled for "
        f"the tills, {len(ids):,} built by COPY in {copied.build_seconds:.1f} s (customer ids "
        f"{ids.start:,} to {ids.stop - 1:,}), {held - arguments.customers - len(ids):,} of "
        "its own (the demo customer); each credit selects `customer_id MORE_THAN "
        f"{ids.start - 1}` AND `LESS_THAN {ids.stop}`",
    ]
    report.machine = machine(provisioned.postgres_version)
    report.settings = server_settings()
    client = BulkClient(address, provisioned.administrator_api_key)
    observed = Observed(purse.server.pid, purse.http_port, purse.postgres_pid, purse.redis_pid)
    tills = Target(address, provisioned.api_key, provisioned.phones, provisioned.currency)
    bench = Bench(
        arguments, tills, Target(""), {"purse": observed}, memory, data_dir,
        generator.new_run_id(), database_url=database_url,
    )  # fmt: skip
    request = operation.credit_request(client.back_office_terminal(), ids)
    return Run(bench, client, request, provisioned.business_id, report)


def run_benchmark(arguments: argparse.Namespace, data_dir: Path, report: Report) -> None:
    """Everything, into `report`; whatever happens, stops what it started."""
    memory = PeakMemory()
    client: BulkClient | None = None
    # Nothing to prepare before the server starts: the demo business is founded through it.
    with served(data_dir, lambda database_url: database_url) as (purse, database_url):
        try:
            memory.watch("purse", purse.server.pid)
            memory.start()
            run = provisioned_run(arguments, data_dir, purse, database_url, memory, report)
            client = run.client
            measure(run)
        finally:
            if memory.is_alive():
                memory.stop()
                report.peak_rss_bytes = memory.peaks.get("purse")
            if client is not None:
                client.close()


# --- the report -------------------------------------------------------------------------

sales_columns = (
    "sales (ProcessCheck)", "offered calls/s", "calls/s", "p50 ms", "p95 ms", "p99 ms",
    "p99.9 ms", "server CPU µs/call", "errors",
)  # fmt: skip
bulk_columns = (
    "bulk credit", "customers", "dry run s", "customers/s start → end seen",
    "customers/s started_at → finished_at", "customers/s while sales ran",
    "server CPU µs/customer", "PG CPU µs/customer", "Redis CPU µs/customer",
    "done / total", "credited once",
)  # fmt: skip
statement_columns = (
    "statement",
    "calls/customer",
    "µs/customer",
    "rows/call",
    "WAL bytes/customer",
)


def _sales_cells(row: SalesRow) -> list[str]:
    return [
        row.phase, _figure(row.rate_offered, 1), _figure(row.calls_per_second, 1),
        *(_figure(value, 2) for value in (row.p50_ms, row.p95_ms, row.p99_ms, row.p999_ms)),
        _figure(row.server_cpu_us), row.errors,
    ]  # fmt: skip


def _bulk_cells(row: BulkRow) -> list[str]:
    stored = row.stored
    return [
        row.phase, f"{row.customers:,}", _figure(row.dry_run_seconds, 1),
        _figure(row.polled_per_second), _figure(row.stored_per_second),
        _figure(row.with_sales_per_second), _figure(row.server_cpu_us),
        _figure(row.postgres_cpu_us), _figure(row.redis_cpu_us),
        f"{stored.done:,} / {stored.total:,}", f"{stored.credited_once:,}",
    ]  # fmt: skip


def _statement_cells(costs: StatementCosts, customers: int) -> list[list[str]]:
    rows = [
        [
            f"`{cost.text}`" if cost.text else "—",
            _figure(cost.calls / customers, 3),
            _figure(cost.total_ms * 1000 / customers, 1),
            _figure(cost.rows / cost.calls if cost.calls else None, 1),
            _figure(cost.wal_bytes / customers),
        ]
        for cost in costs.statements
    ]
    total = _figure(costs.total_ms * 1000 / customers, 1)
    return [*rows, ["all statements", "", total, "", _figure(costs.wal_bytes / customers)]]


def _bulk_target(report: Report) -> str:
    row = report.bulk_row(with_sales)
    rate = row.with_sales_per_second if row else None
    figure = "—"
    if row is not None:
        figure = (
            f"{_figure(rate)} customers/s ({_figure(row.done_with_sales)} in "
            f"{_figure(row.with_sales_seconds, 1)} s of sales; to its end "
            f"{_figure(row.stored_per_second)} by the database's times)"
        )
    return _target(
        f"bulk credit ≥ {bulk_customers_per_second_min:,.0f} customers/s while the sales run",
        figure,
        _at_least(rate, bulk_customers_per_second_min),
    )


def _sales_target(report: Report) -> str:
    first, second = report.sales_row(alone), report.sales_row(during)
    before = first.p99_ms if first else None
    after = second.p99_ms if second else None
    multiple = _ratio(after, before)
    offered = f" at {_figure(first.rate_offered, 1)} calls/s" if first else ""
    return _target(
        f"sales p99 during the bulk credit ≤ {sales_p99_multiple_max:g} × alone",
        f"{_figure(multiple, 2)} × ({_figure(after, 2)} ms against {_figure(before, 2)} ms"
        f"{offered})",
        _at_most(multiple, sales_p99_multiple_max),
    )


def _durable_target(report: Report) -> str:
    figures = [
        f"{row.phase}: {row.stored.state}, done {row.stored.done:,} of {row.stored.total:,}, "
        f"{row.stored.credited_once:,} credited once, {row.stored.transactions:,} "
        f"transactions, {row.stored.ledger_entries:,} ledger entries"
        for row in report.bulk
    ]
    held = all(row.stored.holds for row in report.bulk) if report.bulk else None
    return _target(
        "durable, one transaction and one ledger entry per customer",
        "; ".join(figures),
        held,
    )


def targets(report: Report) -> list[str]:
    first = report.bulk_row(alone)
    rate = first.stored_per_second if first else None
    return [
        _bulk_target(report),
        _sales_target(report),
        _durable_target(report),
        f"(the bulk credit alone, no sales: {_figure(rate)} customers/s by the database's "
        f"times — {'at least' if (rate or 0) >= bulk_customers_per_second_min else 'under'} "
        f"{bulk_customers_per_second_min:,.0f})",
    ]


def _summary(report: Report) -> list[str]:
    lines = [*report.setup]
    if report.throughput_calls_per_second is not None:
        lines.append(
            f"ProcessCheck's closed-loop throughput {report.throughput_calls_per_second:,.1f} "
            "calls/s: the sales are offered the share --latency-rate-fraction of it"
        )
    lines += report.notes
    if report.peak_rss_bytes is not None:
        lines.append(f"server peak RSS: {report.peak_rss_bytes / mebibyte:,.0f} MiB")
    lines.append(", ".join(f"{name}={value}" for name, value in report.settings.items()))
    return [*lines, *(f"{name}: {value}" for name, value in report.machine.items())]


def render(report: Report, markdown: bool) -> str:
    lines = table(sales_columns, [_sales_cells(row) for row in report.sales], markdown)
    lines += ["", *table(bulk_columns, [_bulk_cells(row) for row in report.bulk], markdown)]
    first = report.bulk_row(alone)
    if report.statements is not None and first is not None and first.stored.total:
        cells = _statement_cells(report.statements, first.stored.total)
        lines += ["", "PostgreSQL's statements during the bulk credit alone:"]
        lines += table(statement_columns, cells, markdown)
    bullet = "- " if markdown else ""
    lines += ["", *(bullet + line for line in targets(report)), ""]
    lines += [bullet + line for line in _summary(report)]
    return "\n".join(lines) + "\n"


# --- the command ------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bulk.run",
        description="A bulk credit to 100,000 customers, alone and while sales run.",
    )
    add_generator_arguments(parser)
    add = parser.add_argument
    add("--bulk-customers", type=int, default=bulk_customers_default, help="built and credited")
    add("--sales-seconds", type=float, default=sales_seconds_default, help="the sales phases")
    add("--sales-rate", type=float, help="calls/s; default: a share of the throughput measured")
    add_output_arguments(parser)
    # run_generator reads these for the stream; this benchmark sends unary calls only.
    parser.set_defaults(stream_concurrency=1, checks_per_message=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    report = Report()
    return run_reported(
        arguments,
        lambda data_dir: run_benchmark(arguments, data_dir, report),
        lambda markdown: render(report, markdown),
        lambda: bool(report.sales or report.bulk),
    )


if __name__ == "__main__":
    sys.exit(main())
