"""The load benchmark's arithmetic (benchmarks/load): each target of the issue judged from
one run's figures, the soak's RSS slope, and the customers a run's calls go to."""

from __future__ import annotations

import itertools
import pickle
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purse.v1 import terminal_service_pb2 as pb

# benchmarks/ is not an installed package: import it from the repository, as `make` does.
_repository = Path(__file__).resolve().parents[2]
if str(_repository) not in sys.path:
    sys.path.insert(0, str(_repository))

from benchmarks.load import generator, run  # noqa: E402
from benchmarks.load.run import LargeBusiness, Report, Row, Soak  # noqa: E402

mebibyte = 1024 * 1024


def one_run() -> Report:
    """A run's figures: some targets met, some not (the comments say which)."""
    report = Report(pgbench_tps=2_000.0, customers=10_000)
    report.rows = [
        Row("empty", "h2load", per_second=10_000.0),
        Row("empty", "throughput", per_second=6_000.0),
        Row("identify", "h2load", per_second=5_500.0),  # 0.55 × h2load: met
        Row("identify", "throughput", per_second=1_200.0),  # 0.20 × closed loop: not shown
        Row("http-identify", "h2load", per_second=3_300.0),  # 0.60 × gRPC's h2load: met
        Row("http-identify", "throughput", per_second=500.0),  # closed loop: not shown
        Row("process", "throughput", per_second=1_800.0),  # 0.30 ×: NOT MET
        Row("process", "latency", per_second=900.0, p99_ms=18.5),  # met
        Row("http-process", "throughput", per_second=810.0),  # 0.45 × gRPC's: NOT MET
        # 1.6 × pgbench: met; server CPU NOT MET; PostgreSQL CPU met
        Row(
            "process-stream",
            "throughput",
            per_second=3_200.0,
            server_cpu_us=180.0,
            postgres_cpu_us=65.0,
        ),
        Row("process-stream-large", "throughput", per_second=2_720.0),  # 0.85 ×: NOT MET
    ]
    report.large = LargeBusiness(1_000_000, 21.5, 1.2)
    run.add_ceiling_ratios(report)
    return report


def verdicts(report: Report) -> dict[str, str]:
    """Each target line by the start of its wording, to its verdict."""
    found = {}
    for line in run._targets(report):
        what, _, figures = line.partition(": ")
        found[what] = figures.rpartition(" — ")[2] if " — " in figures else figures
    return found


def test_every_target_of_the_issue_is_listed_and_not_measured_before_anything_ran() -> None:
    lines = run._targets(Report())

    assert len(lines) == 10
    soak = lines.pop(7)
    assert all(line.endswith(": not measured") for line in lines)
    assert soak.endswith(": not measured (no --soak-seconds)")


def test_each_target_is_met_or_not_by_the_figures_of_the_same_run() -> None:
    assert verdicts(one_run()) == {
        "ProcessChecks ≥ 1.5 × pgbench TPC-B": "met",
        "server CPU per streamed check ≤ 150 µs": "NOT MET",
        "PostgreSQL CPU per streamed check ≤ 70 µs": "met",
        "unary ProcessCheck ≥ 0.35 × the empty call": "NOT MET",
        "ProcessCheck p99 ≤ 20 ms at half its throughput": "met",
        "IdentifyCustomer ≥ 0.5 × the empty call": "met",
        "ProcessChecks with 1,000,000 memberships within 10% of the figure with 10,000": (
            "NOT MET"
        ),
        "RSS flat within 10% over a soak at half load": "not measured (no --soak-seconds)",
        "HTTP/JSON IdentifyCustomer ≥ 0.5 × gRPC": "met",
        "HTTP/JSON ProcessCheck ≥ 0.5 × gRPC": "NOT MET",
    }


def test_each_target_shows_the_figures_it_was_judged_on() -> None:
    lines = run._targets(one_run())

    assert "1.60 × (3,200 checks/s against 2,000 tps)" in lines[0]
    assert "0.30 × (1,800 against 6,000 calls/s, throughput)" in lines[3]
    assert "18.50 ms at 900 calls/s" in lines[4]
    assert "0.55 × (5,500 against 10,000 calls/s, h2load)" in lines[5]
    assert "0.85 × (2,720 against 3,200 checks/s)" in lines[6]
    assert "0.60 × (3,300 against 5,500 calls/s, h2load)" in lines[8]
    assert "0.45 × (810 against 1,800 calls/s, throughput)" in lines[9]


def test_identify_is_judged_in_closed_loop_when_h2load_did_not_run() -> None:
    report = one_run()
    report.rows = [row for row in report.rows if row.mode != "h2load"]

    lines = run._targets(report)

    assert "0.20 × (1,200 against 6,000 calls/s, throughput)" in lines[5]
    assert lines[5].endswith("NOT MET")
    assert "0.42 × (500 against 1,200 calls/s, throughput)" in lines[8]
    assert lines[8].endswith("NOT MET")


@pytest.mark.parametrize(("large_checks", "verdict"), [(3_500.0, "met"), (3_600.0, "NOT MET")])
def test_the_large_business_may_be_neither_much_slower_nor_much_faster(
    large_checks: float, verdict: str
) -> None:
    report = one_run()
    large = report.row("process-stream-large", "throughput")
    assert large is not None
    large.per_second = large_checks  # 1.09 × and 1.125 × the stream's 3,200

    assert run._targets(report)[6].endswith(f"— {verdict}")


def soak_of(rss_mebibytes: list[float], gc_collections: list[int] | None = None) -> Soak:
    soak = Soak(seconds=float(len(rss_mebibytes) - 1), rate_per_second=10.0)
    soak.samples = [
        (float(second), round(rss * mebibyte)) for second, rss in enumerate(rss_mebibytes)
    ]
    soak.checks = 2_000
    soak.gc_collections = gc_collections
    return soak


@pytest.mark.parametrize(
    ("rss_mebibytes", "verdict"),
    [([100, 104, 109, 103], "met"), ([100, 111, 101, 100], "NOT MET"), ([100, 90, 95], "met")],
)
def test_rss_is_flat_when_no_sample_is_more_than_a_tenth_above_the_first(
    rss_mebibytes: list[float], verdict: str
) -> None:
    report = Report(soak=soak_of(rss_mebibytes))

    assert run._targets(report)[7].endswith(f"— {verdict}")


def test_the_soak_reports_rss_at_start_max_and_end_its_slope_and_young_collections() -> None:
    soak = soak_of([100 + second / 120 for second in range(601)], gc_collections=[40, 3, 1])

    summary = run._soak_summary(soak)

    assert "RSS start 100.0 MiB (after warm-up), max 105.0, end 105.0" in summary[0]
    assert "slope +0.50 MiB/min (+5.0% of the start over the soak)" in summary[0]
    assert "young 40 (20.0 per 1,000 checks), older 3, 1" in summary[1]
    assert run._targets(Report(soak=soak))[7].endswith("— met")


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0, 1e9),
    slope=st.floats(-1e6, 1e6),
    seconds=st.lists(st.integers(0, 3_600), min_size=2, max_size=50, unique=True),
)
def test_samples_on_a_straight_line_have_its_slope(
    start: float, slope: float, seconds: list[int]
) -> None:
    samples = [(float(second), round(start + slope * second)) for second in seconds]

    assert run.slope_per_second(samples) == pytest.approx(slope, abs=1.0)


def test_a_single_sample_or_one_moment_has_no_slope() -> None:
    assert run.slope_per_second([(0.0, 100)]) == 0.0
    assert run.slope_per_second([(5.0, 100), (5.0, 200)]) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20_000))
def test_calls_visit_every_customer_once_before_any_twice(count: int) -> None:
    step = generator.spread_step(count)

    assert sorted(call * step % count for call in range(count)) == list(range(count))


def test_consecutive_calls_go_to_customers_far_apart_in_a_large_business() -> None:
    phones = generator.PhoneNumbers("+38067", 1_000_000)
    requests = generator.Requests("identify", generator.Target("x", "k", phones), "r", 0, 1, 1)

    indexes = [
        int(pb.IdentifyCustomerRequest.FromString(requests.message(call)).identifier.phone[6:])
        for call in range(100)
    ]

    assert len(set(indexes)) == 100
    assert min(abs(earlier - later) for earlier, later in itertools.pairwise(indexes)) > 100_000


def test_phone_numbers_are_computed_not_stored() -> None:
    phones = generator.PhoneNumbers("+38067", 1_000_000)

    assert len(phones) == 1_000_000
    assert phones[0] == "+380670000000"
    assert phones[-1] == phones[999_999] == "+380670999999"
    assert list(phones[10:13]) == ["+380670000010", "+380670000011", "+380670000012"]
    assert len(pickle.dumps(phones)) < 200
    with pytest.raises(IndexError):
        phones[1_000_000]


def test_a_request_names_the_same_customer_whether_kept_ready_or_made_again() -> None:
    count = generator.prepared_customers_max + 5_000
    phones = generator.PhoneNumbers("+38067", count)
    requests = generator.Requests("identify", generator.Target("x", "k", phones), "r", 0, 1, 1)
    step = generator.spread_step(count)

    first = [requests.message(call) for call in range(count)]
    again = [requests.message(call) for call in range(count)]

    assert first == again
    named = [pb.IdentifyCustomerRequest.FromString(message).identifier.phone for message in first]
    assert named == [phones[call * step % count] for call in range(count)]


def test_h2load_over_http1_counts_only_2xx_answers_as_calls_and_the_rest_as_errors() -> None:
    arguments = run.parse_arguments([])
    parsed = run.H2loadResult(
        requests_per_second=4_000.0,  # every answer, errors included
        succeeded=7_000,
        failed=1_000,
        errored=2,
        timed_out=1,
        statuses={"2xx": 6_000, "3xx": 0, "4xx": 1_500, "5xx": 500},
        mean_ms=3.0,
    )

    share, errors, notes = run._h2load_http1_outcome(arguments, parsed)

    assert share == 0.75
    # (a Counter: the classes h2load saw none of count 0)
    assert errors == Counter(
        {"HTTP_4xx": 1_500, "HTTP_5xx": 500, "H2LOAD_ERRORED": 2, "H2LOAD_TIMEOUT": 1}
    )
    assert notes == ["128 HTTP/1.1 connections"]


def test_h2load_sends_http_json_on_as_many_http1_connections_as_grpc_has_streams() -> None:
    arguments = run.parse_arguments(["--h2load-clients=2", "--h2load-streams=8"])
    target = generator.Target("127.0.0.1:50051", "key", http_address="127.0.0.1:8080")
    method = generator.WORKLOADS["http-identify"]

    http1 = run.h2load_command(arguments, target, method, Path("body.json"), http1=True)
    grpc = run.h2load_command(arguments, target, method, Path("body.grpc"), http1=False)

    assert {"--h1", "--clients=16", "--max-concurrent-streams=1"} <= set(http1)
    assert "--header=content-type: application/json" in http1
    assert http1[-1] == "http://127.0.0.1:8080/purse.v1.TerminalService/IdentifyCustomer"
    assert {"--clients=2", "--max-concurrent-streams=8"} <= set(grpc)
    assert "--h1" not in grpc
    assert grpc[-1] == "http://127.0.0.1:50051/purse.v1.TerminalService/IdentifyCustomer"
    assert (
        "--header=authorization: Bearer key" in http1
        and "--header=authorization: Bearer key" in grpc
    )


def test_http_workloads_run_right_after_the_grpc_workload_whose_calls_they_send() -> None:
    order = list(run.WORKLOADS)

    for http, grpc in generator.HTTP_WORKLOADS.items():
        assert order.index(http) == order.index(grpc) + 1
