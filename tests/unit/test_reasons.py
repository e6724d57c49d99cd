"""Every reason word the server can answer with is in the catalogue, and every word in
the catalogue is one the server uses; each error reason says what to do, and the
published catalogue (docs/errors.md) is the catalogue's."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from google.rpc import code_pb2

from purse import cli
from purse.admin.v1 import admin_service_pb2, setup_pb2
from purse.domain import reasons
from purse.domain.errors import FailedPrecondition
from purse.domain.transactions import Refusal
from purse.platform.v1 import platform_service_pb2
from purse.v1 import common_pb2, terminal_service_pb2

# The server's source (purse is a namespace package: reasons.py is in purse/domain).
_source = Path(reasons.__file__).parents[1]
_word = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
# UPPER_SNAKE strings in the source that are names, not reasons: files, variables, and
# the contract's enum values (and, below, Purse's and OpenTelemetry's settings).
_not_reasons = {
    "PG_VERSION",
    "PROMETHEUS_MULTIPROC_DIR",
    # os.sysconf names (the embedded PostgreSQL sizes its buffers by memory).
    "SC_PAGE_SIZE",
    "SC_PHYS_PAGES",
    *(
        value.name
        for module in (
            common_pb2,
            terminal_service_pb2,
            admin_service_pb2,
            setup_pb2,
            platform_service_pb2,
        )
        for enum in module.DESCRIPTOR.enum_types_by_name.values()
        for value in enum.values
    ),
}
_settings = ("PURSE_", "OTEL_")
_catalogued = {
    *reasons.ERROR_REASONS,
    *reasons.NOT_APPLIED_REASONS,
    *reasons.DELIVERY_REASONS,
}


def _strings_in_source() -> set[str]:
    return {
        node.value
        for path in _source.rglob("*.py")
        if path.parent.name != "v1" and path.name != "reasons.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _words_in_source() -> dict[str, set[str]]:
    """UPPER_SNAKE strings of two words or more, by where they stand."""
    found: dict[str, set[str]] = {}
    for path in _source.rglob("*.py"):
        if path.parent.name == "v1" or path.name == "reasons.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                word = node.value
                if (
                    _word.match(word)
                    and word not in _not_reasons
                    and not word.startswith(_settings)
                ):
                    found.setdefault(word, set()).add(str(path.relative_to(_source)))
    return found


def test_every_reason_in_the_source_is_catalogued() -> None:
    unknown = {word: places for word, places in _words_in_source().items()
               if word not in _catalogued}  # fmt: skip
    assert unknown == {}


def test_every_catalogued_reason_is_used_and_upper_snake() -> None:
    used = _strings_in_source() | {refusal.value for refusal in Refusal}
    assert _catalogued - used == set()
    assert all(_word.match(word) or (word.isalpha() and word.isupper()) for word in _catalogued)
    assert all(reason.meaning and reason.action for reason in reasons.ERROR_REASONS.values())


def test_settlement_refusals_are_error_reasons() -> None:
    assert {refusal.value for refusal in Refusal} <= set(reasons.ERROR_REASONS)


def test_a_refusal_with_a_reason_outside_the_catalogue_is_a_programmer_error() -> None:
    with pytest.raises(AssertionError):
        FailedPrecondition("no", reason="TRANSACTION_completed")


def test_each_status_is_the_google_rpc_code_of_its_name() -> None:
    assert all(code_pb2.Code.Value(status.name) == status.value for status in reasons.Status)


def test_each_status_has_the_http_status_google_rpc_code_maps_it_to() -> None:
    assert all(400 <= status.http_status < 600 for status in reasons.Status)
    assert reasons.Status.INVALID_ARGUMENT.http_status == 400
    assert reasons.Status.FAILED_PRECONDITION.http_status == 400
    assert reasons.Status.UNAUTHENTICATED.http_status == 401
    assert reasons.Status.NOT_FOUND.http_status == 404
    assert reasons.Status.ABORTED.http_status == 409
    assert reasons.Status.RESOURCE_EXHAUSTED.http_status == 429
    assert reasons.Status.UNAVAILABLE.http_status == 503
    assert reasons.Status.DEADLINE_EXCEEDED.http_status == 504


def test_a_reason_never_to_retry_is_final_and_one_to_retry_unchanged_is_not() -> None:
    for name, reason in reasons.ERROR_REASONS.items():
        if reason.retry is reasons.Retry.NEVER:
            assert reason.final, name
        if reason.retry in (reasons.Retry.LATER, reasons.Retry.AT_ONCE):
            assert not reason.final, name


def test_the_catalogue_rows_are_json_ready_one_per_reason_in_order() -> None:
    rows = json.loads(json.dumps(reasons.catalogue_rows()))
    assert [row["reason"] for row in rows] == list(reasons.ERROR_REASONS)
    assert rows[0] == {
        "reason": "INVALID_ARGUMENT",
        "status": "INVALID_ARGUMENT",
        "code": 3,
        "http_status": 400,
        "meaning": reasons.ERROR_REASONS["INVALID_ARGUMENT"].meaning,
        "action": reasons.ERROR_REASONS["INVALID_ARGUMENT"].action,
        "retry": "AFTER_FIX",
        "final": True,
    }


def test_the_published_catalogue_is_current() -> None:
    published = _source.parent.parent / "docs" / "errors.md"
    assert published.read_text() == reasons.catalogue_markdown(), "run `make errors-docs`"


def test_the_markdown_catalogue_has_a_row_for_each_reason() -> None:
    rows = [line for line in reasons.catalogue_markdown().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(reasons.ERROR_REASONS)
    assert rows[0].count(" | ") == 6


def test_purse_reasons_prints_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reasons", "--markdown"]) == 0
    assert capsys.readouterr().out == reasons.catalogue_markdown()
    assert cli.main(["reasons", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == reasons.catalogue_rows()
