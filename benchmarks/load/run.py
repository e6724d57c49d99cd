"""The load benchmark, end to end: `python -m benchmarks.load.run` (or `make bench-load`).

Contract. On 127.0.0.1 only, in one run on one machine, it

1. starts PostgreSQL and Redis (the embedded ones under a temporary directory, or the
   servers PURSE_DATABASE_URL / PURSE_REDIS_URL name), migrates, and measures pgbench's
   built-in TPC-B-like transactions/s on that PostgreSQL (scratch database, dropped after);
2. starts `python -m purse.cli serve` and the echo server (`benchmarks.load.echo_server`,
   Purse's own gRPC server with an empty method) as child processes, then founds the demo
   business through the server's API (`purse.demo.create_demo`) and enrols `--customers`
   customers in it;
3. for each workload asked for, probes one call (a workload the server refuses, such as
   UNIMPLEMENTED, is reported as skipped), measures its throughput (h2load for requests
   that may repeat, the generator's closed loop for those that must differ), then its
   latency at a fixed arrival rate of `--latency-rate-fraction` of that throughput (never
   above the generator's own ceiling, the empty call's closed-loop throughput);
4. samples both servers' RSS every 100 ms (children included) and reads their CPU time
   and the Purse server's call counts by status code (its /metrics) around every phase;
5. prints progress once a second, then one table, the targets met or not, and the
   machine; `--markdown PATH` also writes them as Markdown.

Every phase has a duration and a deadline; the whole run with default settings takes
about 3 to 4 minutes on a 2-core machine. Exit status: 0 when it ran (whatever the
figures), 2 when a tool is missing, 1 when something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.load import generator
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
# Targets from the issue.
process_ceiling_ratio_min = 0.5
process_p99_ms_max = 15.0
stream_checks_per_second_min = 20_000
stream_pgbench_multiple_min = 10.0

h2load_install_command = "apt-get install -y nghttp2-client"
h2load_workloads = frozenset({"empty", "identify", "calculate"})
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
    database_cpu_us: float | None = None
    errors: str = ""
    ceiling_ratio: float | None = None
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    pgbench_tps: float | None = None
    pgbench_note: str = ""
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)

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
    database_cpu_seconds: float | None
    calls: Counter[tuple[str, str]]


@dataclass
class Observed:
    """What to read around a phase: the server under test, the databases, its metrics."""

    server_pid: int
    http_port: int
    database_pids: list[int]

    def snapshot(self) -> Snapshot:
        return Snapshot(
            taken=time.monotonic(),
            server_cpu_seconds=cpu_seconds([self.server_pid]),
            database_cpu_seconds=cpu_seconds(self.database_pids) if self.database_pids else None,
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


def _cost(row: Row, before: Snapshot, after: Snapshot, per: int) -> None:
    """Fill the CPU microseconds per call (per check, for the stream) of both sides."""
    if per <= 0:
        return
    row.server_cpu_us = (after.server_cpu_seconds - before.server_cpu_seconds) * 1e6 / per
    if before.database_cpu_seconds is not None and after.database_cpu_seconds is not None:
        spent = after.database_cpu_seconds - before.database_cpu_seconds
        row.database_cpu_us = spent * 1e6 / per


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
    arguments: argparse.Namespace, target: Target, method: str, body_path: Path
) -> list[str]:
    command = [
        "h2load",
        # h2load takes whole numbers with a unit ("500ms"), not fractions of a second.
        f"--duration={round(arguments.phase_seconds * 1000)}ms",
        f"--warm-up-time={round(arguments.warm_up_seconds * 1000)}ms",
        f"--clients={arguments.h2load_clients}",
        f"--max-concurrent-streams={arguments.h2load_streams}",
        f"--threads={h2load_threads}",
        f"--data={body_path}",
        "--header=content-type: application/grpc",
        "--header=te: trailers",
    ]
    if target.api_key:
        command.append(f"--header=authorization: Bearer {target.api_key}")
    return [*command, f"http://{target.address}{method}"]


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
    generator_ceiling_per_second: float | None = None
    phases: int = 0

    def target(self, workload: str) -> Target:
        return self.echo if workload == "empty" else self.purse

    def server(self, workload: str) -> str:
        return "echo" if workload == "empty" else "purse"

    def next_run_id(self) -> str:
        self.phases += 1
        return f"{self.run_id}{self.phases}"


def run_h2load(bench: Bench, workload: str) -> Row:
    """Throughput with h2load: the same framed request again and again."""
    target = bench.target(workload)
    method = generator.WORKLOADS[workload]
    message = generator.Requests(workload, target, bench.next_run_id(), 0, 1, 1).message(0)
    body_path = bench.data_dir / f"{workload}.grpc"
    body_path.write_bytes(grpc_frame(message))
    command = h2load_command(bench.arguments, target, method, body_path)
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
    answered = sum(codes.values())
    # h2load sees HTTP only: a gRPC error is a 200 with grpc-status in the trailers, so the
    # server's own counts say which answers were errors (warm-up included).
    ok_share = codes.get("OK", 0) / answered if answered else 0.0
    errors = Counter({code: count for code, count in codes.items() if code != "OK"})
    # When its duration ends h2load resets the streams still open; the server counts a
    # call cancelled that way as UNKNOWN. Up to one per stream is that, not a failure.
    in_flight_max = bench.arguments.h2load_clients * bench.arguments.h2load_streams
    reset_at_end = errors.pop("UNKNOWN", 0) if errors.get("UNKNOWN", 0) <= in_flight_max else 0
    errors.update({"H2LOAD_FAILED": parsed.failed, "H2LOAD_ERRORED": parsed.errored})
    errors.update({"H2LOAD_TIMEOUT": parsed.timed_out})
    errors.update({f"HTTP_{status}": n for status, n in parsed.statuses.items() if status != "2xx"})
    row = Row(workload, "h2load", per_second=parsed.requests_per_second * ok_share)
    row.errors = _errors_text(errors)
    notes = [f"mean {parsed.mean_ms:.2f} ms"] if parsed.mean_ms is not None else []
    notes.append(f"{bench.arguments.h2load_clients}×{bench.arguments.h2load_streams} streams")
    if reset_at_end:
        notes.append(f"{reset_at_end} reset by h2load at its end")
    row.note = ", ".join(notes)
    _cost(row, before, after, answered)
    return row


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


def run_generator(
    bench: Bench, workload: str, mode: generator.Mode, rate_per_second: float = 0.0
) -> tuple[Row, LoadResult]:
    """Throughput (closed loop) or latency (fixed arrival rate) with the Python generator."""
    arguments = bench.arguments
    streaming = workload in generator.STREAMING_WORKLOADS
    spec = LoadSpec(
        workload=workload,
        mode=mode,
        duration_seconds=arguments.phase_seconds,
        workers=arguments.workers,
        rate_per_second=rate_per_second,
        concurrency=arguments.stream_concurrency if streaming else arguments.concurrency,
        checks_per_message=arguments.checks_per_message,
        warm_up_seconds=arguments.warm_up_seconds,
        run_id=bench.next_run_id(),
    )
    observed = bench.observed[bench.server(workload)]
    calls = "messages" if streaming else "calls"
    if mode == "latency":
        shape = f"{rate_per_second:,.1f} {calls}/s offered"
        shape += f", at most {generator.outstanding_calls_max:,} in flight per worker"
    else:
        shape = f"{spec.concurrency} {'streams' if streaming else 'calls'} in flight"
    log(f"{workload} / {mode}: {spec.workers} workers, {shape}")
    snapshots: list[Snapshot] = []
    label = f"{workload} / {mode}"
    unit = "checks" if streaming else "calls"
    result = generator.run_load(
        spec,
        bench.target(workload),
        on_start=lambda: snapshots.append(observed.snapshot()),
        on_progress=Progress(label, bench.memory, bench.server(workload), unit),
    )
    after = observed.snapshot()
    row = Row(workload, mode, per_second=result.items_per_second)
    row.p50_ms, row.p99_ms, row.p999_ms = (result.latency_ms(p) for p in (50, 99, 99.9))
    row.errors = _errors_text(result.errors)
    answered = sum(_by_code(snapshots[0], after, generator.WORKLOADS[workload]).values())
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
            generator.probe(workload, bench.target(workload), checks_per_message=2),
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
    """
    rows = bench.report.rows
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
            row.workload in ("empty", *generator.STREAMING_WORKLOADS)
            or row.mode not in ("h2load", "throughput")
            or ceiling is None
            or not ceiling.per_second
            or row.per_second is None
        ):
            continue
        row.ceiling_ratio = row.per_second / ceiling.per_second


# --- provisioning -----------------------------------------------------------------------


@dataclass(frozen=True)
class Provisioned:
    api_key: str
    currency: str
    phones: tuple[str, ...]
    postgres_version: str


async def provision(database_url: str, purse_address: str, customers: int) -> Provisioned:
    """The demo business, founded through the running server's API (`purse.demo`), and
    `customers` phones enrolled in it (straight into the database: setup, not measured)."""
    import grpc

    from purse.demo import create_demo
    from purse.domain import credentials
    from purse.domain.customers import AccessType
    from purse.store.postgres import database
    from purse.store.postgres.administrators import OperatorKeyStore
    from purse.store.postgres.customers import CustomerStore

    connections_max = 8
    pool = await database.create_pool(database_url, 1, connections_max, 60_000, 10.0)
    try:
        operator_key = credentials.new_api_key()
        await OperatorKeyStore(pool).add("load benchmark", credentials.api_key_digest(operator_key))
        async with grpc.aio.insecure_channel(purse_address) as channel:
            demo = await create_demo(channel, operator_key)
        store = CustomerStore(pool)
        phones = tuple(f"{customer_phone_prefix}{index:07d}" for index in range(customers))
        for start in range(0, len(phones), connections_max):
            chunk = phones[start : start + connections_max]
            await asyncio.gather(
                *(store.enrol(demo.business_id, phone, AccessType.FULL) for phone in chunk)
            )
        version = str(await pool.fetchval("SHOW server_version"))
    finally:
        await pool.close()
    return Provisioned(demo.cash_desk_api_key, "UAH", phones, version)


def _pid_in(path: Path) -> int | None:
    """The pid on the first line of a pid file, if the file is there."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().splitlines()[0].strip())
    return None


def database_pids(infrastructure: Any) -> list[int]:
    """PostgreSQL's postmaster and the Redis server, when this run started them."""
    pids = []
    if infrastructure.postgres is not None:
        pids.append(_pid_in(infrastructure.postgres.pgdata / "postmaster.pid"))
    if infrastructure.redis is not None:
        pids.append(_pid_in(infrastructure.redis.pid_path))
    return [pid for pid in pids if pid]


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
    "DB CPU µs/call",
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
        _figure(row.database_cpu_us),
        _figure(row.ceiling_ratio, 2),
        row.errors,
        row.note,
    ]


def _target(what: str, figure: str, met: bool | None) -> str:
    verdict = "not measured" if met is None else ("met" if met else "NOT MET")
    return f"{what}: {figure} — {verdict}"


def _targets(report: Report) -> list[str]:
    """The issue's targets, each met, missed or not measured."""
    process = report.row("process", "throughput")
    latency = report.row("process", "latency")
    stream = report.row("process-stream", "throughput")
    ratio = process.ceiling_ratio if process else None
    p99 = latency.p99_ms if latency else None
    checks = stream.per_second if stream else None
    multiple = checks / report.pgbench_tps if checks and report.pgbench_tps else None
    return [
        _target(
            f"ProcessCheck throughput ≥ {process_ceiling_ratio_min:g} × the empty call",
            f"{_figure(ratio, 2)} ×",
            None if ratio is None else ratio >= process_ceiling_ratio_min,
        ),
        _target(
            f"ProcessCheck p99 ≤ {process_p99_ms_max:g} ms at half its throughput",
            f"{_figure(p99, 2)} ms",
            None if p99 is None else p99 <= process_p99_ms_max,
        ),
        _target(
            f"ProcessChecks ≥ {stream_checks_per_second_min:,} durable checks/s",
            f"{_figure(checks)} checks/s",
            None if checks is None else checks >= stream_checks_per_second_min,
        ),
        _target(
            f"ProcessChecks ≥ {stream_pgbench_multiple_min:g} × pgbench tps",
            f"{_figure(multiple, 1)} ×",
            None if multiple is None else multiple >= stream_pgbench_multiple_min,
        ),
    ]


def _summary(report: Report) -> list[str]:
    rss = ", ".join(
        f"{name} {peak / mebibyte:,.0f} MiB" for name, peak in sorted(report.peak_rss_bytes.items())
    )
    return [
        f"pgbench TPC-B-like: {_figure(report.pgbench_tps)} tps {report.pgbench_note}".rstrip(),
        f"peak RSS (server process and its children): {rss or '—'}",
        *(f"{name}: {value}" for name, value in report.machine.items()),
    ]


def render_text(report: Report) -> str:
    table = [list(columns), *(_cells(row) for row in report.rows)]
    widths = [max(len(line[index]) for line in table) for index in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([*lines, "", *_targets(report), "", *_summary(report)])


def render_markdown(report: Report) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in report.rows]
    lines += ["", *(f"- {line}" for line in _targets(report)), ""]
    lines += [f"- {line}" for line in _summary(report)]
    return "\n".join(lines) + "\n"


# --- the run ----------------------------------------------------------------------------

repository_root = Path(__file__).resolve().parents[2]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load.run", description=__doc__.splitlines()[0]
    )
    add = parser.add_argument
    add("--workloads", default=",".join(generator.WORKLOADS), help="comma-separated, in order")
    add("--phase-seconds", type=float, default=phase_seconds_default, help="each phase")
    add("--warm-up-seconds", type=float, default=warm_up_seconds_default, help="before each")
    add("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="processes")
    add("--concurrency", type=int, default=throughput_concurrency_default, help="closed loop")
    add("--stream-concurrency", type=int, default=stream_concurrency_default, help="streams")
    add("--checks-per-message", type=int, default=checks_per_message_default)
    add("--latency-rate-fraction", type=float, default=latency_rate_fraction_default)
    add("--customers", type=int, default=customers_default, help="phones enrolled and used")
    add("--h2load-clients", type=int, default=h2load_clients_default, help="connections")
    add("--h2load-streams", type=int, default=h2load_streams_per_client_default)
    add("--no-h2load", action="store_true", help="closed-loop generator instead of h2load")
    add("--pgbench-scale", type=int, default=pgbench_scale_default)
    add("--pgbench-seconds", type=float, default=pgbench_seconds_default)
    add("--pgbench-clients", type=int, default=pgbench_clients_default)
    add("--no-pgbench", action="store_true")
    add("--markdown", type=Path, help="also write the report here as Markdown")
    add("--data-dir", type=Path, help="kept afterwards; default: a temporary one, removed")
    arguments = parser.parse_args(argv)
    arguments.workloads = [name.strip() for name in arguments.workloads.split(",") if name]
    unknown = [name for name in arguments.workloads if name not in generator.WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {', '.join(generator.WORKLOADS)}")
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


def purse_server(settings: Any, data_dir: Path, port: int, http_port: int) -> ChildServer:
    """`purse serve` on 127.0.0.1, on migrated PostgreSQL and Redis (not started yet)."""
    return ChildServer(
        "purse",
        [sys.executable, "-m", "purse.cli", "serve"],
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


def start_servers(settings: Any, data_dir: Path, started: list[ChildServer]) -> Servers:
    """The Purse server and the echo server (appended to `started` as each starts)."""
    from purse.store.embedded import free_port

    purse_port, purse_http, echo_port, echo_http = (free_port() for _ in range(4))
    purse = purse_server(settings, data_dir, purse_port, purse_http)
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

    urls = ("PURSE_DATABASE_URL", "PURSE_REDIS_URL")
    settings = load_settings(
        environment={key: value for key, value in os.environ.items() if key in urls},
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
        servers = start_servers(resolved, data_dir, started)
        log(f"provisioning the demo business and {arguments.customers:,} customers")
        provisioned = asyncio.run(
            provision(resolved.database_url, servers.purse_address, arguments.customers)
        )
        report.machine = machine(provisioned.postgres_version)
        memory.watch("purse", servers.purse.pid)
        memory.watch("echo", servers.echo.pid)
        memory.start()
        purse = Target(
            servers.purse_address, provisioned.api_key, provisioned.phones, provisioned.currency
        )
        observed = {
            "purse": Observed(
                servers.purse.pid, servers.purse_http_port, database_pids(infrastructure)
            ),
            "echo": Observed(servers.echo.pid, servers.echo_http_port, []),
        }
        bench = Bench(
            arguments, purse, Target(servers.echo_address), observed, memory, data_dir,
            generator.new_run_id(), report,
        )  # fmt: skip
        for workload in arguments.workloads:
            measure(bench, workload)
        add_ceiling_ratios(report)
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


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    # Turned into an exception so that every `finally` runs: the servers, PostgreSQL and
    # Redis started for the run are stopped, as on Ctrl-C.
    for signal_number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signal_number, _interrupt)
    # SIGUSR1 prints where every thread is: a run that seems stuck can say where.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if not arguments.no_h2load and shutil.which("h2load") is None:
        log(f"h2load is missing; install it with:  {h2load_install_command}")
        log("(or run with --no-h2load to measure throughput with the Python generator only)")
        return 2
    temporary = arguments.data_dir is None
    data_dir = arguments.data_dir or Path(tempfile.mkdtemp(prefix="purse-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.monotonic()
    try:
        run_benchmark(arguments, data_dir, report)
    except (Interrupted, KeyboardInterrupt) as error:
        log(f"\n{error or 'interrupted'}; the servers it started are stopped")
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
        return 130
    except Exception as error:
        if report.rows:
            log("\nmeasured before the failure:\n" + render_text(report))
        log(f"\nthe benchmark failed: {error}\nlogs are kept in {data_dir}")
        return 1
    log(f"\nfinished in {time.monotonic() - started:.0f} s\n")
    log(render_text(report))
    if arguments.markdown is not None:
        arguments.markdown.parent.mkdir(parents=True, exist_ok=True)
        arguments.markdown.write_text(render_markdown(report))
        log(f"\nMarkdown written to {arguments.markdown}")
    if temporary:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
