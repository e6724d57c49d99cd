"""What every back-office use case does with the rows it changes, in one place.

* `current`: the row an update or archive names must exist in the business (NOT_FOUND
  otherwise, another business's ids included), not be archived (FAILED_PRECONDITION
  ARCHIVED) and still be at the version the caller read (ABORTED VERSION_MISMATCH,
  AIP-154) — checked on the row locked in the writing transaction, so a lost update is
  impossible.
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


def current(row: Row | None, expected_version: int, what: str, reason: str) -> Row:
    """The locked row an update names, as the caller last read it."""
    row = found(row, what, reason)
    if row["archived_at"] is not None:
        raise FailedPrecondition(f"the {what} is archived", reason="ARCHIVED")
    if row["version"] != expected_version:
        raise Aborted(
            f"the {what} is at version {row['version']}, not {expected_version}:"
            " read it again and reapply the change",
            reason="VERSION_MISMATCH",
            retry_after_seconds=0,
        )
    return row


@contextmanager
def unique_fields(constraints: Mapping[str, tuple[str, str, str]]) -> Iterator[None]:
    """Map a broken unique constraint to ALREADY_EXISTS: constraint name → (request field,
    what it is, reason)."""
    try:
        yield
    except UniqueConflict as conflict:
        named = constraints.get(conflict.constraint)
        if named is None:
            raise
        field_path, what, reason = named
        raise AlreadyExists(
            f"{field_path}: this business has {what} already",
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
