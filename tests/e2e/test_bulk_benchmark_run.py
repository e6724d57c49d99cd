"""The bulk credit benchmark (benchmarks/bulk) is a correct tool: run end to end at a small
scale, it credits exactly the memberships it built, each once in each of its three
operations, measures the sales alone and during a credit, and writes its report.

A correctness test of the tool; nothing here asserts a timing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_repository = Path(__file__).resolve().parents[2]
tills_customers = 40
credited_customers = 700
run_seconds_max = 120


@pytest.mark.timeout(run_seconds_max + 30)
def test_a_small_run_credits_each_built_membership_once_per_operation_and_reports(
    tmp_path: Path,
) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PURSE_")}
    # Chunks of 100: the credit takes several chunks and batches, as at full scale.
    environment["PURSE_BULK_CHUNK_CUSTOMERS_MAX"] = "100"
    markdown = tmp_path / "bench-bulk.md"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.bulk.run", f"--customers={tills_customers}",
         f"--bulk-customers={credited_customers}", "--sales-rate=40", "--sales-seconds=1",
         "--warm-up-seconds=0.2", "--concurrency=4", f"--markdown={markdown}",
         f"--data-dir={tmp_path / 'data'}"],
        check=False, cwd=_repository, env=environment, capture_output=True, text=True,
        timeout=run_seconds_max,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-4000:]
    report = markdown.read_text()
    count = f"{credited_customers:,}"
    once = f"done {count} of {count}, {count} credited once"
    for phase in ("first, into no lots", "alone", "with sales"):
        assert f"{phase}: succeeded, {once}" in report
    durable = [line for line in report.splitlines() if line.startswith("- durable")]
    assert durable and durable[0].endswith(" — met"), report
    assert (
        f"holds {tills_customers + credited_customers + 1:,} memberships: {tills_customers} "
        f"enrolled for the tills, {credited_customers:,} built by COPY"
    ) in report
    sales = [
        line for line in report.splitlines() if line.startswith(("| alone | 40.0", "| during"))
    ]
    assert len(sales) == 2, report
    assert all(line.endswith("| 0 |") for line in sales), sales  # no sale refused
    assert "PURSE_BULK_CHUNK_CUSTOMERS_MAX=100" in report
