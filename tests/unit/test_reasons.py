"""Every reason word the server can answer with is in the catalogue, and every word in
the catalogue is one the server uses."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import purse
from purse.admin.v1 import admin_service_pb2, setup_pb2
from purse.domain import reasons
from purse.domain.errors import FailedPrecondition
from purse.domain.transactions import Refusal
from purse.platform.v1 import platform_service_pb2
from purse.v1 import common_pb2, terminal_service_pb2

_source = Path(purse.__file__).parent
_word = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
# UPPER_SNAKE strings in the source that are names, not reasons: files, variables, and
# the contract's enum values.
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
                if _word.match(word) and word not in _not_reasons and not word.startswith("PURSE_"):
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
    assert all(description for description in reasons.ERROR_REASONS.values())


def test_settlement_refusals_are_error_reasons() -> None:
    assert {refusal.value for refusal in Refusal} <= set(reasons.ERROR_REASONS)


def test_a_refusal_with_a_reason_outside_the_catalogue_is_a_programmer_error() -> None:
    with pytest.raises(AssertionError):
        FailedPrecondition("no", reason="TRANSACTION_completed")
