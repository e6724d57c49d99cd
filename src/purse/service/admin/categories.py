"""Customer categories: create, read, list, update, archive.

Exactly one active category is the default (new customers join it): making another the
default takes the mark from the previous one in the same transaction, and the default
itself is never archived or un-marked (mark another instead). A category with members
is not archived (IN_USE, saying how many).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from purse.domain.administrators import Actor
from purse.domain.errors import FailedPrecondition
from purse.domain.setup import Fields
from purse.service.admin.records import Page, PageRequest, current, found, page_of
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

CATEGORIES = Table("customer_categories", "category_id")
_what = "customer category"
_not_found = "CUSTOMER_CATEGORY_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class CategoryDraft:
    """What an administrator sets on a category."""

    name: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    is_default: bool


@dataclass(frozen=True, slots=True)
class Category:
    category_id: int
    name: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    is_default: bool
    version: int
    archived_at: datetime | None


def validate(draft: CategoryDraft) -> None:
    fields = Fields()
    fields.name("category.name", draft.name)
    fields.localized("category.title", draft.title, 200)
    fields.localized("category.description", draft.description)
    fields.raise_if_any()


def _columns(draft: CategoryDraft) -> dict[str, object]:
    return {
        "name": draft.name,
        "title": dict(draft.title),
        "description": dict(draft.description),
        "is_default": draft.is_default,
    }


def _category(row: Row) -> Category:
    return Category(
        row["category_id"],
        row["name"],
        row["title"],
        row["description"],
        row["is_default"],
        row["version"],
        row["archived_at"],
    )


class CategoryWrites(Protocol):
    """What categories need beyond plain rows (`purse.store.postgres.categories`)."""

    async def members(self, writing: Writing, category_id: int) -> int: ...

    async def take_default_mark(self, writing: Writing) -> Row | None: ...


class CustomerCategories:
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, categories: CategoryWrites
    ) -> None:
        self._writes = writes
        self._reads = reads
        self._categories = categories

    async def get(self, business_id: int, category_id: int) -> Category:
        row = await self._reads.row(CATEGORIES, business_id, category_id)
        return _category(found(row, _what, _not_found))

    async def page(
        self, business_id: int, page_size: int, token: str, show_archived: bool
    ) -> Page[Category]:
        request = PageRequest.of(page_size, token, ["categories", business_id, int(show_archived)])
        rows = await self._reads.page(
            CATEGORIES, business_id, request.after, request.limit, show_archived
        )
        return page_of(request, rows, CATEGORIES.key, _category)

    async def create(self, actor: Actor, draft: CategoryDraft) -> Category:
        validate(draft)
        async with self._writes.writing(actor) as writing:
            if draft.is_default:
                await self._mark_default(writing)
            row = await writing.inserted(CATEGORIES, _columns(draft))
            await writing.record("create", CATEGORIES, row["category_id"], None, row)
        return _category(row)

    async def update(
        self, actor: Actor, category_id: int, expected_version: int, draft: CategoryDraft
    ) -> Category:
        fields = Fields()
        fields.expected_version(expected_version)
        fields.raise_if_any()
        validate(draft)
        async with self._writes.writing(actor) as writing:
            before = current(
                await writing.locked(CATEGORIES, category_id), expected_version, _what, _not_found
            )
            if before["is_default"] and not draft.is_default:
                raise FailedPrecondition(
                    "the default category stays the default: make another one the default",
                    reason="IN_USE",
                )
            if draft.is_default and not before["is_default"]:
                await self._mark_default(writing)
            after = await writing.updated(CATEGORIES, category_id, _columns(draft))
            await writing.record("update", CATEGORIES, category_id, before, after)
        return _category(after)

    async def archive(self, actor: Actor, category_id: int, expected_version: int) -> Category:
        fields = Fields()
        fields.expected_version(expected_version)
        fields.raise_if_any()
        async with self._writes.writing(actor) as writing:
            before = current(
                await writing.locked(CATEGORIES, category_id), expected_version, _what, _not_found
            )
            if before["is_default"]:
                raise FailedPrecondition(
                    "the default category is never archived: new customers join it",
                    reason="IN_USE",
                )
            members = await self._categories.members(writing, category_id)
            if members:
                raise FailedPrecondition(
                    f"{members} customers are in this category: move them first",
                    reason="IN_USE",
                )
            after = await writing.archived(CATEGORIES, category_id)
            await writing.record("archive", CATEGORIES, category_id, before, after)
        return _category(after)

    async def _mark_default(self, writing: Writing) -> None:
        """Take the default mark from the category holding it (audited as its update)."""
        before = await self._categories.take_default_mark(writing)
        if before is not None:
            after = {**before, "is_default": False, "version": before["version"] + 1}
            await writing.record("update", CATEGORIES, before["category_id"], before, after)
