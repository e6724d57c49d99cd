"""The life of one kind of back-office resource, written once: get, page, create, update,
archive, each change with its audit entry in the same database transaction.

A `Resource` names the table (and the view reads come from, when the items show more
than the table holds), what the resource is called in messages, its NOT_FOUND reason,
the unique constraints that stand for request fields, and how a row becomes the item
callers see. `Versioned` applies `records`' rules (NOT_FOUND for another business's
keys, ABORTED VERSION_MISMATCH for a stale version, ALREADY_EXISTS for a taken code,
keyset pages). What is particular to a resource comes as hooks run in the writing
transaction: `prepare` adds columns the store must work out (a goods category's id from
its code), `check` sees the locked row before an update (an immutable field, a cap), and
`users` says before an archive what still uses the resource ("" when nothing does:
otherwise FAILED_PRECONDITION IN_USE with that message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from purse.domain.administrators import Actor
from purse.domain.errors import FailedPrecondition, FieldViolation, NotFound
from purse.domain.setup import Fields
from purse.service.admin.records import Page, PageRequest, current, found, page_of, unique_fields
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

Item = TypeVar("Item")
Columns = Mapping[str, object]
Prepare = Callable[[Writing], Awaitable[Columns]]
Check = Callable[[Writing, Row], Awaitable[None]]
Users = Callable[[Writing, Row], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Resource(Generic[Item]):
    table: Table
    what: str
    not_found: str
    item: Callable[[Row], Item]
    # Unique constraint → (request field, what it is, reason).
    unique: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    # Keyed by a code (text) rather than an id.
    by_code: bool = False
    # Where reads come from, when not the table itself.
    view: Table | None = None
    # The resource lists within (points of sale for terminals): its table and NOT_FOUND
    # reason. A list within a parent of another business is NOT_FOUND, not empty.
    parent: tuple[Table, str] | None = None


def immutable(path: str, before: object, after: object, what: str) -> None:
    """FAILED_PRECONDITION FIELD_IMMUTABLE when an update changes a field set at
    creation."""
    if before != after:
        raise FailedPrecondition(
            f"{path}: the {what} is set at creation and stays {before!r}",
            reason="FIELD_IMMUTABLE",
            violations=(FieldViolation(path, "set at creation; cannot change"),),
        )


def validated(validate: Callable[[Fields], None]) -> None:
    """Run a validation; INVALID_ARGUMENT naming every wrong field it found."""
    fields = Fields()
    validate(fields)
    fields.raise_if_any()


async def unused(writing: Writing, before: Row) -> str:
    """The `users` of a resource nothing holds on to: it is archived whenever asked."""
    return ""


def _version_given(expected_version: int) -> None:
    fields = Fields()
    fields.expected_version(expected_version)
    fields.raise_if_any()


class Versioned(Generic[Item]):
    """Get, page, create, update, archive of one resource of a business: a resource's use
    case inherits `get` and `page`, and builds its writes on the `*_row` methods."""

    def __init__(
        self, resource: Resource[Item], writes: BackOfficeWriting, reads: BackOfficeReads
    ) -> None:
        self.resource = resource
        self._writes = writes
        self._reads = reads

    async def get(self, business_id: int, key: int | str) -> Item:
        resource = self.resource
        row = await self._reads.row(resource.view or resource.table, business_id, key)
        return resource.item(found(row, resource.what, resource.not_found))

    async def page(
        self,
        business_id: int,
        page_size: int,
        token: str,
        show_archived: bool,
        within: tuple[str, int] | None = None,
    ) -> Page[Item]:
        """A page of the list; of the rows whose column `within[0]` is `within[1]` when
        given (0 there: every row — a list within a parent, or all of them)."""
        resource = self.resource
        table = resource.view or resource.table
        query: list[str | int] = [table.name, business_id, int(show_archived)]
        equal = None
        if within is not None and within[1]:
            equal = {within[0]: within[1]}
            query += list(within)
        request = PageRequest.of(page_size, token, query, resource.by_code)
        if within is not None and equal is not None and resource.parent is not None and not token:
            await self._parent(business_id, *resource.parent, *within)
        after = request.after_code if resource.by_code else request.after
        rows = await self._reads.page(
            table, business_id, after, request.limit, show_archived, equal
        )
        return page_of(request, rows, table.key, resource.item)

    async def _parent(
        self, business_id: int, table: Table, reason: str, field: str, key: int
    ) -> None:
        if await self._reads.row(table, business_id, key) is None:
            raise NotFound(
                f"{field}: no such {table.name.replace('_', ' ')} row in this business",
                reason=reason,
                metadata={"field": field},
            )

    async def create_row(
        self, actor: Actor, columns: Columns, prepare: Prepare | None = None
    ) -> Row:
        """The new row, as inserted."""
        table = self.resource.table
        async with self._writes.writing(actor) as writing:
            if prepare is not None:
                columns = {**columns, **await prepare(writing)}
            with unique_fields(self.resource.unique):
                row = await writing.inserted(table, columns)
            await writing.record("create", table, row[table.key], None, row)
        return row

    async def update_row(
        self,
        actor: Actor,
        key: int | str,
        expected_version: int,
        columns: Columns,
        check: Check | None = None,
        prepare: Prepare | None = None,
    ) -> Row:
        """The row as updated: the locked row must be at `expected_version`."""
        _version_given(expected_version)
        resource = self.resource
        async with self._writes.writing(actor) as writing:
            before = await self._current(writing, key, expected_version)
            if check is not None:
                await check(writing, before)
            if prepare is not None:
                columns = {**columns, **await prepare(writing)}
            with unique_fields(resource.unique):
                after = await writing.updated(resource.table, key, columns)
            await writing.record("update", resource.table, key, before, after)
        return after

    async def archive_row(
        self, actor: Actor, key: int | str, expected_version: int, users: Users
    ) -> Row:
        """The row as archived, unless something live still uses it."""
        _version_given(expected_version)
        table = self.resource.table
        async with self._writes.writing(actor) as writing:
            before = await self._current(writing, key, expected_version)
            using = await users(writing, before)
            if using:
                raise FailedPrecondition(using, reason="IN_USE")
            after = await writing.archived(table, key)
            await writing.record("archive", table, key, before, after)
        return after

    async def _current(self, writing: Writing, key: int | str, expected_version: int) -> Row:
        """The row, locked, as the caller last read it (`records.current`)."""
        resource = self.resource
        row = await writing.locked(resource.table, key)
        return current(row, expected_version, resource.what, resource.not_found)
