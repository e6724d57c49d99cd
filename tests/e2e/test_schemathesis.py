"""Schemathesis against the OpenAPI document a real server serves (`/openapi.json`).

`schemathesis run` generates requests from the document and checks each answer: never a
server error, a status code and a content type the document declares, a body that matches
the declared schema, and every body the document calls invalid refused 4xx. Positive data
acceptance is not checked: valid bodies generated at random name programs, terminals and
customers that do not exist, and are rightly refused.

Four runs, each with a business of its own made through the API: the cash desk's key on
`purse.v1.TerminalService` (the NDJSON stream included, through `schemathesis_hooks.py`),
the owner's API key on `purse.admin.v1.AdminService`, an operator key on
`purse.platform.v1.PlatformService`, and no credential on every path. That last run skips
the coverage phase, whose thousands of malformed bodies the runs with a key send already;
its fuzzing phase shows every method refused.

Bounded and repeatable: generation is deterministic (the same cases every run, so no seed
is involved), with at most `operation_examples_max` examples an operation, and the command
must finish within `run_seconds_max`. Not schemathesis's `--max-time`: with it, fuzzing
repeats until the time is spent, so what runs would depend on the machine's speed.

A refused call changes nothing. Without a credential every call is refused, and the
business's rows (in every table with a business_id) are the same after the run; so are
they after the operator's run, whose calls may found businesses but touch none. With a
key, the rows change only if a call that may change them was accepted (not a read, not a
stream whose every check was refused), and the audit log grows by at most one entry such
a call (a change writes at most one), so a refused call that wrote one would show.
`purse audit` is clean after the runs with a key.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from support import ServerProcess, Tenant, assert_audit_is_clean, operator_key

from purse.config import Settings

operation_examples_max = 10
run_seconds_max = 90.0
# What a failing run's output shows of its end, where schemathesis lists the failures.
output_characters_shown_max = 20_000
_checks = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
_hooks = Path(__file__).with_name("schemathesis_hooks.py")
# Operations whose names start so only read: an accepted one writes no audit entry.
_reading_verbs = ("Get", "List", "Find", "Search", "Calculate")
_terminal_paths = r"^/purse\.v1\.TerminalService/"
_administrator_paths = r"^/purse\.admin\.v1\.AdminService/"
_operator_paths = r"^/purse\.platform\.v1\.PlatformService/"


@dataclass(frozen=True)
class Answer:
    """One call of a run as its HAR report holds it."""

    method: str
    status: int
    body: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def may_change(self) -> bool:
        """Whether the call was accepted and may have changed something: not a read, and
        not a stream whose every check was refused."""
        if not self.accepted or self.method.startswith(_reading_verbs):
            return False
        if self.method != "ProcessChecks":
            return True
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        return any("processed" in result for line in lines for result in line.get("results", []))


async def schemathesis_run(
    server: ServerProcess,
    paths: str,
    credential: str | None,
    directory: Path,
    phases: str = "examples,coverage,fuzzing",
) -> list[Answer]:
    """`schemathesis run` on the operations whose paths match `paths`; fails the test with
    schemathesis's account when any check failed."""
    report, output = directory / "calls.har", directory / "output.txt"
    arguments = [
        f"http://127.0.0.1:{server.http_port}/openapi.json",
        f"--include-path-regex={paths}",
        f"--checks={','.join(_checks)}",
        f"--phases={phases}",
        f"--max-examples={operation_examples_max}",
        "--generation-deterministic",
        "--workers=1",
        "--continue-on-failure",
        "--no-color",
        # The keys are this test's own; unfiltered, a failure shows the request as sent.
        "--output-sanitize=false",
        "--report=har",
        f"--report-har-path={report}",
    ]
    if credential is not None:
        arguments.append(f"--header=Authorization: Bearer {credential}")
    with output.open("wb") as written:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            *arguments,
            stdout=written,
            stderr=asyncio.subprocess.STDOUT,
            cwd=directory,
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(_hooks)},
        )
        try:
            code = await asyncio.wait_for(process.wait(), run_seconds_max)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    account = output.read_text(errors="replace")
    assert code == 0, account[-output_characters_shown_max:]
    entries = json.loads(report.read_text())["log"]["entries"]
    return [
        Answer(
            entry["request"]["url"].rsplit("/", 1)[-1],
            entry["response"]["status"],
            entry["response"]["content"].get("text", ""),
        )
        for entry in entries
    ]


async def business_rows(pool: asyncpg.Pool, business_id: int) -> dict[str, list[str]]:
    """Every row of the business, as JSON text, in every table that has a business_id."""
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_name = 'business_id'"
        " ORDER BY table_name"
    )
    rows: dict[str, list[str]] = {}
    for table in tables:
        name = table["table_name"]
        found = await pool.fetch(
            f'SELECT row_to_json(t)::text AS row FROM "{name}" t WHERE business_id = $1 ORDER BY 1',
            business_id,
        )
        rows[name] = [record["row"] for record in found]
    return rows


async def assert_only_accepted_calls_changed_the_business(
    pool: asyncpg.Pool, business_id: int, before: dict[str, list[str]], answers: list[Answer]
) -> None:
    """Nothing changed unless a call that may change was accepted, and the audit log grew
    by at most one entry such a call (each change writes at most one)."""
    after = await business_rows(pool, business_id)
    changes = sum(1 for answer in answers if answer.may_change)
    if changes == 0:
        assert after == before
    assert len(after["audit_log"]) - len(before["audit_log"]) <= changes


@pytest.mark.parametrize("caller", ["terminal", "administrator"])
async def test_the_terminal_and_admin_services_answer_as_their_document_says_to_their_keys(
    server: ServerProcess,
    business: Tenant,
    pool: asyncpg.Pool,
    infrastructure: Settings,
    tmp_path: Path,
    caller: str,
) -> None:
    paths, credential = {
        "terminal": (_terminal_paths, business.cash_desk.api_key),
        "administrator": (_administrator_paths, business.administrator_api_key),
    }[caller]
    before = await business_rows(pool, business.business_id)
    answers = await schemathesis_run(server, paths, credential, tmp_path)
    await assert_only_accepted_calls_changed_the_business(
        pool, business.business_id, before, answers
    )
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def test_the_platform_service_answers_as_its_document_says_to_the_operator(
    server: ServerProcess, business: Tenant, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    before = await business_rows(pool, business.business_id)
    await schemathesis_run(server, _operator_paths, await operator_key(pool), tmp_path)
    assert await business_rows(pool, business.business_id) == before


async def test_every_call_without_a_credential_is_refused_as_documented_and_changes_nothing(
    server: ServerProcess, business: Tenant, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    before = await business_rows(pool, business.business_id)
    businesses = await pool.fetchval("SELECT count(*) FROM businesses")
    answers = await schemathesis_run(server, "^/", None, tmp_path, phases="examples,fuzzing")
    assert [answer for answer in answers if answer.accepted] == []
    assert await business_rows(pool, business.business_id) == before
    assert await pool.fetchval("SELECT count(*) FROM businesses") == businesses
