"""The load benchmark, end to end: `python -m benchmarks.load.run` (or `make bench-load`,
`make bench-soak`).

Contract. On 127.0.0.1 only, in one run on one machine, it

1. starts PostgreSQL and Redis (the embedded ones under a temporary directory, or the
   servers PURSE_DATABASE_URL / PURSE_REDIS_URL name), migrates, and measures pgbench's
   built-in TPC-B-like transactions/s on that PostgreSQL (scratch database, dropped after);
2. starts `python -m purse.cli serve` (through `gc_recorder` when soaking) and the echo
   server (`benchmarks.load.echo_server`, Purse's own gRPC server with an empty method) as
   child processes, then founds the demo business through the server's API
   (`purse.demo.create_demo`) and enrols `--customers` customers in it;
3. for each workload asked for, probes one call (a workload the server refuses, such as
   UNIMPLEMENTED, is reported as skipped), measures its throughput (h2load for requests
   that may repeat, over HTTP/1.1 for `http-identify`; the generator's closed loop for
   those that must differ, and for every unary workload after h2load), then its
   latency at a fixed arrival rate of `--latency-rate-fraction` of that throughput (never
   above the generator's own ceiling, the empty call's closed-loop throughput);
   `process-stream-large` first founds a second demo business and builds
   `--large-customers` memberships in it by COPY (`memberships`), then measures the
   stream's throughput against it;
4. with `--soak-seconds`, then runs process-stream at `--latency-rate-fraction` of its
   throughput for that long, sampling the server's RSS every second;
5. samples both servers' RSS every 100 ms (children included) and reads the CPU time of
   the server, PostgreSQL and Redis and the Purse server's call counts by status code
   (its /metrics) around every phase;
6. prints progress once a second, then one table, each target of issues 11 and 12 met,
   not met or not measured, and the machine; `--markdown PATH` also writes them as
   Markdown.

Every phase has a duration and a deadline; the whole run with default settings takes
about 5 minutes on a 2-core machine. Exit status: 0 when it ran (whatever the figures),
2 when a tool is missing, 1 when something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import faulthandler
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.load import generator, memberships
from benchmarks.load.generator import LoadResult, LoadSpec, Target

# Defaults and limits, unit last.
phase_seconds_default = 10.0
warm_up_seconds_default = 2.0
latency_rate_fraction_default = 0.5
throughput_concurrency_default = 64
stream_concurrency_default = 8
checks_per_message_default = 100
# Enough that the checks in flight (8 streams x 100) never share a customer, as at real
# tills: two checks of one customer at once may be refused (a balance changed meanwhile).
customers_default = 10_000
h2load_clients_default = 4
h2load_streams_per_client_default = 32
h2load_threads = 1
tool_margin_seconds = 30.0
pgbench_scale_default = 10
pgbench_seconds_default = 10.0
pgbench_clients_default = 8
pgbench_jobs = 2
pgbench_init_seconds_max = 300.0
pgbench_database = "purse_pgbench"
server_start_seconds_max = 60.0
server_stop_seconds_max = 20.0
rss_sample_interval_seconds = 0.1
metrics_timeout_seconds = 5.0
probe_seconds_max = 30.0
# The large business: the stream again, against a business of a million memberships.
large_stream_workload = "process-stream-large"
large_customers_default = 1_000_000
# The large business's warm-up, at least. After the CHECKPOINT that ends its build, the
# first change to each page writes the whole page to the WAL: measured here (pg_stat_wal),
# 3,000-7,000 full-page writes a second, 40-70 MB of WAL against 8-10 MB without, over
# once 10,000-15,000 checks have touched the business all over (about 9 s). The warm-up
# keeps that burst, which the build forced, out of the figure; checkpoints that come by
# themselves during the phase (max_wal_size, checkpoint_timeout) are measured.
large_warm_up_seconds_min = 20.0
# Phones of the large business: the first of these prefixes that no phone starts with yet
# (a kept --data-dir may hold an earlier run's), then the index in 7 digits.
large_phone_prefixes = tuple(f"+38077{slot:02d}" for slot in range(100))
# The soak: process-stream at --latency-rate-fraction of its throughput, RSS each second.
soak_sample_interval_seconds = 1.0
gc_stats_file_name = "gc-stats.json"
# Targets from the issues (11: throughput and cost; 12: HTTP/JSON beside gRPC), each
# checked in `_targets`.
stream_pgbench_multiple_min = 1.5
process_ceiling_ratio_min = 0.35
process_p99_ms_max = 20.0
identify_ceiling_ratio_min = 0.5
http_grpc_ratio_min = 0.5
stream_server_cpu_us_max = 150.0
stream_postgres_cpu_us_max = 70.0
large_stream_deviation_max = 0.10
soak_rss_growth_max = 0.10

# The run's workloads, in their default order: the generator's, then the stream again
# against the large business.
WORKLOADS = (*generator.WORKLOADS, large_stream_workload)
large_help = "memberships of the large business (process-stream-large), built by COPY"

h2load_install_command = "apt-get install -y nghttp2-client"
h2load_workloads = frozenset({"empty", "identify", "http-identify", "calculate"})
customer_phone_prefix = "+38063"
mebibyte = 1024 * 1024


@dataclass
class Row:
    """One line of the result table."""

    workload: str
    mode: str
    per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    server_cpu_us: float | None = None
    postgres_cpu_us: float | None = None
    redis_cpu_us: float | None = None
    errors: str = ""
    ceiling_ratio: float | None = None
    note: str = ""


@dataclass(frozen=True)
class LargeBusiness:
    """The second business of `process-stream-large`, and what building it took."""

    customers: int
    build_seconds: float
    settle_seconds: float | None  # None: the role may not VACUUM or CHECKPOINT


@dataclass
class Soak:
    """The server's RSS once a second through a long run at a fixed rate."""

    seconds: float
    rate_per_second: float  # stream messages
    # (seconds since the soak began, RSS in bytes), the first one after the warm-up.
    samples: list[tuple[float, int]] = field(default_factory=list)
    # Garbage collections during the soak by generation (young first); None: not known.
    gc_collections: list[int] | None = None
    checks: int = 0

    @property
    def start_bytes(self) -> int:
        return self.samples[0][1]

    @property
    def end_bytes(self) -> int:
        return self.samples[-1][1]

    @property
    def max_bytes(self) -> int:
        return max(rss for _, rss in self.samples)

    @property
    def growth(self) -> float:
        """The highest sample above the first, as a fraction of the first."""
        return self.max_bytes / self.start_bytes - 1.0


def slope_per_second(samples: list[tuple[float, int]]) -> float:
    """The least-squares slope of (seconds, value) samples: value units per second."""
    if len(samples) < 2:
        return 0.0
    count = len(samples)
    mean_seconds = sum(seconds for seconds, _ in samples) / count
    mean_value = sum(value for _, value in samples) / count
    spread = sum((seconds - mean_seconds) ** 2 for seconds, _ in samples)
    if spread == 0:
        return 0.0
    covariance = sum((seconds - mean_seconds) * (value - mean_value) for seconds, value in samples)
    return covariance / spread


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    pgbench_tps: float | None = None
    pgbench_note: str = ""
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    customers: int = customers_default  # of the demo business
    large: LargeBusiness | None = None
    soak: Soak | None = None
    soak_note: str = ""

    def row(self, workload: str, mode: str) -> Row | None:
        found = [row for row in self.rows if row.workload == workload and row.mode == mode]
        return found[0] if found else None


def log(message: str) -> None:
    print(message, flush=True)


# --- processes: CPU time and peak memory -------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of these processes, their live descendants and reaped ones."""
    total = 0.0
    for pid in pids:
        for process in _tree(pid):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
    return total


def rss_bytes(pid: int) -> int:
    total = 0
    for process in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return total


class PeakMemory(threading.Thread):
    """Samples the RSS of process trees every `rss_sample_interval_seconds`; keeps peaks."""

    def __init__(self) -> None:
        super().__init__(name="peak-rss", daemon=True)
        self.watched: dict[str, int] = {}
        self.peaks: dict[str, int] = {}
        self.current: dict[str, int] = {}
        self._stop_event = threading.Event()

    def watch(self, name: str, pid: int) -> None:
        self.watched[name] = pid

    def run(self) -> None:
        while not self._stop_event.wait(rss_sample_interval_seconds):
            for name, pid in list(self.watched.items()):
                sample = rss_bytes(pid)
                self.current[name] = sample
                self.peaks[name] = max(self.peaks.get(name, 0), sample)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class ChildServer:
    """A server in a child process, its output in a log file, ready when `ready()` says."""

    def __init__(self, name: str, command: list[str], environment: dict[str, str], log_path: Path):
        self.name = name
        self.log_path = log_path
        self._command = command
        self._environment = environment
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready: Callable[[], bool]) -> None:
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                self._command, env=self._environment, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + server_start_seconds_max
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {server_start_seconds_max}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(server_stop_seconds_max)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(server_stop_seconds_max)


def _health_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=0.5
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def _echo_answers(target: str) -> bool:
    outcome = asyncio.run(generator.probe("empty", Target(target)))
    return outcome.code == "OK"


# --- the servers' own counts ------------------------------------------------------------


def server_calls(http_port: int) -> Counter[tuple[str, str]]:
    """purse_grpc_calls_total by (method, code) from a server's /metrics."""
    url = f"http://127.0.0.1:{http_port}/metrics"
    with urllib.request.urlopen(url, timeout=metrics_timeout_seconds) as answer:
        text = answer.read().decode()
    counts: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "purse_grpc_calls_total":
                counts[(sample.labels["method"], sample.labels["code"])] += int(sample.value)
    return counts


@dataclass
class Snapshot:
    taken: float
    server_cpu_seconds: float
    postgres_cpu_seconds: float | None
    redis_cpu_seconds: float | None
    calls: Counter[tuple[str, str]]


@dataclass
class Observed:
    """What to read around a phase: the server under test, the databases, its metrics."""

    server_pid: int
    http_port: int
    postgres_pid: int | None = None
    redis_pid: int | None = None

    def snapshot(self) -> Snapshot:
        return Snapshot(
            taken=time.monotonic(),
            server_cpu_seconds=cpu_seconds([self.server_pid]),
            postgres_cpu_seconds=cpu_seconds([self.postgres_pid]) if self.postgres_pid else None,
            redis_cpu_seconds=cpu_seconds([self.redis_pid]) if self.redis_pid else None,
            calls=server_calls(self.http_port),
        )


def _by_code(before: Snapshot, after: Snapshot, method: str) -> Counter[str]:
    codes: Counter[str] = Counter()
    for (called, code), count in after.calls.items():
        if called == method:
            delta = int(count - before.calls.get((called, code), 0))
            if delta:
                codes[code] = delta
    return codes


def _per(before: float | None, after: float | None, per: int) -> float | None:
    return None if before is None or after is None else (after - before) * 1e6 / per


def _cost(row: Row, before: Snapshot, after: Snapshot, per: int) -> None:
    """Fill the CPU microseconds per call (per check, for the stream) of the server,
    PostgreSQL and Redis."""
    if per <= 0:
        return
    row.server_cpu_us = _per(before.server_cpu_seconds, after.server_cpu_seconds, per)
    row.postgres_cpu_us = _per(before.postgres_cpu_seconds, after.postgres_cpu_seconds, per)
    row.redis_cpu_us = _per(before.redis_cpu_seconds, after.redis_cpu_seconds, per)


def _errors_text(errors: Counter[str]) -> str:
    shown = [(code, count) for code, count in errors.most_common() if code != "OK" and count]
    return ", ".join(f"{code} {count:,}" for code, count in shown) or "0"


class Progress:
    """Prints one line a second: the rate over the last second and the server's RSS."""

    def __init__(self, label: str, memory: PeakMemory, server: str, unit: str) -> None:
        self._label = label
        self._memory = memory
        self._server = server
        self._unit = unit
        self._last_seconds = 0.0
        self._last_items = 0

    def __call__(self, seconds: float, items: int, errors: int) -> None:
        raise_if_interrupted()
        interval = max(seconds - self._last_seconds, 1e-9)
        rate = (items - self._last_items) / interval
        self._last_seconds, self._last_items = seconds, items
        rss = self._memory.current.get(self._server, 0) / mebibyte
        log(
            f"  [{seconds:5.1f}s] {self._label:<30} {rate:>10,.0f} {self._unit}/s"
            f"  errors {errors:,}  {self._server} RSS {rss:,.0f} MiB"
        )


# --- h2load -----------------------------------------------------------------------------


@dataclass
class H2loadResult:
    requests_per_second: float
    succeeded: int
    failed: int
    errored: int
    timed_out: int
    statuses: dict[str, int]
    mean_ms: float | None


_h2load_finished = re.compile(r"finished in [\d.]+s, ([\d.]+) req/s")
_h2load_requests = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored, (\d+) timeout"
)
_h2load_statuses = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_h2load_request_time = re.compile(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)")
_duration_units_ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _milliseconds(text: str) -> float | None:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(found.group(1)) * _duration_units_ms[found.group(2)] if found else None


def parse_h2load(output: str) -> H2loadResult:
    """The figures of h2load's summary; ValueError when there is none (it failed)."""
    finished = _h2load_finished.search(output)
    requests = _h2load_requests.search(output)
    statuses = _h2load_statuses.search(output)
    if not (finished and requests and statuses):
        raise ValueError(f"h2load printed no summary:\n{output[-2000:]}")
    request_time = _h2load_request_time.search(output)
    _, _, _, succeeded, failed, errored, timed_out = (int(value) for value in requests.groups())
    return H2loadResult(
        requests_per_second=float(finished.group(1)),
        succeeded=succeeded,
        failed=failed,
        errored=errored,
        timed_out=timed_out,
        statuses=dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, statuses.groups()), strict=True)),
        mean_ms=_milliseconds(request_time.group(3)) if request_time else None,
    )


def grpc_frame(message: bytes) -> bytes:
    """The gRPC length-prefixed message: not compressed (0), 4-byte big-endian length."""
    not_compressed = b"\x00"
    return not_compressed + len(message).to_bytes(4, "big") + message


def h2load_command(
    arguments: argparse.Namespace, target: Target, method: str, body_path: Path, http1: bool
) -> list[str]:
    """h2load sending the body at `body_path` again and again: gRPC on HTTP/2 streams, or,
    with `http1`, JSON on HTTP/1.1 with as many connections as the streams (no pipelining,
    which clients do not use), so that as many calls are in flight either way."""
    command = [
        "h2load",
        # h2load takes whole numbers with a unit ("500ms"), not fractions of a second.
        f"--duration={round(arguments.phase_seconds * 1000)}ms",
        f"--warm-up-time={round(arguments.warm_up_seconds * 1000)}ms",
        f"--threads={h2load_threads}",
        f"--data={body_path}",
    ]
    if http1:
        command += [
            f"--clients={arguments.h2load_clients * arguments.h2load_streams}",
            "--max-concurrent-streams=1",
            "--h1",
            "--header=content-type: application/json",
        ]
    else:
        command += [
            f"--clients={arguments.h2load_clients}",
            f"--max-concurrent-streams={arguments.h2load_streams}",
            "--header=content-type: application/grpc",
            "--header=te: trailers",
        ]
    if target.api_key:
        command.append(f"--header=authorization: Bearer {target.api_key}")
    address = target.http_address if http1 else target.address
    return [*command, f"http://{address}{method}"]


# --- pgbench ----------------------------------------------------------------------------


def _libpq_environment(database_url: str, database_name: str) -> dict[str, str]:
    parts = urlsplit(database_url)
    environment = {
        **os.environ,
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or "postgres"),
        "PGDATABASE": database_name,
        "PGAPPNAME": "purse-bench",
    }
    if parts.password:
        environment["PGPASSWORD"] = unquote(parts.password)
    return environment


async def _scratch_database(database_url: str, create: bool) -> None:
    import asyncpg

    connection = await asyncpg.connect(database_url, timeout=metrics_timeout_seconds)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {pgbench_database}")
        if create:
            await connection.execute(f"CREATE DATABASE {pgbench_database}")
    finally:
        await connection.close()


def pgbench_baseline(arguments: argparse.Namespace, database_url: str) -> float:
    """tps of pgbench's built-in TPC-B-like script on a scratch database (dropped after)."""
    from purse.store.embedded import EmbeddedPostgres

    pgbench = str(EmbeddedPostgres(Path(tempfile.gettempdir())).binaries / "pgbench")
    environment = _libpq_environment(database_url, pgbench_database)
    asyncio.run(_scratch_database(database_url, create=True))
    try:
        log(f"pgbench: initialising scale {arguments.pgbench_scale}")
        subprocess.run(
            [pgbench, "--initialize", f"--scale={arguments.pgbench_scale}", "--quiet"],
            env=environment,
            check=True,
            capture_output=True,
            timeout=pgbench_init_seconds_max,
        )
        command = [
            pgbench,
            "--builtin=tpcb-like",
            f"--client={arguments.pgbench_clients}",
            f"--jobs={pgbench_jobs}",
            f"--time={round(arguments.pgbench_seconds)}",
            "--protocol=prepared",
            "--progress=1",
        ]
        log(f"pgbench: {' '.join(command[1:])}")
        output = _run_echoing(command, environment, arguments.pgbench_seconds)
    finally:
        asyncio.run(_scratch_database(database_url, create=False))
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if not found:
        raise RuntimeError(f"pgbench printed no tps:\n{output[-2000:]}")
    return float(found.group(1))


def _run_echoing(command: list[str], environment: dict[str, str], seconds: float) -> str:
    """Run, echo its `progress:` lines as they come, return everything it printed."""
    lines: list[str] = []
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    timer = threading.Timer(seconds + tool_margin_seconds, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("progress:"):
                log(f"  {line.rstrip()}")
        process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:  # interrupted: the tool must not outlive the run
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}):\n{''.join(lines)[-2000:]}")
    return "".join(lines)


# --- phases -----------------------------------------------------------------------------


@dataclass
class Bench:
    """Everything a phase needs: the flags, the two servers, what to observe, the report."""

    arguments: argparse.Namespace
    purse: Target
    echo: Target
    observed: dict[str, Observed]
    memory: PeakMemory
    data_dir: Path
    run_id: str
    report: Report = field(default_factory=Report)
    database_url: str = ""
    # The business of a million memberships, once `process-stream-large` has built it.
    large: Target | None = None
    generator_ceiling_per_second: float | None = None
    # Closed-loop calls (stream messages) per second, by workload.
    throughput_calls_per_second: dict[str, float] = field(default_factory=dict)
    phases: int = 0

    def target(self, workload: str) -> Target:
        if workload == large_stream_workload:
            assert self.large is not None, "the large business is built before its phases"
            return self.large
        return self.echo if workload == "empty" else self.purse

    def server(self, workload: str) -> str:
        return "echo" if workload == "empty" else "purse"

    def next_run_id(self) -> str:
        self.phases += 1
        return f"{self.run_id}{self.phases}"


def run_h2load(bench: Bench, workload: str) -> Row:
    """Throughput with h2load: the same request again and again (a gRPC frame, or the
    JSON body for an HTTP/JSON workload)."""
    target = bench.target(workload)
    method = generator.WORKLOADS[workload]
    http1 = workload in generator.HTTP_WORKLOADS
    message = generator.Requests(workload, target, bench.next_run_id(), 0, 1, 1).message(0)
    body_path = bench.data_dir / f"{workload}.{'json' if http1 else 'grpc'}"
    body_path.write_bytes(message if http1 else grpc_frame(message))
    command = h2load_command(bench.arguments, target, method, body_path, http1)
    observed = bench.observed[bench.server(workload)]
    log(f"{workload} / h2load: {' '.join(command[1:-4])} ...")
    before = observed.snapshot()
    watcher = _ServerRateWatcher(bench, workload, observed, method)
    watcher.start()
    try:
        seconds = bench.arguments.phase_seconds + bench.arguments.warm_up_seconds
        output = _run_echoing(command, dict(os.environ), seconds)
    finally:
        watcher.stop()
    after = observed.snapshot()
    parsed = parse_h2load(output)
    codes = _by_code(before, after, method)
    if http1:
        ok_share, errors, notes = _h2load_http1_outcome(bench.arguments, parsed)
    else:
        ok_share, errors, notes = _h2load_grpc_outcome(bench.arguments, parsed, codes)
    row = Row(workload, "h2load", per_second=parsed.requests_per_second * ok_share)
    row.errors = _errors_text(errors)
    if parsed.mean_ms is not None:
        notes.insert(0, f"mean {parsed.mean_ms:.2f} ms")
    row.note = ", ".join(notes)
    _cost(row, before, after, sum(codes.values()))
    return row


def _h2load_grpc_outcome(
    arguments: argparse.Namespace, parsed: H2loadResult, codes: Counter[str]
) -> tuple[float, Counter[str], list[str]]:
    """The share of h2load's gRPC calls that were OK, the errors and the notes.

    h2load sees HTTP only: a gRPC error is a 200 with grpc-status in the trailers, so the
    server's own counts (`codes`, warm-up included) say which answers were errors."""
    answered = sum(codes.values())
    ok_share = codes.get("OK", 0) / answered if answered else 0.0
    errors = Counter({code: count for code, count in codes.items() if code != "OK"})
    # When its duration ends h2load resets the streams still open; the server counts a
    # call cancelled that way as UNKNOWN. Up to one per stream is that, not a failure.
    in_flight_max = arguments.h2load_clients * arguments.h2load_streams
    reset_at_end = errors.pop("UNKNOWN", 0) if errors.get("UNKNOWN", 0) <= in_flight_max else 0
    errors.update({"H2LOAD_FAILED": parsed.failed, "H2LOAD_ERRORED": parsed.errored})
    errors.update({"H2LOAD_TIMEOUT": parsed.timed_out})
    errors.update({f"HTTP_{status}": n for status, n in parsed.statuses.items() if status != "2xx"})
    notes = [f"{arguments.h2load_clients}×{arguments.h2load_streams} streams"]
    if reset_at_end:
        notes.append(f"{reset_at_end} reset by h2load at its end")
    return ok_share, errors, notes


def _h2load_http1_outcome(
    arguments: argparse.Namespace, parsed: H2loadResult
) -> tuple[float, Counter[str], list[str]]:
    """The share of h2load's HTTP/1.1 answers that were 2xx (the only successes), the
    errors and the notes. An HTTP/JSON error is an answer's status, which h2load counts by
    class (its req/s counts every answer); its failures to get an answer count too."""
    answered = sum(parsed.statuses.values())
    ok_share = parsed.statuses["2xx"] / answered if answered else 0.0
    errors = Counter(
        {f"HTTP_{status}": n for status, n in parsed.statuses.items() if status != "2xx"}
    )
    errors.update({"H2LOAD_ERRORED": parsed.errored, "H2LOAD_TIMEOUT": parsed.timed_out})
    connections = arguments.h2load_clients * arguments.h2load_streams
    return ok_share, errors, [f"{connections} HTTP/1.1 connections"]


class _ServerRateWatcher(threading.Thread):
    """Progress for h2load, which prints none: the server's count of calls each second."""

    def __init__(self, bench: Bench, workload: str, observed: Observed, method: str) -> None:
        super().__init__(name="h2load-progress", daemon=True)
        self._progress = Progress(
            f"{workload} / h2load", bench.memory, bench.server(workload), "calls"
        )
        self._observed = observed
        self._method = method
        self._stop_event = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        with contextlib.suppress(OSError):  # progress only: a missed scrape is no failure
            first = server_calls(self._observed.http_port)
            while not self._stop_event.wait(generator.progress_interval_seconds):
                counts = server_calls(self._observed.http_port)
                answered = _method_total(counts, self._method) - _method_total(first, self._method)
                ok = counts.get((self._method, "OK"), 0) - first.get((self._method, "OK"), 0)
                self._progress(time.monotonic() - started, answered, answered - ok)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _method_total(counts: Counter[tuple[str, str]], method: str) -> int:
    return int(sum(count for (called, _), count in counts.items() if called == method))


def shape(workload: str) -> str:
    """The generator's workload that a run's workload sends (the large business's stream
    is the stream's requests to another business)."""
    return "process-stream" if workload == large_stream_workload else workload


def run_generator(
    bench: Bench,
    workload: str,
    mode: generator.Mode,
    rate_per_second: float = 0.0,
    seconds: float | None = None,
    on_start: Callable[[], None] | None = None,
    stop: Any = None,
) -> tuple[Row, LoadResult]:
    """Throughput (closed loop) or latency (fixed arrival rate) with the Python generator,
    for `seconds` (default: --phase-seconds) or, in latency mode, until `stop` (a
    `generator.stop_event()`) is set; `on_start` as measuring begins."""
    arguments = bench.arguments
    streaming = shape(workload) in generator.STREAMING_WORKLOADS
    spec = LoadSpec(
        workload=shape(workload),
        mode=mode,
        duration_seconds=seconds or arguments.phase_seconds,
        workers=arguments.workers,
        rate_per_second=rate_per_second,
        concurrency=arguments.stream_concurrency if streaming else arguments.concurrency,
        checks_per_message=arguments.checks_per_message,
        warm_up_seconds=(
            max(arguments.warm_up_seconds, large_warm_up_seconds_min)
            if workload == large_stream_workload
            else arguments.warm_up_seconds
        ),
        run_id=bench.next_run_id(),
    )
    observed = bench.observed[bench.server(workload)]
    calls = "messages" if streaming else "calls"
    if mode == "latency":
        shown = f"{rate_per_second:,.1f} {calls}/s offered"
        shown += f", at most {generator.outstanding_calls_max:,} in flight per worker"
    else:
        shown = f"{spec.concurrency} {'streams' if streaming else 'calls'} in flight"
    log(f"{workload} / {mode}: {spec.workers} workers, {shown}")
    snapshots: list[Snapshot] = []

    def started() -> None:
        snapshots.append(observed.snapshot())
        if on_start is not None:
            on_start()

    label = f"{workload} / {mode}"
    unit = "checks" if streaming else "calls"
    result = generator.run_load(
        spec,
        bench.target(workload),
        on_start=started,
        on_progress=Progress(label, bench.memory, bench.server(workload), unit),
        stop=stop,
    )
    after = observed.snapshot()
    row = Row(workload, mode, per_second=result.items_per_second)
    row.p50_ms, row.p99_ms, row.p999_ms = (result.latency_ms(p) for p in (50, 99, 99.9))
    row.errors = _errors_text(result.errors)
    answered = sum(_by_code(snapshots[0], after, generator.WORKLOADS[spec.workload]).values())
    _cost(row, snapshots[0], after, result.items_ok if streaming else answered or result.calls)
    notes = ["checks/s"] if streaming else []
    if mode == "latency":
        notes.append(f"{rate_per_second:,.1f} {'msg' if streaming else 'calls'}/s offered")
    if streaming:
        notes.append(f"{spec.checks_per_message} checks/msg")
        if mode == "throughput":
            notes.append(f"{result.calls_per_second:,.1f} msg/s")
    row.note = ", ".join(notes)
    return row, result


def _probe(bench: Bench, workload: str) -> str:
    """Empty when the server answers the workload; otherwise why it is skipped."""

    async def one() -> generator.Outcome:
        return await asyncio.wait_for(
            generator.probe(shape(workload), bench.target(workload), checks_per_message=2),
            probe_seconds_max,
        )

    outcome = asyncio.run(one())
    if outcome.code != "OK":
        return outcome.code
    return ", ".join(code for code, _ in outcome.item_errors)


def measure(bench: Bench, workload: str) -> None:
    """A workload's phases: throughput (h2load, then closed loop), then latency.

    The latency phase offers `--latency-rate-fraction` of the lowest throughput measured
    for the workload, and never more than that fraction of the generator's own ceiling
    (the empty call's closed loop): on a small machine the Python client shares the CPU
    with the server, so h2load's figure alone would overstate what it can take then.
    The large business's stream is measured in throughput only: its figure is compared
    with the stream's, and the run stays short.
    """
    rows = bench.report.rows
    if workload == large_stream_workload and bench.large is None:
        bench.large = build_large_business(bench)
    refused = _probe(bench, workload)
    if refused:
        log(f"{workload}: skipped, the server answers {refused}")
        rows.append(Row(workload, "skipped", errors=refused, note="the server refuses the call"))
        return
    maxima: list[float] = []
    if workload in h2load_workloads and not bench.arguments.no_h2load:
        row = run_h2load(bench, workload)
        rows.append(row)
        maxima.append(row.per_second or 0.0)
    row, result = run_generator(bench, workload, "throughput")
    rows.append(row)
    bench.throughput_calls_per_second[workload] = result.calls_per_second
    if workload == large_stream_workload:
        return
    maxima.append(result.calls_per_second)
    if workload == "empty":
        bench.generator_ceiling_per_second = result.calls_per_second
    if bench.generator_ceiling_per_second:
        maxima.append(bench.generator_ceiling_per_second)
    rate = bench.arguments.latency_rate_fraction * min(maxima)
    if rate <= 0:
        rows.append(Row(workload, "latency", note="skipped: no successful call to size the rate"))
        return
    row, _ = run_generator(bench, workload, "latency", rate)
    rows.append(row)


def add_ceiling_ratios(report: Report) -> None:
    """Each throughput against the empty call's, measured the same way."""
    for row in report.rows:
        ceiling = report.row("empty", row.mode)
        if (
            row.workload == "empty"
            or shape(row.workload) in generator.STREAMING_WORKLOADS
            or row.mode not in ("h2load", "throughput")
            or ceiling is None
            or not ceiling.per_second
            or row.per_second is None
        ):
            continue
        row.ceiling_ratio = row.per_second / ceiling.per_second


# --- the soak ---------------------------------------------------------------------------


class RssSeries(threading.Thread):
    """A process tree's RSS every `soak_sample_interval_seconds`, from `start()` on."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self.samples: list[tuple[float, int]] = []
        self._pid = pid
        self._stop_event = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, rss_bytes(self._pid)))
            if self._stop_event.wait(soak_sample_interval_seconds):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def gc_collections(path: Path) -> list[int] | None:
    """Collections so far by generation, as the server's launcher last wrote them."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return [int(generation["collections"]) for generation in json.loads(path.read_text())]
    return None


def soak(bench: Bench) -> None:
    """process-stream at --latency-rate-fraction of its throughput for --soak-seconds,
    the server's RSS sampled once a second and its garbage collections counted."""
    arguments = bench.arguments
    report = bench.report
    messages_per_second = bench.throughput_calls_per_second.get("process-stream", 0.0)
    if messages_per_second <= 0:
        report.soak_note = "not run: process-stream's throughput was not measured"
        log(f"soak: {report.soak_note}")
        return
    rate = arguments.latency_rate_fraction * messages_per_second
    log(f"soak: {arguments.soak_seconds:,.0f} s of process-stream at {rate:,.1f} msg/s")
    found = Soak(arguments.soak_seconds, rate)
    series = RssSeries(bench.observed["purse"].server_pid)
    gc_path = bench.data_dir / gc_stats_file_name
    collections: list[list[int] | None] = []

    def started() -> None:
        collections.append(gc_collections(gc_path))
        series.start()

    try:
        row, result = run_generator(
            bench, "process-stream", "latency", rate, arguments.soak_seconds, started
        )
    finally:
        if series.is_alive():
            series.stop()
    collections.append(gc_collections(gc_path))
    row.mode = "soak"
    report.rows.append(row)
    found.samples = series.samples
    found.checks = result.items_ok
    first, last = collections[0], collections[-1]
    if first is not None and last is not None:
        found.gc_collections = [after - before for before, after in zip(first, last, strict=True)]
    report.soak = found


# --- the large business -----------------------------------------------------------------


def build_large_business(bench: Bench) -> Target:
    """A second demo business, founded through the server's API, with --large-customers
    memberships built by COPY (`memberships`), the tables then settled."""
    count = bench.arguments.large_customers
    log(f"{large_stream_workload}: a second demo business, {count:,} memberships by COPY")
    api_key, phones, large = asyncio.run(
        provision_large(bench.database_url, bench.purse.address, count)
    )
    settled = "" if large.settle_seconds is None else f", settled in {large.settle_seconds:.1f} s"
    log(f"{large_stream_workload}: built in {large.build_seconds:.1f} s{settled}")
    bench.report.large = large
    return dataclasses.replace(bench.purse, api_key=api_key, phones=phones)


# --- provisioning -----------------------------------------------------------------------


@dataclass(frozen=True)
class Provisioned:
    api_key: str  # the cash desk's
    currency: str
    phones: generator.PhoneNumbers
    postgres_version: str
    business_id: int
    administrator_api_key: str  # the owner's


async def _found_demo(pool: Any, purse_address: str) -> Any:
    """The demo business (`purse.demo`), founded and set up through the server's API."""
    import grpc

    from purse.demo import create_demo
    from purse.domain import credentials
    from purse.store.postgres.administrators import OperatorKeyStore

    operator_key = credentials.new_api_key()
    await OperatorKeyStore(pool).add("load benchmark", credentials.api_key_digest(operator_key))
    async with grpc.aio.insecure_channel(purse_address) as channel:
        return await create_demo(channel, operator_key)


async def provision(database_url: str, purse_address: str, customers: int) -> Provisioned:
    """The demo business, founded through the running server's API (`purse.demo`), and
    `customers` phones enrolled in it (straight into the database: setup, not measured)."""
    from purse.domain.customers import AccessType
    from purse.store.postgres import database
    from purse.store.postgres.customers import CustomerStore

    connections_max = 8
    pool = await database.create_pool(database_url, 1, connections_max, 60_000, 10.0)
    try:
        demo = await _found_demo(pool, purse_address)
        store = CustomerStore(pool)
        phones = generator.PhoneNumbers(customer_phone_prefix, customers)
        for start in range(0, len(phones), connections_max):
            chunk = phones[start : start + connections_max]
            await asyncio.gather(
                *(store.enrol(demo.business_id, phone, AccessType.FULL) for phone in chunk)
            )
        version = str(await pool.fetchval("SHOW server_version"))
    finally:
        await pool.close()
    return Provisioned(
        demo.cash_desk_api_key, "UAH", phones, version, demo.business_id,
        demo.administrator_api_key,
    )  # fmt: skip


async def _free_phone_prefix(connection: Any) -> str:
    """The first of `large_phone_prefixes` that no phone starts with."""
    for prefix in large_phone_prefixes:
        taken = "SELECT EXISTS (SELECT 1 FROM customers WHERE phone LIKE $1 || '%')"
        if not await connection.fetchval(taken, prefix):
            return prefix
    raise RuntimeError("every phone prefix of the large business is taken: use a new --data-dir")


@dataclass(frozen=True)
class Copied:
    """Memberships built by COPY into a business, and what building them took."""

    phones: generator.PhoneNumbers
    customer_ids: range  # in the order of the phones
    build_seconds: float
    settle_seconds: float | None  # None: the role may not VACUUM or CHECKPOINT


async def copy_members(database_url: str, business_id: int, customers: int) -> Copied:
    """`customers` memberships of the business built by COPY (`memberships`), phones of
    the first free `large_phone_prefixes`, then the tables vacuumed, analysed and
    checkpointed (left as they are, with a line saying so, where the role may not)."""
    import asyncpg

    from purse.domain.customers import AccessType

    # A connection of its own: no statement timeout for a COPY of a million rows.
    connection = await asyncpg.connect(database_url, timeout=metrics_timeout_seconds)
    try:
        phones = generator.PhoneNumbers(await _free_phone_prefix(connection), customers)
        built = await memberships.copy_memberships(
            connection, business_id, phones, AccessType.FULL.value
        )
        started = time.perf_counter()
        try:
            await memberships.settle(connection)
            settle_seconds: float | None = time.perf_counter() - started
        except asyncpg.InsufficientPrivilegeError as error:
            log(f"the tables built by COPY are not settled ({error}); measuring anyway")
            settle_seconds = None
    finally:
        await connection.close()
    return Copied(phones, built.customer_ids, built.seconds, settle_seconds)


async def provision_large(
    database_url: str, purse_address: str, customers: int
) -> tuple[str, generator.PhoneNumbers, LargeBusiness]:
    """A second demo business with `customers` memberships built by COPY (`copy_members`);
    its cash desk's API key, its phones, and what building it took."""
    from purse.store.postgres import database

    pool = await database.create_pool(database_url, 1, 1, 60_000, 10.0)
    try:
        demo = await _found_demo(pool, purse_address)
    finally:
        await pool.close()
    copied = await copy_members(database_url, demo.business_id, customers)
    large = LargeBusiness(customers, copied.build_seconds, copied.settle_seconds)
    return demo.cash_desk_api_key, copied.phones, large


def _pid_in(path: Path) -> int | None:
    """The pid on the first line of a pid file, if the file is there."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().splitlines()[0].strip())
    return None


def postgres_pid(infrastructure: Any) -> int | None:
    """PostgreSQL's postmaster, when this run started it."""
    postgres = infrastructure.postgres
    return None if postgres is None else _pid_in(postgres.pgdata / "postmaster.pid")


def redis_pid(infrastructure: Any) -> int | None:
    """The Redis server, when this run started it."""
    redis = infrastructure.redis
    return None if redis is None else _pid_in(redis.pid_path)


def database_pids(infrastructure: Any) -> list[int]:
    """PostgreSQL's postmaster and the Redis server, when this run started them."""
    return [pid for pid in (postgres_pid(infrastructure), redis_pid(infrastructure)) if pid]


def machine(postgres_version: str) -> dict[str, str]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "CPU": model,
        "cores": f"{os.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "grpcio": grpc.__version__,
        "PostgreSQL": postgres_version,
    }


# --- the report -------------------------------------------------------------------------

columns = (
    "workload",
    "mode",
    "calls/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "server CPU µs/call",
    "PG CPU µs/call",
    "Redis CPU µs/call",
    "÷ ceiling",
    "errors",
    "note",
)


def _figure(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _cells(row: Row) -> list[str]:
    return [
        row.workload,
        row.mode,
        _figure(row.per_second),
        _figure(row.p50_ms, 2),
        _figure(row.p99_ms, 2),
        _figure(row.p999_ms, 2),
        _figure(row.server_cpu_us),
        _figure(row.postgres_cpu_us),
        _figure(row.redis_cpu_us),
        _figure(row.ceiling_ratio, 2),
        row.errors,
        row.note,
    ]


def _target(what: str, figure: str, met: bool | None) -> str:
    """One target's line: its figures and met or NOT MET, or why it was not measured."""
    if met is None:
        return f"{what}: not measured"
    return f"{what}: {figure} — {'met' if met else 'NOT MET'}"


def _at_least(value: float | None, minimum: float) -> bool | None:
    return None if value is None else value >= minimum


def _at_most(value: float | None, maximum: float) -> bool | None:
    return None if value is None else value <= maximum


def _ratio(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def _against(
    report: Report, workload: str, baseline: str, modes: tuple[str, ...]
) -> tuple[str, float | None]:
    """The workload's throughput ÷ the baseline workload's, in the first of `modes` in
    which both were measured."""
    for mode in modes:
        row, base = report.row(workload, mode), report.row(baseline, mode)
        if row is None or base is None:
            continue
        ratio = _ratio(row.per_second, base.per_second)
        if ratio is not None:
            return (
                f"{ratio:.2f} × ({_figure(row.per_second)} against "
                f"{_figure(base.per_second)} calls/s, {mode})",
                ratio,
            )
    return "—", None


def _stream_targets(report: Report) -> list[str]:
    stream = report.row("process-stream", "throughput")
    checks = stream.per_second if stream else None
    multiple = _ratio(checks, report.pgbench_tps)
    server = stream.server_cpu_us if stream else None
    postgres = stream.postgres_cpu_us if stream else None
    return [
        _target(
            f"ProcessChecks ≥ {stream_pgbench_multiple_min:g} × pgbench TPC-B",
            f"{_figure(multiple, 2)} × ({_figure(checks)} checks/s against "
            f"{_figure(report.pgbench_tps)} tps)",
            _at_least(multiple, stream_pgbench_multiple_min),
        ),
        _target(
            f"server CPU per streamed check ≤ {stream_server_cpu_us_max:g} µs",
            f"{_figure(server)} µs",
            _at_most(server, stream_server_cpu_us_max),
        ),
        _target(
            f"PostgreSQL CPU per streamed check ≤ {stream_postgres_cpu_us_max:g} µs",
            f"{_figure(postgres)} µs",
            _at_most(postgres, stream_postgres_cpu_us_max),
        ),
    ]


def _large_target(report: Report) -> str:
    small = report.row("process-stream", "throughput")
    large = report.row(large_stream_workload, "throughput")
    small_checks = small.per_second if small else None
    large_checks = large.per_second if large else None
    ratio = _ratio(large_checks, small_checks)
    large_customers = report.large.customers if report.large else large_customers_default
    return _target(
        f"ProcessChecks with {large_customers:,} memberships within "
        f"{large_stream_deviation_max:.0%} of the figure with {report.customers:,}",
        f"{_figure(ratio, 2)} × ({_figure(large_checks)} against {_figure(small_checks)} checks/s)",
        None if ratio is None else abs(ratio - 1.0) <= large_stream_deviation_max,
    )


def _soak_target(report: Report) -> str:
    what = f"RSS flat within {soak_rss_growth_max:.0%} over a soak at half load"
    soak = report.soak
    if soak is None or not soak.samples:
        return f"{what}: not measured ({report.soak_note or 'no --soak-seconds'})"
    figure = (
        f"{soak.growth:+.1%} (start {soak.start_bytes / mebibyte:,.0f} MiB, "
        f"max {soak.max_bytes / mebibyte:,.0f}, over {soak.seconds:,.0f} s)"
    )
    return _target(what, figure, soak.growth <= soak_rss_growth_max)


def _targets(report: Report) -> list[str]:
    """The issues' targets, each met, missed or not measured, with its figures."""
    latency = report.row("process", "latency")
    p99 = latency.p99_ms if latency else None
    process_figure, process_ratio = _against(report, "process", "empty", ("throughput",))
    identify_figure, identify_ratio = _against(
        report, "identify", "empty", ("h2load", "throughput")
    )
    rate = f" at {_figure(latency.per_second)} calls/s" if latency else ""
    return [
        *_stream_targets(report),
        _target(
            f"unary ProcessCheck ≥ {process_ceiling_ratio_min:g} × the empty call",
            process_figure,
            _at_least(process_ratio, process_ceiling_ratio_min),
        ),
        _target(
            f"ProcessCheck p99 ≤ {process_p99_ms_max:g} ms at half its throughput",
            f"{_figure(p99, 2)} ms{rate}",
            _at_most(p99, process_p99_ms_max),
        ),
        _target(
            f"IdentifyCustomer ≥ {identify_ceiling_ratio_min:g} × the empty call",
            identify_figure,
            _at_least(identify_ratio, identify_ceiling_ratio_min),
        ),
        _large_target(report),
        _soak_target(report),
        *_http_targets(report),
    ]


def _http_targets(report: Report) -> list[str]:
    """Issue 12's: each call over HTTP/JSON against the same call over gRPC, measured the
    same way in the same run (h2load for IdentifyCustomer when it ran, else closed loop)."""
    identify_figure, identify_ratio = _against(
        report, "http-identify", "identify", ("h2load", "throughput")
    )
    process_figure, process_ratio = _against(report, "http-process", "process", ("throughput",))
    return [
        _target(
            f"HTTP/JSON IdentifyCustomer ≥ {http_grpc_ratio_min:g} × gRPC",
            identify_figure,
            _at_least(identify_ratio, http_grpc_ratio_min),
        ),
        _target(
            f"HTTP/JSON ProcessCheck ≥ {http_grpc_ratio_min:g} × gRPC",
            process_figure,
            _at_least(process_ratio, http_grpc_ratio_min),
        ),
    ]


def _soak_summary(soak: Soak | None) -> list[str]:
    if soak is None or not soak.samples:
        return []
    slope = slope_per_second(soak.samples)
    lines = [
        f"soak: {soak.seconds:g} s of process-stream at {soak.rate_per_second:,.1f} msg/s "
        f"({soak.checks:,} checks); server RSS start {soak.start_bytes / mebibyte:,.1f} MiB "
        f"(after warm-up), max {soak.max_bytes / mebibyte:,.1f}, end "
        f"{soak.end_bytes / mebibyte:,.1f}; slope {slope * 60 / mebibyte:+,.2f} MiB/min "
        f"({slope * soak.seconds / soak.start_bytes:+.1%} of the start over the soak)"
    ]
    if soak.gc_collections is not None:
        young, *older = soak.gc_collections
        per_thousand = young * 1000 / soak.checks if soak.checks else 0.0
        lines.append(
            f"soak: garbage collections young {young:,} ({per_thousand:,.1f} per 1,000 checks), "
            f"older {', '.join(f'{count:,}' for count in older)}"
        )
    return lines


def _summary(report: Report) -> list[str]:
    rss = ", ".join(
        f"{name} {peak / mebibyte:,.0f} MiB" for name, peak in sorted(report.peak_rss_bytes.items())
    )
    lines = [
        f"pgbench TPC-B-like: {_figure(report.pgbench_tps)} tps {report.pgbench_note}".rstrip(),
        f"peak RSS (server process and its children): {rss or '—'}",
    ]
    if report.large is not None:
        settled = report.large.settle_seconds
        lines.append(
            f"large business: {report.large.customers:,} memberships built by COPY in "
            f"{report.large.build_seconds:.1f} s, then VACUUM (ANALYZE) and CHECKPOINT in "
            + ("— (not allowed)" if settled is None else f"{settled:.1f} s")
        )
    lines += _soak_summary(report.soak)
    return [*lines, *(f"{name}: {value}" for name, value in report.machine.items())]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> list[str]:
    """A table's lines: Markdown, or plain text in columns padded to their widest cell."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]
    cells = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[index]) for line in cells) for index in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def render_text(report: Report) -> str:
    lines = table(columns, [_cells(row) for row in report.rows], markdown=False)
    return "\n".join([*lines, "", *_targets(report), "", *_summary(report)])


def render_markdown(report: Report) -> str:
    lines = table(columns, [_cells(row) for row in report.rows], markdown=True)
    lines += ["", *(f"- {line}" for line in _targets(report)), ""]
    lines += [f"- {line}" for line in _summary(report)]
    return "\n".join(lines) + "\n"


# --- the run ----------------------------------------------------------------------------

repository_root = Path(__file__).resolve().parents[2]


def add_generator_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags `run_generator` reads for unary calls, and the demo business's customers."""
    add = parser.add_argument
    add("--phase-seconds", type=float, default=phase_seconds_default, help="each phase")
    add("--warm-up-seconds", type=float, default=warm_up_seconds_default, help="before each")
    add("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="processes")
    add("--concurrency", type=int, default=throughput_concurrency_default, help="closed loop")
    add("--latency-rate-fraction", type=float, default=latency_rate_fraction_default)
    add("--customers", type=int, default=customers_default, help="phones enrolled and used")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--markdown", type=Path, help="also write the report here as Markdown")
    add("--data-dir", type=Path, help="kept afterwards; default: a temporary one, removed")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load.run", description=__doc__.splitlines()[0]
    )
    add = parser.add_argument
    add("--workloads", default=",".join(WORKLOADS), help="comma-separated, in order")
    add_generator_arguments(parser)
    add("--stream-concurrency", type=int, default=stream_concurrency_default, help="streams")
    add("--checks-per-message", type=int, default=checks_per_message_default)
    add("--large-customers", type=int, default=large_customers_default, help=large_help)
    add("--soak-seconds", type=float, default=0.0, help="process-stream at half load; 0: none")
    add("--h2load-clients", type=int, default=h2load_clients_default, help="connections")
    add("--h2load-streams", type=int, default=h2load_streams_per_client_default)
    add("--no-h2load", action="store_true", help="closed-loop generator instead of h2load")
    add("--pgbench-scale", type=int, default=pgbench_scale_default)
    add("--pgbench-seconds", type=float, default=pgbench_seconds_default)
    add("--pgbench-clients", type=int, default=pgbench_clients_default)
    add("--no-pgbench", action="store_true")
    add_output_arguments(parser)
    arguments = parser.parse_args(argv)
    arguments.workloads = [name.strip() for name in arguments.workloads.split(",") if name]
    unknown = [name for name in arguments.workloads if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
    if arguments.soak_seconds > 0 and "process-stream" not in arguments.workloads:
        parser.error("--soak-seconds runs at half process-stream's throughput: measure it too")
    return arguments


def _child_environment(extra: dict[str, str]) -> dict[str, str]:
    python_path = os.pathsep.join(
        filter(None, (str(repository_root), os.environ.get("PYTHONPATH")))
    )
    return {**os.environ, "PYTHONPATH": python_path, **extra}


@dataclass
class Servers:
    purse: ChildServer
    echo: ChildServer
    purse_address: str
    echo_address: str
    purse_http_port: int
    echo_http_port: int


def purse_server(
    settings: Any, data_dir: Path, port: int, http_port: int, gc_stats: Path | None = None
) -> ChildServer:
    """`purse serve` on 127.0.0.1, on migrated PostgreSQL and Redis (not started yet);
    through `gc_recorder` when `gc_stats` names a file for its garbage collection counts."""
    launcher = ["purse.cli"] if gc_stats is None else ["benchmarks.load.gc_recorder", str(gc_stats)]
    return ChildServer(
        "purse",
        [sys.executable, "-m", *launcher, "serve"],
        _child_environment(
            {
                "PURSE_DATABASE_URL": settings.database_url,
                "PURSE_REDIS_URL": settings.redis_url,
                "PURSE_DATA_DIR": str(data_dir),
                "PURSE_GRPC_HOST": "127.0.0.1",
                "PURSE_GRPC_PORT": str(port),
                "PURSE_HTTP_HOST": "127.0.0.1",
                "PURSE_HTTP_PORT": str(http_port),
                "PURSE_LOG_FORMAT": "text",
                "PURSE_MIGRATE_ON_START": "false",  # migrated before
            }
        ),
        data_dir / "purse-server.log",
    )


def start_servers(
    settings: Any, data_dir: Path, started: list[ChildServer], gc_stats: Path | None
) -> Servers:
    """The Purse server and the echo server (appended to `started` as each starts)."""
    from purse.store.embedded import free_port

    purse_port, purse_http, echo_port, echo_http = (free_port() for _ in range(4))
    purse = purse_server(settings, data_dir, purse_port, purse_http, gc_stats)
    echo = ChildServer(
        "echo",
        [
            sys.executable,
            "-m",
            "benchmarks.load.echo_server",
            f"--port={echo_port}",
            f"--http-port={echo_http}",
        ],
        _child_environment({}),
        data_dir / "echo-server.log",
    )
    started.append(purse)
    purse.start(lambda: _health_serving(f"127.0.0.1:{purse_port}"))
    started.append(echo)
    echo.start(lambda: _echo_answers(f"127.0.0.1:{echo_port}"))
    return Servers(
        purse, echo, f"127.0.0.1:{purse_port}", f"127.0.0.1:{echo_port}", purse_http, echo_http
    )


def run_benchmark(arguments: argparse.Namespace, data_dir: Path, report: Report) -> None:
    """Everything, into `report`; whatever happens, stops what it started."""
    from purse.bootstrap import Infrastructure
    from purse.config import load_settings
    from purse.store.postgres import database

    # The servers to use, and whether the embedded PostgreSQL counts its statements.
    taken = (
        "PURSE_DATABASE_URL",
        "PURSE_REDIS_URL",
        "PURSE_EMBEDDED_POSTGRES_STATEMENT_STATISTICS",
    )
    settings = load_settings(
        environment={key: value for key, value in os.environ.items() if key in taken},
        data_dir=data_dir,
    )
    infrastructure = Infrastructure(settings)
    started: list[ChildServer] = []
    memory = PeakMemory()
    try:
        resolved = infrastructure.start()
        asyncio.run(database.migrate(resolved.database_url))
        if not arguments.no_pgbench:
            report.pgbench_note = (
                f"(scale {arguments.pgbench_scale}, {arguments.pgbench_clients} clients, "
                f"{arguments.pgbench_seconds:g} s, prepared statements)"
            )
            try:
                report.pgbench_tps = pgbench_baseline(arguments, resolved.database_url)
            except Exception as error:  # e.g. no right to create a database: report, go on
                report.pgbench_note = f"(pgbench failed: {error})"
                log(f"pgbench failed, going on without the baseline: {error}")
        soaking = arguments.soak_seconds > 0
        gc_stats = data_dir / gc_stats_file_name if soaking else None
        servers = start_servers(resolved, data_dir, started, gc_stats)
        log(f"provisioning the demo business and {arguments.customers:,} customers")
        provisioned = asyncio.run(
            provision(resolved.database_url, servers.purse_address, arguments.customers)
        )
        report.machine = machine(provisioned.postgres_version)
        memory.watch("purse", servers.purse.pid)
        memory.watch("echo", servers.echo.pid)
        memory.start()
        purse = Target(
            servers.purse_address,
            provisioned.api_key,
            provisioned.phones,
            provisioned.currency,
            http_address=f"127.0.0.1:{servers.purse_http_port}",
        )
        observed = {
            "purse": Observed(
                servers.purse.pid,
                servers.purse_http_port,
                postgres_pid(infrastructure),
                redis_pid(infrastructure),
            ),
            "echo": Observed(servers.echo.pid, servers.echo_http_port),
        }
        report.customers = arguments.customers
        bench = Bench(
            arguments, purse, Target(servers.echo_address), observed, memory, data_dir,
            generator.new_run_id(), report, resolved.database_url,
        )  # fmt: skip
        for workload in arguments.workloads:
            measure(bench, workload)
        add_ceiling_ratios(report)
        if soaking:
            soak(bench)
    finally:
        if memory.is_alive():
            memory.stop()
            report.peak_rss_bytes = dict(memory.peaks)
        for server in reversed(started):
            server.stop()
        infrastructure.stop()


class Interrupted(Exception):
    """SIGTERM or SIGHUP: stop measuring, stop every server this run started, exit."""


# The signal that asked the run to stop, once one has.
_stop_signal: list[str] = []


def _interrupt(signal_number: int, _frame: object) -> None:
    _stop_signal.append(signal.Signals(signal_number).name)
    raise_if_interrupted()


def raise_if_interrupted() -> None:
    """Interrupted once SIGTERM or SIGHUP came. The handler raises it at once, but a
    signal that lands while a finalizer (`__del__`) runs has its exception swallowed
    ("Exception ignored in ..."): so each progress line, once a second while a phase
    runs, raises it again. Nothing that cleans up calls this."""
    if _stop_signal:
        raise Interrupted(f"stopped by {_stop_signal[0]}")


def run_reported(
    arguments: argparse.Namespace,
    measure: Callable[[Path], None],
    render: Callable[[bool], str],
    measured: Callable[[], bool],
) -> int:
    """`measure` in `--data-dir` (a temporary one, removed after, when none is given),
    then the report `render(markdown)` printed and, with `--markdown`, written there.
    SIGTERM and SIGHUP stop it as Ctrl-C does, every server stopped (exit 130); a
    failure prints what was measured before it (`measured()`) and exits 1."""
    # Turned into an exception so that every `finally` runs: the servers, PostgreSQL and
    # Redis started for the run are stopped, as on Ctrl-C.
    for signal_number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signal_number, _interrupt)
    # SIGUSR1 prints where every thread is: a run that seems stuck can say where.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    temporary = arguments.data_dir is None
    data_dir = arguments.data_dir or Path(tempfile.mkdtemp(prefix="purse-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        measure(data_dir)
    except (Interrupted, KeyboardInterrupt) as error:
        log(f"\n{error or 'interrupted'}; the servers it started are stopped")
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
        return 130
    except Exception as error:
        if measured():
            log("\nmeasured before the failure:\n" + render(False))
        log(f"\nthe benchmark failed: {error}\nlogs are kept in {data_dir}")
        return 1
    log(f"\nfinished in {time.monotonic() - started:.0f} s\n")
    log(render(False))
    if arguments.markdown is not None:
        arguments.markdown.parent.mkdir(parents=True, exist_ok=True)
        arguments.markdown.write_text(render(True))
        log(f"\nMarkdown written to {arguments.markdown}")
    if temporary:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if not arguments.no_h2load and shutil.which("h2load") is None:
        log(f"h2load is missing; install it with:  {h2load_install_command}")
        log("(or run with --no-h2load to measure throughput with the Python generator only)")
        return 2
    report = Report()
    return run_reported(
        arguments,
        lambda data_dir: run_benchmark(arguments, data_dir, report),
        lambda markdown: render_markdown(report) if markdown else render_text(report),
        lambda: bool(report.rows),
    )


if __name__ == "__main__":
    sys.exit(main())
