"""A business's own settings: name, currency, languages, time zone, phone prefix.

The currency is what every stored amount is counted in: it changes only while the
business has no transaction yet (IN_USE afterwards).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from purse.domain import amounts
from purse.domain.administrators import Actor
from purse.domain.errors import FailedPrecondition, InvalidArgument
from purse.domain.setup import Fields, languages_max
from purse.service.admin.records import current, found
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

BUSINESSES = Table("businesses", "business_id")
_phone_prefix = re.compile(r"(\+[0-9]{1,6})?")


@dataclass(frozen=True, slots=True)
class BusinessSettings:
    name: str
    currency: str
    languages: tuple[str, ...]
    time_zone: str
    phone_prefix: str


@dataclass(frozen=True, slots=True)
class Business:
    business_id: int
    settings: BusinessSettings
    version: int
    created_at: datetime


def business_of(row: Row) -> Business:
    return Business(
        row["business_id"],
        BusinessSettings(
            row["name"],
            row["currency"],
            tuple(row["languages"]),
            row["time_zone"],
            row["phone_prefix"],
        ),
        row["version"],
        row["created_at"],
    )


def validate_settings(settings: BusinessSettings, path: str = "business.") -> int:
    """Every wrong field at once; the currency's exponent when all is well."""
    fields = Fields()
    fields.name(f"{path}name", settings.name)
    exponent = 0
    try:
        exponent = amounts.currency_exponent(settings.currency, f"{path}currency")
    except InvalidArgument as error:
        fields.violations.extend(error.violations)
    if not settings.languages:
        fields.wrong(f"{path}languages", "at least one language")
    elif len(settings.languages) > languages_max:
        fields.wrong(f"{path}languages", f"at most {languages_max}")
    elif len(set(settings.languages)) != len(settings.languages):
        fields.wrong(f"{path}languages", "each language once")
    for index, language in enumerate(settings.languages[:languages_max]):
        fields.language(f"{path}languages[{index}]", language)
    fields.time_zone(f"{path}time_zone", settings.time_zone)
    if not _phone_prefix.fullmatch(settings.phone_prefix):
        fields.wrong(f"{path}phone_prefix", "empty, or + and 1 to 6 digits")
    fields.raise_if_any()
    return exponent


class BusinessWrites(Protocol):
    async def has_transactions(self, writing: Writing) -> bool: ...


class Businesses:
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, store: BusinessWrites
    ) -> None:
        self._writes = writes
        self._reads = reads
        self._store = store

    async def get(self, business_id: int) -> Business:
        row = await self._reads.row(BUSINESSES, business_id, business_id)
        return business_of(found(row, "business", "BUSINESS_NOT_FOUND"))

    async def update(
        self, actor: Actor, expected_version: int, settings: BusinessSettings
    ) -> Business:
        fields = Fields()
        fields.expected_version(expected_version)
        fields.raise_if_any()
        exponent = validate_settings(settings)
        async with self._writes.writing(actor) as writing:
            before = await writing.locked(BUSINESSES, actor.business_id)
            before = current(
                {**found(before, "business", "BUSINESS_NOT_FOUND"), "archived_at": None},
                expected_version,
                "business",
                "BUSINESS_NOT_FOUND",
            )
            if before["currency"] != settings.currency and await self._store.has_transactions(
                writing
            ):
                raise FailedPrecondition(
                    "the currency changes only before the first transaction",
                    reason="IN_USE",
                )
            after = await writing.updated(
                BUSINESSES,
                actor.business_id,
                {
                    "name": settings.name,
                    "currency": settings.currency,
                    "currency_exponent": exponent,
                    "languages": list(settings.languages),
                    "time_zone": settings.time_zone,
                    "phone_prefix": settings.phone_prefix,
                },
            )
            await writing.record("update", BUSINESSES, actor.business_id, before, after)
        return business_of(after)


def languages_or_default(languages: Sequence[str]) -> tuple[str, ...]:
    return tuple(languages) or ("en",)
