"""Points of sale: create, read, list, update, archive.

A point of sale runs one live program of the business: the program is locked while a
point of sale is created on it or moved to it, so it cannot be archived meanwhile (NOT_FOUND
naming `point_of_sale.program_id` when it is missing or archived). Customers see its
title, description and address (by language) once it is published. One that live
terminals are at is not archived (IN_USE, saying how many).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from purse.domain.administrators import Actor
from purse.domain.setup import Fields, address_characters_max, name_characters_max
from purse.service.admin.programs import PROGRAMS
from purse.service.admin.records import live_parent
from purse.service.admin.versioned import Columns, Prepare, Resource, Versioned
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

POINTS_OF_SALE = Table("points_of_sale", "point_of_sale_id")


@dataclass(frozen=True, slots=True)
class PointOfSaleDraft:
    """What an administrator sets on a point of sale."""

    program_id: int
    name: str
    time_zone: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    address: Mapping[str, str]
    published: bool


@dataclass(frozen=True, slots=True)
class PointOfSale:
    point_of_sale_id: int
    program_id: int
    name: str
    time_zone: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    address: Mapping[str, str]
    published: bool
    version: int
    created_at: datetime
    archived_at: datetime | None


def violations(draft: PointOfSaleDraft) -> Fields:
    """The draft's wrong fields, collected (an update adds its version's)."""
    fields = Fields()
    fields.positive("point_of_sale.program_id", draft.program_id)
    fields.name("point_of_sale.name", draft.name)
    fields.time_zone("point_of_sale.time_zone", draft.time_zone)
    fields.localized("point_of_sale.title", draft.title, name_characters_max)
    fields.localized("point_of_sale.description", draft.description)
    fields.localized("point_of_sale.address", draft.address, address_characters_max)
    return fields


def validate(draft: PointOfSaleDraft) -> None:
    violations(draft).raise_if_any()


def _columns(draft: PointOfSaleDraft) -> dict[str, object]:
    return {
        "program_id": draft.program_id,
        "name": draft.name,
        "time_zone": draft.time_zone,
        "title": dict(draft.title),
        "description": dict(draft.description),
        "address": dict(draft.address),
        "published": draft.published,
    }


def _point_of_sale(row: Row) -> PointOfSale:
    return PointOfSale(
        row["point_of_sale_id"],
        row["program_id"],
        row["name"],
        row["time_zone"],
        row["title"],
        row["description"],
        row["address"],
        row["published"],
        row["version"],
        row["created_at"],
        row["archived_at"],
    )


class PointOfSaleUsage(Protocol):
    """Who works at a point of sale (`purse.store.postgres.setup`)."""

    async def terminals_at(self, writing: Writing, point_of_sale_id: int) -> int: ...


def _program_locker(program_id: int) -> Prepare:
    """Lock the program a point of sale is to run, which must be live (adds no column)."""

    async def lock(writing: Writing) -> Columns:
        live_parent(
            await writing.locked(PROGRAMS, program_id),
            "point_of_sale.program_id",
            "program",
            "PROGRAM_NOT_FOUND",
        )
        return {}

    return lock


class PointsOfSale(Versioned[PointOfSale]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, usage: PointOfSaleUsage
    ) -> None:
        resource = Resource(
            POINTS_OF_SALE, "point of sale", "POINT_OF_SALE_NOT_FOUND", _point_of_sale
        )
        super().__init__(resource, writes, reads)
        self._usage = usage

    async def create(self, actor: Actor, draft: PointOfSaleDraft) -> PointOfSale:
        validate(draft)
        row = await self.create_row(actor, _columns(draft), _program_locker(draft.program_id))
        return _point_of_sale(row)

    async def update(
        self, actor: Actor, point_of_sale_id: int, expected_version: int, draft: PointOfSaleDraft
    ) -> PointOfSale:
        validate(draft)
        row = await self.update_row(
            actor,
            point_of_sale_id,
            expected_version,
            _columns(draft),
            prepare=_program_locker(draft.program_id),
        )
        return _point_of_sale(row)

    async def archive(
        self, actor: Actor, point_of_sale_id: int, expected_version: int
    ) -> PointOfSale:
        async def users(writing: Writing, before: Row) -> str:
            terminals = await self._usage.terminals_at(writing, point_of_sale_id)
            if not terminals:
                return ""
            return f"{terminals} terminals work at this point of sale: move or archive them first"

        row = await self.archive_row(actor, point_of_sale_id, expected_version, users)
        return _point_of_sale(row)
