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
from purse.service.admin.versioned import Columns, Resource, Versioned
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


class CustomerCategories(Versioned[Category]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, categories: CategoryWrites
    ) -> None:
        super().__init__(Resource(CATEGORIES, _what, _not_found, _category), writes, reads)
        self._categories = categories

    async def create(self, actor: Actor, draft: CategoryDraft) -> Category:
        validate(draft)

        async def prepare(writing: Writing) -> Columns:
            if draft.is_default:
                await self._mark_default(writing)
            return {}

        return _category(await self.create_row(actor, _columns(draft), prepare))

    async def update(
        self, actor: Actor, category_id: int, expected_version: int, draft: CategoryDraft
    ) -> Category:
        validate(draft)

        async def check(writing: Writing, before: Row) -> None:
            if before["is_default"] and not draft.is_default:
                raise FailedPrecondition(
                    "the default category stays the default: make another one the default",
                    reason="IN_USE",
                )
            if draft.is_default and not before["is_default"]:
                await self._mark_default(writing)

        row = await self.update_row(actor, category_id, expected_version, _columns(draft), check)
        return _category(row)

    async def archive(self, actor: Actor, category_id: int, expected_version: int) -> Category:
        async def users(writing: Writing, before: Row) -> str:
            if before["is_default"]:
                return "the default category is never archived: new customers join it"
            members = await self._categories.members(writing, category_id)
            return f"{members} customers are in this category: move them first" if members else ""

        return _category(await self.archive_row(actor, category_id, expected_version, users))

    async def _mark_default(self, writing: Writing) -> None:
        """Take the default mark from the category holding it (audited as its update)."""
        before = await self._categories.take_default_mark(writing)
        if before is not None:
            after = {**before, "is_default": False, "version": before["version"] + 1}
            await writing.record("update", CATEGORIES, before["category_id"], before, after)
