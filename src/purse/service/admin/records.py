"""What every back-office use case does with the rows it changes, in one place.

* `current`: the row an update or archive names must exist in the business (NOT_FOUND
  otherwise, another business's ids included), not be archived (FAILED_PRECONDITION
  ARCHIVED) and still be at the version the caller read (ABORTED VERSION_MISMATCH,
  AIP-154) — checked on the row locked in the writing transaction, so a lost update is
  impossible.
* `live_parent`: what a request attaches a resource to (a point of sale's program, a
  terminal's point of sale) must be a live row of the business: NOT_FOUND naming the
  request field otherwise — checked on the parent locked in the writing transaction, so it
  cannot be archived meanwhile.
* `unique_fields`: a unique constraint the write broke becomes ALREADY_EXISTS naming the
  request field.
* `Page`: keyset pages (AIP-158) over rows ordered by their id, with tokens tied to the
  list, the business and the filters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from purse.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    invalid,
)
from purse.domain.pages import page_limit, page_start, page_token
from purse.service.ports import UniqueConflict

page_size_default = 50
page_size_max = 1_000

Row = TypeVar("Row", bound=Mapping[str, Any])
Item = TypeVar("Item")


def found(row: Row | None, what: str, reason: str) -> Row:
    """The row, or NotFound: another business's rows are not found either."""
    if row is None:
        raise NotFound(f"no such {what} in this business", reason=reason)
    return row


def current(
    row: Row | None,
    expected_version: int,
    what: str,
    reason: str,
    version_column: str = "version",
) -> Row:
    """The locked row an update names, as the caller last read it (its `version_column`:
    a program's rules have a version of their own)."""
    row = found(row, what, reason)
    if row["archived_at"] is not None:
        raise FailedPrecondition(f"the {what} is archived", reason="ARCHIVED")
    if row[version_column] != expected_version:
        raise Aborted(
            f"the {what} is at version {row[version_column]}, not {expected_version}:"
            " read it again and reapply the change",
            reason="VERSION_MISMATCH",
            retry_after_seconds=0,
        )
    return row


def live_parent(row: Row | None, field_path: str, what: str, reason: str) -> Row:
    """The locked parent row a request names in `field_path`, unless missing or archived."""
    if row is None or row["archived_at"] is not None:
        raise NotFound(
            f"{field_path}: no such {what} in this business, or it is archived",
            reason=reason,
            metadata={"field": field_path},
        )
    return row


@contextmanager
def unique_fields(constraints: Mapping[str, tuple[str, str, str]]) -> Iterator[None]:
    """Map a broken unique constraint to ALREADY_EXISTS: constraint name → (request field,
    what exists already, reason)."""
    try:
        yield
    except UniqueConflict as conflict:
        named = constraints.get(conflict.constraint)
        if named is None:
            raise
        field_path, what, reason = named
        raise AlreadyExists(
            f"{field_path}: {what} exists already",
            reason=reason,
            metadata={"field": field_path},
        ) from conflict


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a list: `after` is the last id of the previous page (0: first), or
    `after_code` its last code for lists keyed by a code ("": first)."""

    after: int
    limit: int
    query: list[str | int]
    after_code: str = ""

    @classmethod
    def of(
        cls, page_size: int, token: str, query: list[str | int], by_code: bool = False
    ) -> PageRequest:
        limit = page_limit(page_size, page_size_default, page_size_max)
        start = page_start(token, query)
        if by_code:
            # Codes are never empty: every one sorts after "".
            return cls(0, limit, query, start or "")
        after = 0
        if start is not None:
            if not start.isdigit() or len(start) > 19:
                raise invalid("page_token", "not a token this server gave for this query")
            after = int(start)
        return cls(after, limit, query)


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    items: tuple[Item, ...]
    next_page_token: str


def page_of(request: PageRequest, rows: Sequence[Row], key: str, item: Any) -> Page[Any]:
    """The page of `rows` (fetched with limit + 1) as items, with the next token."""
    more = len(rows) > request.limit
    kept = rows[: request.limit]
    token = page_token(request.query, str(kept[-1][key])) if more and kept else ""
    return Page(tuple(item(row) for row in kept), token)
