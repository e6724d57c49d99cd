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
from purse.domain.errors import FailedPrecondition
from purse.domain.setup import Fields, address_characters_max, name_characters_max
from purse.service.admin.programs import PROGRAMS
from purse.service.admin.records import Resources, live_parent
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


async def _lock_program(writing: Writing, program_id: int) -> None:
    live_parent(
        await writing.locked(PROGRAMS, program_id),
        "point_of_sale.program_id",
        "program",
        "PROGRAM_NOT_FOUND",
    )


class PointsOfSale(Resources[PointOfSale]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, usage: PointOfSaleUsage
    ) -> None:
        super().__init__(
            writes, reads, POINTS_OF_SALE, "point of sale", "POINT_OF_SALE_NOT_FOUND",
            _point_of_sale,
        )  # fmt: skip
        self._usage = usage

    async def create(self, actor: Actor, draft: PointOfSaleDraft) -> PointOfSale:
        validate(draft)
        async with self._writes.writing(actor) as writing:
            await _lock_program(writing, draft.program_id)
            return await self.inserted(writing, _columns(draft))

    async def update(
        self, actor: Actor, point_of_sale_id: int, expected_version: int, draft: PointOfSaleDraft
    ) -> PointOfSale:
        changing = self.changing(actor, point_of_sale_id, expected_version, violations(draft))
        async with changing as (writing, before):
            await _lock_program(writing, draft.program_id)
            return await self.updated(writing, before, _columns(draft))

    async def archive(
        self, actor: Actor, point_of_sale_id: int, expected_version: int
    ) -> PointOfSale:
        async with self.changing(actor, point_of_sale_id, expected_version) as (writing, before):
            terminals = await self._usage.terminals_at(writing, point_of_sale_id)
            if terminals:
                raise FailedPrecondition(
                    f"{terminals} terminals work at this point of sale: move or archive them first",
                    reason="IN_USE",
                )
            return await self.archived(writing, before)
