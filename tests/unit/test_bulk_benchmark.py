"""The bulk credit benchmark's arithmetic (benchmarks/bulk): each target judged from one
run's figures, what counts as durable, the selection it credits, and how much of the
credit ran while the sales did."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from purse.admin.v1 import customers_pb2 as lists

# benchmarks/ is not an installed package: import it from the repository, as `make` does.
_repository = Path(__file__).resolve().parents[2]
if str(_repository) not in sys.path:
    sys.path.insert(0, str(_repository))

from benchmarks.bulk import operation, run  # noqa: E402
from benchmarks.bulk.operation import Draft, Durability, Watcher  # noqa: E402
from benchmarks.bulk.run import BulkRow, Report, SalesRow  # noqa: E402

started_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def stored(total: int = 100_000, seconds: float = 8.0, **changed: Any) -> Durability:
    """An operation as the database holds it after a clean run, with `changed` fields."""
    figures: dict[str, Any] = {
        "state": "succeeded",
        "total": total,
        "done": total,
        "failed": 0,
        "rejected": 0,
        "started_at": started_at,
        "finished_at": started_at + timedelta(seconds=seconds),
        "members": total,
        "credited_once": total,
        "transactions": total,
        "ledger_entries": total,
    }
    return Durability(**{**figures, **changed})


def one_run() -> Report:
    """A run's figures: the credit fast enough with sales, their p99 not within 2×."""
    report = Report()
    report.sales = [
        SalesRow(run.alone, 800.0, 20.0, 799.0, 4.0, 8.0, 12.0, 20.0, server_cpu_us=600.0),
        SalesRow(run.during, 800.0, 8.0, 797.0, 6.0, 20.0, 30.0, 45.0),  # 2.5 ×: NOT MET
    ]
    alone = BulkRow(run.alone, 100_000, 3.2, stored(seconds=8.0), polled_seconds=8.1)
    with_sales = BulkRow(run.with_sales, 100_000, 3.4, stored(seconds=9.5), polled_seconds=9.6)
    with_sales.done_with_sales, with_sales.with_sales_seconds = 88_000, 8.0  # 11,000/s: met
    report.bulk = [alone, with_sales]
    return report


def verdicts(report: Report) -> list[str]:
    return [line.rpartition(" — ")[2] for line in run.targets(report)[:3]]


def test_each_target_is_met_or_not_by_the_figures_of_the_same_run() -> None:
    lines = run.targets(one_run())

    assert verdicts(one_run()) == ["met", "NOT MET", "met"]
    assert "11,000 customers/s (88,000 in 8.0 s of sales" in lines[0]
    assert "10,526 by the database's times" in lines[0]
    assert "2.50 × (30.00 ms against 12.00 ms at 800.0 calls/s)" in lines[1]
    assert "12,500 customers/s by the database's times — at least 10,000" in lines[3]


def test_nothing_is_judged_before_anything_ran() -> None:
    lines = run.targets(Report())

    assert all(line.endswith(": not measured") for line in lines[:3])


def test_a_credit_slower_than_the_target_while_sales_run_misses_it() -> None:
    report = one_run()
    row = report.bulk_row(run.with_sales)
    assert row is not None
    row.done_with_sales = 79_000  # 9,875 customers/s over the 8 s of sales

    assert verdicts(report)[0] == "NOT MET"


@pytest.mark.parametrize(
    "changed",
    [
        {"state": "running"},
        {"done": 99_999, "failed": 1},
        {"credited_once": 99_999},  # a member with two entries, or none
        {"ledger_entries": 100_001},
        {"transactions": 100_001},
        {"members": 100_001},
    ],
)
def test_a_credit_is_durable_only_when_every_member_has_one_transaction_and_one_entry(
    changed: dict[str, Any],
) -> None:
    report = one_run()
    report.bulk[1].stored = stored(seconds=9.5, **changed)

    assert stored().holds
    assert not report.bulk[1].stored.holds
    assert verdicts(report)[2] == "NOT MET"


def test_the_credit_selects_exactly_the_customer_ids_of_the_range() -> None:
    request = operation.credit_request(7, range(1_002, 101_002))

    conditions = [each.condition for each in request.selection.filter.all]
    assert [(each.operator, each.value.integer) for each in conditions] == [
        (lists.FILTER_OPERATOR_MORE_THAN, 1_001),
        (lists.FILTER_OPERATOR_LESS_THAN, 101_002),
    ]
    assert {each.column for each in conditions} == {lists.CUSTOMER_COLUMN_CUSTOMER_ID}
    credit = request.action.credit_points
    assert (credit.points_hundredths, credit.valid_days) == (50_00, 14)
    assert request.terminal_id == 7


def test_members_done_by_a_moment_are_the_last_count_seen_at_or_before_it() -> None:
    watcher = Watcher(None, Draft(1, "token", 100, 0.1), "credit", started=50.0)  # type: ignore[arg-type]
    watcher.samples += [(0.1, 0), (1.0, 900), (2.0, 2_100), (2.1, 2_200)]

    assert watcher.done_by(50.0) == 0
    assert watcher.done_by(52.05) == 2_100
    assert watcher.done_by(60.0) == 2_200
    assert watcher.finished_seconds() is None  # never seen to end


def test_the_report_renders_as_markdown_and_as_aligned_text() -> None:
    report = one_run()

    markdown = run.render(report, markdown=True)
    text = run.render(report, markdown=False)

    assert "| alone | 800.0 | 799.0 | 4.00 | 8.00 | 12.00 | 20.00 | 600 | 0 |" in markdown
    assert "- sales p99 during the bulk credit ≤ 2 × alone: 2.50 ×" in markdown
    header, rule, first, second = text.splitlines()[:4]
    # Each column as wide as its widest cell ("during the bulk credit"), two spaces apart.
    assert header.index("offered calls/s") == len(run.during) + 2 == first.index("800.0")
    assert second.startswith(run.during)
    assert set(rule) == {"-", " "}
