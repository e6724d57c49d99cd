"""Goods categories and goods: create, read, list, update, archive, and a whole price list
in one call.

A goods category's code is set at creation (rules and tills name it) and unique among
the business's active categories; a category is archived only once no active product is
in it and no active program's rules select it (IN_USE names them). Goods are keyed by
their product code, unique in the business archived goods included; a product names its
category by code, which must be an active category's.

`upsert` takes up to `goods_per_upsert_max` goods: all are validated before anything is
read (each wrong field named by its index), the category codes are resolved in one
query, and the store writes them in set-based statements, so either every product of
the list is as listed afterwards or, on any refusal, nothing changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from purse.domain.administrators import Actor
from purse.domain.catalogue_setup import (
    GoodsCategoryDraft,
    GoodsDraft,
    unknown_category_violations,
    validate_goods,
    validate_goods_category,
    validate_price_list,
)
from purse.domain.errors import InvalidArgument, echoed, invalid
from purse.service.admin.versioned import (
    Columns,
    Resource,
    Versioned,
    immutable,
    unused,
    validated,
)
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

GOODS_CATEGORIES = Table("goods_categories", "goods_category_id")
GOODS = Table("goods", "product_code")
# Goods with their category's code (a view: see migration 0011).
GOODS_LISTED = Table("goods_listed", "product_code")
_code_taken = ("goods_category.code", "an active goods category with this code", "CODE_TAKEN")
_product_taken = ("goods.product_code", "a product with this code", "CODE_TAKEN")


@dataclass(frozen=True, slots=True)
class GoodsCategoryRecord:
    goods_category_id: int
    settings: GoodsCategoryDraft
    version: int
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class GoodsRecord:
    settings: GoodsDraft
    version: int
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    created: int
    updated: int
    unchanged: int


def _category(row: Row) -> GoodsCategoryRecord:
    return GoodsCategoryRecord(
        row["goods_category_id"],
        GoodsCategoryDraft(row["code"], row["name"]),
        row["version"],
        row["archived_at"],
    )


def _goods(row: Row) -> GoodsRecord:
    settings = GoodsDraft(
        row["product_code"], row["title"], row["price_minor_units"], row["goods_category_code"]
    )
    return GoodsRecord(settings, row["version"], row["archived_at"])


class CatalogueWrites(Protocol):
    """What goods need beyond plain rows (`purse.store.postgres.catalogue_setup`)."""

    async def goods_in_category(self, writing: Writing, goods_category_id: int) -> int: ...

    async def programs_selecting(self, writing: Writing, code: str) -> list[str]: ...

    async def category_ids(self, writing: Writing, codes: Sequence[str]) -> dict[str, int]: ...

    async def category_code(self, writing: Writing, goods_category_id: int | None) -> str: ...

    async def upsert_goods(
        self, writing: Writing, goods: Sequence[tuple[str, str, int, int | None]]
    ) -> tuple[int, int]: ...


class GoodsCategories(Versioned[GoodsCategoryRecord]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, store: CatalogueWrites
    ) -> None:
        super().__init__(
            Resource(
                GOODS_CATEGORIES,
                "goods category",
                "GOODS_CATEGORY_NOT_FOUND",
                _category,
                {"goods_categories_code_active": _code_taken},
            ),
            writes,
            reads,
        )
        self._store = store

    async def create(self, actor: Actor, draft: GoodsCategoryDraft) -> GoodsCategoryRecord:
        validated(lambda fields: validate_goods_category(fields, "goods_category", draft))
        return _category(await self.create_row(actor, {"code": draft.code, "name": draft.name}))

    async def update(
        self, actor: Actor, goods_category_id: int, expected_version: int, draft: GoodsCategoryDraft
    ) -> GoodsCategoryRecord:
        validated(lambda fields: validate_goods_category(fields, "goods_category", draft))

        async def same_code(writing: Writing, before: Row) -> None:
            immutable("goods_category.code", before["code"], draft.code, "code")

        row = await self.update_row(
            actor, goods_category_id, expected_version, {"name": draft.name}, same_code
        )
        return _category(row)

    async def archive(
        self, actor: Actor, goods_category_id: int, expected_version: int
    ) -> GoodsCategoryRecord:
        row = await self.archive_row(actor, goods_category_id, expected_version, self._users)
        return _category(row)

    async def _users(self, writing: Writing, before: Row) -> str:
        goods = await self._store.goods_in_category(writing, before["goods_category_id"])
        if goods:
            return f"{goods} active goods are in this category: move or archive them first"
        programs = await self._store.programs_selecting(writing, before["code"])
        if programs:
            named = ", ".join(repr(name) for name in programs[:5])
            return f"the rules of programs {named} select this category: change them first"
        return ""


class Goods(Versioned[GoodsRecord]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, store: CatalogueWrites
    ) -> None:
        super().__init__(
            Resource(
                GOODS,
                "product",
                "GOODS_NOT_FOUND",
                _goods,
                {"goods_pkey": _product_taken},
                by_code=True,
                view=GOODS_LISTED,
            ),
            writes,
            reads,
        )
        self._writes = writes
        self._store = store

    async def create(self, actor: Actor, draft: GoodsDraft) -> GoodsRecord:
        validated(lambda fields: validate_goods(fields, "goods", draft))
        columns = {"product_code": draft.product_code, **_goods_columns(draft)}
        row = await self.create_row(actor, columns, _CategoryOf(self._store, draft))
        return _goods({**row, "goods_category_code": draft.goods_category_code})

    async def update(self, actor: Actor, expected_version: int, draft: GoodsDraft) -> GoodsRecord:
        validated(lambda fields: validate_goods(fields, "goods", draft))
        row = await self.update_row(
            actor,
            draft.product_code,
            expected_version,
            _goods_columns(draft),
            prepare=_CategoryOf(self._store, draft),
        )
        return _goods({**row, "goods_category_code": draft.goods_category_code})

    async def archive(self, actor: Actor, product_code: str, expected_version: int) -> GoodsRecord:
        # Rules and checks name product codes freely: nothing live refuses an archive.
        await self.archive_row(actor, product_code, expected_version, unused)
        return await self.get(actor.business_id, product_code)

    async def upsert(self, actor: Actor, goods: Sequence[GoodsDraft]) -> UpsertCounts:
        validated(lambda fields: validate_price_list(fields, goods))
        wanted = sorted({draft.goods_category_code for draft in goods} - {""})
        async with self._writes.writing(actor) as writing:
            ids = await self._store.category_ids(writing, wanted)
            unknown = unknown_category_violations(goods, ids)
            if unknown:
                raise InvalidArgument(
                    f"{unknown[0].field}: {unknown[0].description}",
                    reason="GOODS_CATEGORY_UNKNOWN",
                    violations=unknown,
                )
            rows = [
                (
                    draft.product_code,
                    draft.title,
                    draft.price_minor_units,
                    ids.get(draft.goods_category_code),
                )
                for draft in goods
            ]
            created, updated = await self._store.upsert_goods(writing, rows)
        return UpsertCounts(created, updated, len(goods) - created - updated)


def _goods_columns(draft: GoodsDraft) -> dict[str, object]:
    return {"title": draft.title, "price_minor_units": draft.price_minor_units}


@dataclass(frozen=True, slots=True)
class _CategoryOf:
    """Resolves a product's category code to its id in the writing transaction."""

    store: CatalogueWrites
    draft: GoodsDraft

    async def __call__(self, writing: Writing) -> Columns:
        code = self.draft.goods_category_code
        if not code:
            return {"goods_category_id": None}
        ids = await self.store.category_ids(writing, [code])
        if code not in ids:
            raise invalid(
                "goods.goods_category_code",
                f"{echoed(code)} is not an active goods category of this business",
                reason="GOODS_CATEGORY_UNKNOWN",
            )
        return {"goods_category_id": ids[code]}
