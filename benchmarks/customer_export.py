"""The customer export benchmark, end to end: `python -m benchmarks.customer_export` (or
`make bench-export`).

Contract. On 127.0.0.1 only, it starts PostgreSQL and Redis (the embedded ones under a
temporary directory, or those PURSE_DATABASE_URL / PURSE_REDIS_URL name), migrates, and
builds the data (`build`, the one part to replace by a larger generator): a business with
an administrator's API key and `--customers` memberships by COPY
(`benchmarks/load/memberships.py`), given with one UPDATE what sales would have left them
(names, one in a hundred beginning with `=`; sales count and sum; first and last visit),
the tables then vacuumed, analysed and checkpointed. It starts `python -m purse.cli serve`
as a child process and exports the whole list, `--rounds` times each way:

* *grpc* — AdminService.ExportCustomers, each piece read as it comes;
* *http* — `POST /purse.admin.v1.AdminService/ExportCustomers`, the text/csv body read
  as it comes;
* *grpc, slow reader* — once: the first `slow_pieces` pieces read one every
  `slow_piece_seconds`, the rest as they come. Without backpressure the server would
  hold what PostgreSQL writes meanwhile (most of the file); with it, it holds a few
  pieces.

For each way: the median export's wall time from the call to its last byte, rows/s over
that time, the CPU the server and PostgreSQL spent per 100,000 rows, and the server's RSS
(its process tree) sampled while the way ran: the highest sample against the RSS just
before. The targets: at least `rows_per_second_target` rows/s, and the RSS within
`rss_growth_bytes_max` of where it started. Exit status 0 when it ran, 1 when it broke.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from benchmarks.load import memberships
from benchmarks.load.run import ChildServer, PeakMemory, cpu_seconds, log, rss_bytes
from benchmarks.real_server import run_in_a_folder, served

customers_default = 200_000
rounds_default = 3
rows_per_second_target = 50_000
rss_growth_bytes_max = 4 * 1024 * 1024
slow_pieces = 100
slow_piece_seconds = 0.02
phone_prefix = "+38097"
export_path = "/purse.admin.v1.AdminService/ExportCustomers"
export_seconds_max = 600.0
_megabyte = 1024 * 1024

# What the sale path would have left: a name (one in a hundred a formula to guard), a
# visit or twenty, their sum.
_as_if_they_bought = """
UPDATE memberships
   SET given_name = CASE WHEN customer_id % 100 = 0 THEN '=1+1' ELSE 'Olena' END,
       family_name = 'Customer ' || customer_id,
       sales_count = customer_id % 20,
       sales_sum_minor_units = (customer_id % 20) * 12345,
       first_visit_at = CASE WHEN customer_id % 20 > 0
                             THEN now() - (customer_id % 400) * interval '1 day' END,
       last_visit_at = CASE WHEN customer_id % 20 > 0
                            THEN now() - (customer_id % 40) * interval '1 day' END
 WHERE business_id = $1
"""


@dataclass
class Way:
    name: str
    seconds: list[float] = field(default_factory=list)
    rows: int = 0
    file_bytes: int = 0
    cpu_server_seconds: float = 0.0
    cpu_database_seconds: float = 0.0
    rss_before_bytes: int = 0
    rss_peak_bytes: int = 0


async def build(database_url: str, customers: int) -> str:
    """The business, its administrator's API key (returned) and its customers."""
    import asyncpg

    from purse.domain import credentials
    from purse.store.postgres import database
    from purse.store.postgres.provisioning import Provisioning

    pool = await database.create_pool(database_url, 1, 2, 60_000, 10.0)
    try:
        provisioning = Provisioning(pool)
        business_id = await provisioning.business("Export bench", "UAH", 2)
        await provisioning.program(business_id, "Export bench club")
        key = credentials.new_api_key()
        await provisioning.admin_api_key(business_id, credentials.api_key_digest(key), "bench")
    finally:
        await pool.close()
    # A connection of its own: no statement timeout for a COPY of many rows.
    connection = await asyncpg.connect(database_url)
    try:
        phones = [f"{phone_prefix}{index:07d}" for index in range(customers)]
        built = await memberships.copy_memberships(connection, business_id, phones)
        await connection.execute(_as_if_they_bought, business_id)
        await memberships.settle(connection)
    finally:
        await connection.close()
    log(f"built {customers:,} memberships by COPY in {built.seconds:.1f} s")
    return key


async def over_grpc(target: str, key: str, slow: bool = False) -> tuple[int, int]:
    """Reads one export; the rows it held, and its size."""
    from purse.admin.v1 import admin_service_pb2 as pb
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub

    lines = size = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = AdminServiceStub(channel)
        call = stub.ExportCustomers(
            pb.ExportCustomersRequest(), metadata=(("authorization", f"Bearer {key}"),)
        )
        pieces = 0
        async for piece in call:
            lines += piece.csv.count(b"\n")
            size += len(piece.csv)
            pieces += 1
            if slow and pieces <= slow_pieces:
                await asyncio.sleep(slow_piece_seconds)
    return lines - 1, size  # less the header


async def over_http(http_port: int, key: str) -> tuple[int, int]:
    """Downloads one export; the rows it held, and its size."""
    lines = size = 0
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with (
        httpx.AsyncClient(timeout=export_seconds_max) as client,
        client.stream(
            "POST", f"http://127.0.0.1:{http_port}{export_path}", json={}, headers=headers
        ) as answer,
    ):
        answer.raise_for_status()
        async for chunk in answer.aiter_raw():
            lines += chunk.count(b"\n")
            size += len(chunk)
    return lines - 1, size


def measure(
    name: str,
    export: Callable[[], Coroutine[Any, Any, tuple[int, int]]],
    rounds: int,
    server: ChildServer,
    databases: list[int],
) -> Way:
    way = Way(name, rss_before_bytes=rss_bytes(server.pid))
    memory = PeakMemory()
    memory.watch("purse", server.pid)
    memory.start()
    server_before, database_before = cpu_seconds([server.pid]), cpu_seconds(databases)
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            way.rows, way.file_bytes = asyncio.run(export())
            way.seconds.append(time.perf_counter() - started)
    finally:
        memory.stop()
    way.cpu_server_seconds = cpu_seconds([server.pid]) - server_before
    way.cpu_database_seconds = cpu_seconds(databases) - database_before
    way.rss_peak_bytes = max(memory.peaks.get("purse", 0), rss_bytes(server.pid))
    log(f"{name}: {way.rows:,} rows, {', '.join(f'{s:.2f} s' for s in way.seconds)}")
    return way


def report(ways: list[Way]) -> str:
    lines = [
        f"ExportCustomers of {ways[0].rows:,} memberships ({ways[0].file_bytes / _megabyte:.1f} MB"
        " of CSV), median of each way's exports",
        "| way | median s | rows/s | server CPU s per 100,000 rows"
        " | PostgreSQL CPU s per 100,000 rows | server RSS before → peak MB |",
        "|---|---|---|---|---|---|",
    ]
    met_speed = met_memory = True
    for way in ways:
        median = statistics.median(way.seconds)
        hundreds = way.rows * len(way.seconds) / 100_000
        rate = way.rows / median
        growth = way.rss_peak_bytes - way.rss_before_bytes
        if way.name != "grpc, slow reader":
            met_speed = met_speed and rate >= rows_per_second_target
        met_memory = met_memory and growth <= rss_growth_bytes_max
        lines.append(
            f"| {way.name} | {median:.2f} | {rate:,.0f}"
            f" | {way.cpu_server_seconds / hundreds:.2f}"
            f" | {way.cpu_database_seconds / hundreds:.2f}"
            f" | {way.rss_before_bytes / _megabyte:.1f} → {way.rss_peak_bytes / _megabyte:.1f} |"
        )
    lines.append(
        f"target ≥ {rows_per_second_target:,} rows/s: {'met' if met_speed else 'not met'};"
        f" RSS within {rss_growth_bytes_max // _megabyte} MB of its start:"
        f" {'met' if met_memory else 'not met'}"
    )
    return "\n".join(lines)


def run(arguments: argparse.Namespace, data_dir: Path) -> str:
    def prepare(database_url: str) -> str:
        return asyncio.run(build(database_url, arguments.customers))

    with served(data_dir, prepare) as (purse, key):
        rounds, server, databases = arguments.rounds, purse.server, purse.databases
        ways = [
            measure("grpc", lambda: over_grpc(purse.target, key), rounds, server, databases),
            measure("http", lambda: over_http(purse.http_port, key), rounds, server, databases),
            measure(
                "grpc, slow reader",
                lambda: over_grpc(purse.target, key, slow=True),
                1,
                server,
                databases,
            ),
        ]
        return report(ways)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=customers_default)
    parser.add_argument("--rounds", type=int, default=rounds_default)
    return run_in_a_folder(run, parser.parse_args(argv), "purse-export-")


if __name__ == "__main__":
    raise SystemExit(main())
