"""The load generator (benchmarks/load) is a correct tool: against a real server it sends
every call it schedules, records each answer once, and counts refusals by status code.

These are correctness tests of the tool at a low rate; nothing here asserts a timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from support import ServerProcess, Tenant, new_phone

from purse.store.embedded import EmbeddedRedis, free_port
from purse.v1 import terminal_service_pb2 as pb

# benchmarks/ is not an installed package: import it from the repository, as `make` does.
_repository = Path(__file__).resolve().parents[2]
if str(_repository) not in sys.path:
    sys.path.insert(0, str(_repository))

from benchmarks.load import generator, run  # noqa: E402
from benchmarks.load.generator import LoadSpec, Target  # noqa: E402

identify_method = generator.WORKLOADS["identify"]


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, http_port = free_port(), free_port()
    server = run.ChildServer(
        "echo",
        [
            sys.executable,
            "-m",
            "benchmarks.load.echo_server",
            f"--port={port}",
            f"--http-port={http_port}",
        ],
        run._child_environment({}),
        tmp_path_factory.mktemp("echo") / "echo.log",
    )
    address = f"127.0.0.1:{port}"
    server.start(lambda: run._echo_answers(address))
    yield address
    server.stop()


async def test_latency_mode_sends_every_scheduled_call_and_records_each_once(
    server: ServerProcess, business: Tenant
) -> None:
    target = Target(
        server.target, business.cash_desk.api_key, tuple(new_phone() for _ in range(20))
    )
    spec = LoadSpec(
        "identify",
        "latency",
        duration_seconds=2.0,
        workers=2,
        rate_per_second=150.0,
        warm_up_seconds=0.0,
        run_id=generator.new_run_id(),
    )
    starts: list[bool] = []
    before = run.server_calls(server.http_port)[(identify_method, "OK")]

    result = await asyncio.to_thread(generator.run_load, spec, target, lambda: starts.append(True))

    scheduled = 300  # 150 calls/s for 2 s
    assert starts == [True]
    assert not result.errors
    assert result.calls == result.calls_ok == result.items_ok == scheduled
    assert result.histogram.get_total_count() == scheduled
    latency_p50 = result.latency_ms(50)
    assert latency_p50 is not None and latency_p50 > 0
    after = run.server_calls(server.http_port)[(identify_method, "OK")]
    assert after - before == scheduled


async def test_a_latency_run_stops_sending_once_its_stop_event_is_set(echo_server: str) -> None:
    spec = LoadSpec(
        "empty", "latency", duration_seconds=60.0, workers=2, rate_per_second=100.0,
        warm_up_seconds=0.0,
    )  # fmt: skip
    stop = generator.stop_event()

    # Set at the first progress report, about a second in: 6,000 calls were scheduled.
    result = await asyncio.to_thread(
        generator.run_load, spec, Target(echo_server), None, lambda *_: stop.set(), stop
    )

    assert not result.errors  # the calls never sent are not counted as a backlog
    assert 50 <= result.calls == result.calls_ok <= 300
    assert result.histogram.get_total_count() == result.calls


@pytest.mark.parametrize("workload", ["identify", "http-identify"])
async def test_refusals_are_counted_by_status_code_and_kept_out_of_the_histogram(
    server: ServerProcess, workload: str
) -> None:
    # Over HTTP, by the gRPC code of the answer's Connect error (401 "unauthenticated").
    http_address = f"127.0.0.1:{server.http_port}"
    target = Target(server.target, "purse_key_wrong", (new_phone(),), http_address=http_address)
    spec = LoadSpec(
        workload, "latency", duration_seconds=1.0, rate_per_second=50.0, warm_up_seconds=0.0
    )

    result = await asyncio.to_thread(generator.run_load, spec, target)

    assert result.errors == {"UNAUTHENTICATED": 50}
    assert result.calls == 50
    assert result.calls_ok == 0
    assert result.histogram.get_total_count() == 0
    assert result.latency_ms(99) is None


async def test_http_json_calls_are_all_sent_answered_and_counted_by_the_server(
    server: ServerProcess, business: Tenant
) -> None:
    target = Target(
        server.target,
        business.cash_desk.api_key,
        tuple(new_phone() for _ in range(20)),
        http_address=f"127.0.0.1:{server.http_port}",
    )
    before = run.server_calls(server.http_port)
    latency = LoadSpec(
        "http-identify", "latency", duration_seconds=1.0, rate_per_second=100.0,
        warm_up_seconds=0.0,
    )  # fmt: skip
    throughput = LoadSpec(
        "http-process", "throughput", duration_seconds=1.0, concurrency=4, warm_up_seconds=0.0,
        run_id=generator.new_run_id(),
    )  # fmt: skip

    identified = await asyncio.to_thread(generator.run_load, latency, target)
    processed = await asyncio.to_thread(generator.run_load, throughput, target)

    after = run.server_calls(server.http_port)
    assert not identified.errors
    assert identified.calls == identified.calls_ok == identified.histogram.get_total_count() == 100
    assert after[(identify_method, "OK")] - before[(identify_method, "OK")] == 100
    assert not processed.errors
    assert processed.calls == processed.calls_ok > 0
    process_method = generator.WORKLOADS["http-process"]
    assert after[(process_method, "OK")] - before[(process_method, "OK")] == processed.calls


async def test_throughput_mode_against_the_echo_server_counts_every_answer(
    echo_server: str,
) -> None:
    spec = LoadSpec("empty", "throughput", duration_seconds=1.0, concurrency=8, warm_up_seconds=0.2)

    result = await asyncio.to_thread(generator.run_load, spec, Target(echo_server))

    assert not result.errors
    assert result.calls > 0
    assert result.calls == result.calls_ok == result.histogram.get_total_count()


def test_process_requests_carry_a_unique_check_number_and_the_ten_line_check() -> None:
    target = Target("127.0.0.1:1", "key", ("+380630000001", "+380630000002"))
    unary = generator.Requests("process", target, "run", 1, 2, 1)
    first = pb.ProcessCheckRequest.FromString(unary.message(7))
    assert first.check_number == "run-1-7"
    assert len(first.check.lines) == 10
    assert first.identifier.phone == "+380630000002"  # call 7 * 2 workers + worker 1 = 15

    stream = generator.Requests("process-stream", target, "run", 0, 1, 3)
    message = pb.ProcessChecksRequest.FromString(stream.message(4))
    assert [check.check_number for check in message.checks] == [
        "run-0-4-0",
        "run-0-4-1",
        "run-0-4-2",
    ]
    assert all(len(check.check.lines) == 10 for check in message.checks)


def test_h2load_summary_is_parsed_and_requests_are_framed() -> None:
    output = """
finished in 4.01s, 8597.00 req/s, 500.16KB/s
requests: 25791 total, 25791 started, 25791 done, 25790 succeeded, 1 failed, 0 errored, 0 timeout
status codes: 25790 2xx, 0 3xx, 0 4xx, 1 5xx
                     min         max         mean         sd        +/- sd
time for request:      189us    107.91ms     14.94ms      9.07ms    92.30%
"""
    parsed = run.parse_h2load(output)
    assert parsed.requests_per_second == 8597.0
    assert (parsed.succeeded, parsed.failed) == (25790, 1)
    assert parsed.statuses["5xx"] == 1
    assert parsed.mean_ms == pytest.approx(14.94)
    assert run.grpc_frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    with pytest.raises(ValueError, match="no summary"):
        run.parse_h2load("connect failed")


def test_sigterm_stops_the_benchmark_and_every_server_it_started(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PURSE_")}
    runner = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.load.run", "--workloads=empty", "--no-h2load",
         "--no-pgbench", "--phase-seconds=60", "--customers=10", f"--data-dir={tmp_path}"],
        cwd=_repository, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    started: list[psutil.Process] = []
    servers: list[int] = []
    try:
        assert runner.stdout is not None
        early: list[str] = []
        for line in runner.stdout:  # bounded by the pytest timeout
            early.append(line)
            if "empty / " in line:
                break
        else:
            raise AssertionError("the runner ended before measuring:\n" + "".join(early[-100:]))
        started = psutil.Process(runner.pid).children(recursive=True)
        servers = [
            int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0]),
            int(EmbeddedRedis(tmp_path).pid_path.read_text().strip()),
        ]
        assert started and all(psutil.pid_exists(pid) for pid in servers)
        # The rest of the output is drained on a thread and the runner itself awaited:
        # `communicate` would also wait for every process that inherited the pipe.
        lines: list[str] = []
        drain = threading.Thread(target=lambda: lines.extend(runner.stdout or ()), daemon=True)
        drain.start()
        runner.send_signal(signal.SIGTERM)
        try:
            runner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            runner.send_signal(signal.SIGUSR1)  # the runner prints where its threads are
            time.sleep(2)
            runner.kill()
            drain.join(timeout=5)
            raise AssertionError("the runner did not stop:\n" + "".join(lines[-200:])) from None
        drain.join(timeout=5)
        assert runner.returncode == 130, "".join(lines)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _any_alive(started, servers):
            time.sleep(0.1)
        assert not _any_alive(started, servers)
    finally:  # what a failing runner left behind must not outlive the test
        runner.kill()
        for process in started:
            with contextlib.suppress(psutil.Error):
                process.kill()
        for pid in servers:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def _any_alive(processes: list[psutil.Process], pids: list[int]) -> bool:
    def alive(process: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        return False

    def alive_pid(pid: int) -> bool:
        with contextlib.suppress(psutil.Error):
            return alive(psutil.Process(pid))
        return False

    return any(alive(process) for process in processes) or any(alive_pid(pid) for pid in pids)
