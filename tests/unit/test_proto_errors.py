"""Each RPC's comment names the reasons it can return, in the catalogue's words.

A service's comment lists the reasons its calls share (`Errors every call can return:
A, B.`, `Errors every call but SignIn can return: …`); each RPC's comment lists the rest
(`Errors: C, D.`, or `Errors: none beyond the service's.`). Every reason named is an
error reason of the catalogue, and every error reason of the catalogue is named
somewhere (but the HTTP port's NOT_FOUND for a path that names no RPC): a client reading
the contract meets no reason it was not told of. A status
and reason named together in prose (`ALREADY_EXISTS LOGIN_TAKEN`) are the catalogue's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from purse.domain.reasons import ERROR_REASONS, Status

_protos = Path(__file__).parents[2] / "protos" / "purse"
_contract = sorted(
    path
    for folder in ("v1", "admin/v1", "platform/v1")
    for path in _protos.glob(f"{folder}/*.proto")
)
_declaration = re.compile(r"^\s*(service|rpc) (\w+)")
_errors = re.compile(
    r"\bErrors(?P<scope>[^:.]*): (?P<reasons>none beyond the service's|[A-Z0-9_, ]+)\."
)
_statuses = "|".join(status.name for status in Status)
_status_and_reason = re.compile(
    rf"\b(?P<status>{_statuses})(?: |, reason )(?P<reason>[A-Z][A-Z0-9_]+)\b"
)


@dataclass(frozen=True)
class Declaration:
    """A service or an RPC, with its leading comment as one line of text."""

    kind: str
    name: str
    comment: str
    where: str

    def errors(self) -> list[tuple[str, list[str]]]:
        """(scope, reasons) of each `Errors…:` sentence in the comment."""
        return [
            (found["scope"].strip(), re.findall(r"[A-Z][A-Z0-9_]+", found["reasons"]))
            for found in _errors.finditer(self.comment)
        ]


def _declarations(path: Path) -> Iterator[Declaration]:
    comment: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("//"):
            comment.append(stripped.removeprefix("//").strip())
            continue
        found = _declaration.match(line)
        if found:
            yield Declaration(found[1], found[2], " ".join(comment), f"{path.name}:{number}")
        comment = []


def _all() -> list[Declaration]:
    return [declaration for path in _contract for declaration in _declarations(path)]


def _listed() -> set[str]:
    return {reason for each in _all() for _, reasons in each.errors() for reason in reasons}


def test_the_contract_declares_its_three_services_and_their_rpcs() -> None:
    services = {each.name for each in _all() if each.kind == "service"}
    assert services == {"TerminalService", "AdminService", "PlatformService"}
    assert sum(each.kind == "rpc" for each in _all()) > 90


@pytest.mark.parametrize(
    "rpc", [each for each in _all() if each.kind == "rpc"], ids=lambda each: each.where
)
def test_every_rpc_names_the_reasons_it_can_return_once(rpc: Declaration) -> None:
    assert [scope for scope, _ in rpc.errors()] == [""], rpc.where


def test_every_service_names_the_reasons_every_call_can_return() -> None:
    for service in (each for each in _all() if each.kind == "service"):
        scopes = [scope for scope, _ in service.errors()]
        assert scopes[:1] == ["every call can return"], service.where


def test_every_reason_a_comment_names_is_an_error_reason_of_the_catalogue() -> None:
    assert _listed() - set(ERROR_REASONS) == set()


# Catalogued reasons of no RPC, and why.
_of_no_rpc = {
    "NOT_FOUND": "the HTTP port's answer to a path that names no RPC",
}


def test_every_error_reason_of_the_catalogue_is_named_by_some_comment() -> None:
    assert set(ERROR_REASONS) - _listed() == set(_of_no_rpc)


def test_no_rpc_repeats_a_reason_its_service_names_for_every_call() -> None:
    repeated = []
    shared: set[str] = set()
    for each in _all():
        named = [reason for _, reasons in each.errors() for reason in reasons]
        if each.kind == "service":
            shared = set(named)
        else:
            repeated += [(each.name, reason) for reason in named if reason in shared]
            repeated += [(each.name, reason) for reason in set(named) if named.count(reason) > 1]
    assert repeated == []


def test_a_status_and_reason_named_together_are_the_catalogue_pair() -> None:
    comments = " ".join(
        line.strip().removeprefix("//")
        for path in _contract
        for line in path.read_text().splitlines()
        if line.strip().startswith("//")
    )
    wrong = [
        (found["status"], found["reason"])
        for found in _status_and_reason.finditer(comments)
        if found["reason"] in ERROR_REASONS
        and ERROR_REASONS[found["reason"]].status.name != found["status"]
    ]
    assert wrong == []
