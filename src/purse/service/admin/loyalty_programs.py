"""Loyalty programs: create, read, list, update, archive.

A program's settings here say what its points of sale do with customers at the till (enrol
a phone the business does not know, the access new customers get) and how customers hear
of their transactions (`notice_channel`). Its rules — and the settings that live in them:
the hold deadline, cancelling completed sales, the no-PIN limit, the redemption share cap
— are replaced whole by `Programs.replace`, under a version of their own, so changing the
settings here never refuses a rules change or the other way round.

A program that live points of sale run is not archived (IN_USE, saying how many): its row
is locked while they are counted, and creating or moving a point of sale locks it too, so
none slips in meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from purse.domain.administrators import Actor
from purse.domain.customers import AccessType
from purse.domain.setup import Fields
from purse.domain.terminals import NoticeChannel
from purse.service.admin.programs import PROGRAMS
from purse.service.admin.versioned import Resource, Versioned
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Writing

# What customers enrolled at a till may get (a blacklisted enrolment makes no sense).
access_types_at_enrolment = frozenset({AccessType.FULL, AccessType.LIMITED, AccessType.NONE})


@dataclass(frozen=True, slots=True)
class ProgramDraft:
    """What an administrator sets on a program; None: the request left an enum unset."""

    name: str
    enrols_unknown_phones: bool
    default_access_type: AccessType | None
    notice_channel: NoticeChannel | None


@dataclass(frozen=True, slots=True)
class LoyaltyProgram:
    program_id: int
    name: str
    enrols_unknown_phones: bool
    default_access_type: AccessType
    notice_channel: NoticeChannel
    rules_version: int
    version: int
    created_at: datetime
    archived_at: datetime | None


def violations(draft: ProgramDraft) -> Fields:
    """The draft's wrong fields, collected (an update adds its version's)."""
    fields = Fields()
    fields.name("program.name", draft.name)
    if draft.default_access_type not in access_types_at_enrolment:
        fields.wrong("program.default_access_type", "required: FULL, LIMITED or NONE")
    if draft.notice_channel is None:
        fields.wrong("program.notice_channel", "required")
    return fields


def validate(draft: ProgramDraft) -> None:
    violations(draft).raise_if_any()


def _columns(draft: ProgramDraft) -> dict[str, object]:
    assert draft.default_access_type is not None and draft.notice_channel is not None
    return {
        "name": draft.name,
        "enrols_unknown_phones": draft.enrols_unknown_phones,
        "default_access_type": draft.default_access_type.value,
        "notice_channel": draft.notice_channel.value,
    }


def _program(row: Row) -> LoyaltyProgram:
    return LoyaltyProgram(
        row["program_id"],
        row["name"],
        row["enrols_unknown_phones"],
        AccessType(row["default_access_type"]),
        NoticeChannel(row["notice_channel"]),
        row["rules_version"],
        row["version"],
        row["created_at"],
        row["archived_at"],
    )


class ProgramUsage(Protocol):
    """Who runs a program (`purse.store.postgres.setup`)."""

    async def points_of_sale_running(self, writing: Writing, program_id: int) -> int: ...


class LoyaltyPrograms(Versioned[LoyaltyProgram]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, usage: ProgramUsage
    ) -> None:
        super().__init__(
            Resource(PROGRAMS, "program", "PROGRAM_NOT_FOUND", _program), writes, reads
        )
        self._usage = usage

    async def create(self, actor: Actor, draft: ProgramDraft) -> LoyaltyProgram:
        validate(draft)
        return _program(await self.create_row(actor, _columns(draft)))

    async def update(
        self, actor: Actor, program_id: int, expected_version: int, draft: ProgramDraft
    ) -> LoyaltyProgram:
        validate(draft)
        row = await self.update_row(actor, program_id, expected_version, _columns(draft))
        return _program(row)

    async def archive(self, actor: Actor, program_id: int, expected_version: int) -> LoyaltyProgram:
        async def users(writing: Writing, before: Row) -> str:
            running = await self._usage.points_of_sale_running(writing, program_id)
            if not running:
                return ""
            return f"{running} points of sale run this program: move or archive them first"

        return _program(await self.archive_row(actor, program_id, expected_version, users))
