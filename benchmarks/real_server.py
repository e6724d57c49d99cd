"""What the benchmarks against a real server share (the price list, the customer export,
the bulk credit).

Contract. `served(data_dir, prepare)` starts PostgreSQL and Redis on 127.0.0.1 (the
embedded ones under `data_dir`, or those PURSE_DATABASE_URL / PURSE_REDIS_URL name),
migrates, calls `prepare(database_url)` (the benchmark's data, before the server reads
any), starts `python -m purse.cli serve` as a child process on free ports, and yields the
`Served` server with what `prepare` returned; it stops both afterwards, however it ends.
`run_in_a_folder(run, arguments, prefix)` runs `run` in a temporary directory and prints
its report: exit status 0 when it ran, 1 (with one line saying why) when it broke.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks.load.run import (
    ChildServer,
    _health_serving,
    log,
    postgres_pid,
    purse_server,
    redis_pid,
)

Prepared = TypeVar("Prepared")


@dataclass(frozen=True)
class Served:
    """`purse serve` running: its gRPC target and HTTP port, and the PostgreSQL and Redis
    processes this run started (for their CPU; None when it uses servers of its own)."""

    server: ChildServer
    target: str
    http_port: int
    postgres_pid: int | None
    redis_pid: int | None

    @property
    def databases(self) -> list[int]:
        return [pid for pid in (self.postgres_pid, self.redis_pid) if pid]


@contextmanager
def served(data_dir: Path, prepare: Callable[[str], Prepared]) -> Iterator[tuple[Served, Prepared]]:
    from purse.bootstrap import Infrastructure
    from purse.config import load_settings
    from purse.store.embedded import free_port
    from purse.store.postgres import database

    infrastructure = Infrastructure(load_settings(environment=None, data_dir=data_dir))
    server: ChildServer | None = None
    try:
        settings = infrastructure.start()
        asyncio.run(database.migrate(settings.database_url))
        prepared = prepare(settings.database_url)
        port, http_port = free_port(), free_port()
        server = purse_server(settings, data_dir, port, http_port)
        target = f"127.0.0.1:{port}"
        server.start(lambda: _health_serving(target))
        pids = postgres_pid(infrastructure), redis_pid(infrastructure)
        yield Served(server, target, http_port, *pids), prepared
    finally:
        if server is not None:
            server.stop()
        infrastructure.stop()


def run_in_a_folder(
    run: Callable[[argparse.Namespace, Path], str], arguments: argparse.Namespace, prefix: str
) -> int:
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        try:
            print(run(arguments, Path(folder)), flush=True)
        except Exception as error:
            log(f"the benchmark broke: {error!r}")
            return 1
    return 0
