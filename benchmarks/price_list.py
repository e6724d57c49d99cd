"""The price list benchmark, end to end: `python -m benchmarks.price_list` (or
`make bench-price-list`).

Contract. On 127.0.0.1 only, it starts PostgreSQL and Redis (the embedded ones under a
temporary directory, or those PURSE_DATABASE_URL / PURSE_REDIS_URL name), migrates,
creates a business with an administrator's API key and one goods category, starts
`python -m purse.cli serve` as a child process, then sends AdminService.UpsertGoods over
gRPC `--rounds` times in each of three ways, `--goods` products a call:

* *create* — every product new (a new product code prefix each round);
* *update* — the same products, every price changed (each product's version grows);
* *unchanged* — the same list again: nothing written, nothing audited.

For each way it prints the median call's wall time, goods/s (goods over that time, from
the client's send to its answer: protobuf both ways, validation, the three statements and
the commit) and the CPU the server and PostgreSQL spent per 1,000 goods. The target is
10,000 goods/s for *create* and *update*. Exit status 0 when it ran, 1 when it broke.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from benchmarks.load.run import cpu_seconds, log
from benchmarks.real_server import run_in_a_folder, served

goods_default = 10_000
rounds_default = 5
goods_per_second_target = 10_000
call_seconds_max = 60.0
category_code = "grocery"


@dataclass
class Way:
    name: str
    seconds: list[float]
    cpu_server_seconds: float = 0.0
    cpu_database_seconds: float = 0.0


async def provision(database_url: str) -> str:
    """A business, an administrator's API key for it, and the goods category."""
    from purse.domain import credentials
    from purse.store.postgres import database
    from purse.store.postgres.provisioning import Provisioning

    pool = await database.create_pool(database_url, 1, 2, 60_000, 10.0)
    try:
        provisioning = Provisioning(pool)
        business_id = await provisioning.business("Price list bench", "UAH", 2)
        key = credentials.new_api_key()
        await provisioning.admin_api_key(business_id, credentials.api_key_digest(key), "bench")
        await provisioning.goods_category(business_id, category_code, "Grocery")
    finally:
        await pool.close()
    return key


def price_list(prefix: str, count: int, price_base: int) -> Any:
    from purse.admin.v1 import catalogue_pb2 as pb

    return pb.UpsertGoodsRequest(
        goods=[
            pb.Goods(
                product_code=f"{prefix}-{index:06d}",
                title=f"Product number {index}, 1 kg",
                price_minor_units=price_base + index,
                goods_category_code=category_code,
            )
            for index in range(count)
        ]
    )


async def send(target: str, key: str, requests: list[tuple[str, Any]]) -> list[float]:
    """Each request in turn; the wall time of each call."""
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub

    metadata = (("authorization", f"Bearer {key}"),)
    timings = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = AdminServiceStub(channel)
        for _, request in requests:
            started = time.perf_counter()
            await stub.UpsertGoods(request, metadata=metadata, timeout=call_seconds_max)
            timings.append(time.perf_counter() - started)
    return timings


def measure(
    name: str, requests: list[Any], target: str, key: str, pids: tuple[int, list[int]]
) -> Way:
    server, databases = pids
    server_before, database_before = cpu_seconds([server]), cpu_seconds(databases)
    seconds = asyncio.run(send(target, key, [(name, request) for request in requests]))
    way = Way(name, seconds)
    way.cpu_server_seconds = cpu_seconds([server]) - server_before
    way.cpu_database_seconds = cpu_seconds(databases) - database_before
    return way


def report(ways: list[Way], goods: int) -> str:
    lines = [
        f"UpsertGoods, {goods:,} goods per call, median of {len(ways[0].seconds)} calls",
        "| way | median s | goods/s | server CPU ms per 1,000 goods"
        " | PostgreSQL CPU ms per 1,000 goods |",
        "|---|---|---|---|---|",
    ]
    for way in ways:
        median = statistics.median(way.seconds)
        thousands = goods * len(way.seconds) / 1_000
        lines.append(
            f"| {way.name} | {median:.3f} | {goods / median:,.0f}"
            f" | {1_000 * way.cpu_server_seconds / thousands:.1f}"
            f" | {1_000 * way.cpu_database_seconds / thousands:.1f} |"
        )
    met = all(goods / statistics.median(way.seconds) >= goods_per_second_target for way in ways)
    lines.append(f"target ≥ {goods_per_second_target:,} goods/s: {'met' if met else 'not met'}")
    return "\n".join(lines)


def run(arguments: argparse.Namespace, data_dir: Path) -> str:
    with served(data_dir, lambda url: asyncio.run(provision(url))) as (purse, key):
        pids = (purse.server.pid, purse.databases)
        count, rounds = arguments.goods, arguments.rounds
        log(f"sending {rounds} × 3 calls of {count:,} goods to {purse.target}")
        created = [price_list(f"R{round_}", count, 100) for round_ in range(rounds)]
        changed = [price_list(f"R{round_}", count, 200) for round_ in range(rounds)]
        ways = [
            measure("create", created, purse.target, key, pids),
            measure("update", changed, purse.target, key, pids),
            measure("unchanged", changed, purse.target, key, pids),
        ]
        return report(ways, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--goods", type=int, default=goods_default)
    parser.add_argument("--rounds", type=int, default=rounds_default)
    return run_in_a_folder(run, parser.parse_args(argv), "purse-price-list-")


if __name__ == "__main__":
    raise SystemExit(main())
