"""Customers as a business sees them: membership, access type, pockets.

`AccessType` is the engine's own (`purse.domain.checks`), re-exported here.

Plain values built by the store and mapped by the API; `available` is derived here, in
one place, from balance and held.

Everything a business collects about a customer (the questionnaire: names, language,
consent) belongs to that business's membership; a membership never shows what another
business collected. `validate_questionnaire` holds the limits the database also checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import ClassVar, Final

from purse.domain.checks import AccessType
from purse.domain.errors import FieldViolation, InvalidArgument, echoed
from purse.domain.identifiers import IdentifierKind
from purse.domain.records import Record

given_name_characters_max = 200
family_name_characters_max = 200
language_characters_max = 35
# A BCP 47 tag as far as texts need one: a language of 2-8 letters, then subtags
# (script, region, variant) of 1-8 letters or digits. The same pattern is the
# database's CHECK (migration 0007).
_language_tag = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")


class PocketKind(Enum):
    """What a pocket holds; accounts take the kind of their account type."""

    POINTS = "points"
    MONEY = "money"
    PRODUCTS = "products"
    ACHIEVEMENTS = "achievements"


POINTS_ACCOUNT_TYPE_ID = 0


# Pockets and memberships are read, copied with a change, and answered on every check:
# `Record`s, built natively when compiled (see `purse.domain.records`), each change a
# constructor call rather than `dataclasses.replace` (which goes through every field).


class Pocket(Record):
    """One pocket of a membership; amounts in the pocket's own unit."""

    __slots__ = (
        "account_type_id", "balance", "expiring", "held", "kind", "next_expiry", "pocket_id",
        "redemption_limit_without_pin", "title",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "pocket_id", "kind", "account_type_id", "title", "balance", "held",
        "redemption_limit_without_pin", "expiring", "next_expiry",
    )  # fmt: skip

    def __init__(
        self,
        pocket_id: int,
        kind: PocketKind,
        account_type_id: int,
        title: str,
        balance: int,
        held: int,
        redemption_limit_without_pin: int | None = None,
        expiring: int = 0,
        next_expiry: datetime | None = None,
    ) -> None:
        self.pocket_id: Final = pocket_id
        self.kind: Final = kind
        self.account_type_id: Final = account_type_id
        self.title: Final = title
        self.balance: Final = balance
        self.held: Final = held
        self.redemption_limit_without_pin: Final = redemption_limit_without_pin
        self.expiring: Final = expiring
        self.next_expiry: Final = next_expiry

    @property
    def available(self) -> int:
        """Spendable now. Expired special points leave the balance when the sweeper writes
        them off; until then the engine already refuses to spend them."""
        return max(self.balance - self.held, 0)

    def with_amounts(self, balance: int, held: int) -> Pocket:
        """The pocket with this balance and held part."""
        return Pocket(
            self.pocket_id, self.kind, self.account_type_id, self.title, balance, held,
            self.redemption_limit_without_pin, self.expiring, self.next_expiry,
        )  # fmt: skip

    def with_limit(self, limit: int | None) -> Pocket:
        """The pocket with this redemption limit without PIN."""
        return Pocket(
            self.pocket_id, self.kind, self.account_type_id, self.title, self.balance,
            self.held, limit, self.expiring, self.next_expiry,
        )  # fmt: skip

    def with_expiring(self, expiring: int, next_expiry: datetime | None) -> Pocket:
        """The pocket with these live special points and their soonest expiry."""
        return Pocket(
            self.pocket_id, self.kind, self.account_type_id, self.title, self.balance,
            self.held, self.redemption_limit_without_pin, expiring, next_expiry,
        )  # fmt: skip


class Membership(Record):
    """A customer in one business, with statistics and pockets (points first); names
    and language are what this business collected (empty when it collected none)."""

    __slots__ = (
        "access_type", "category_id", "category_title", "customer_id", "family_name",
        "given_name", "language", "last_visit", "newly_enrolled", "participation_confirmed",
        "phone", "pockets", "sales_count", "sales_sum_minor_units",
    )  # fmt: skip
    _fields: ClassVar[tuple[str, ...]] = (
        "customer_id", "phone", "category_id", "category_title", "access_type",
        "participation_confirmed", "newly_enrolled", "pockets", "sales_count",
        "sales_sum_minor_units", "last_visit", "given_name", "family_name", "language",
    )  # fmt: skip

    def __init__(
        self,
        customer_id: int,
        phone: str,
        category_id: int,
        category_title: str,
        access_type: AccessType,
        participation_confirmed: bool,
        newly_enrolled: bool = False,
        pockets: tuple[Pocket, ...] = (),
        sales_count: int = 0,
        sales_sum_minor_units: int = 0,
        last_visit: datetime | None = None,
        given_name: str = "",
        family_name: str = "",
        language: str = "",
    ) -> None:
        self.customer_id: Final = customer_id
        self.phone: Final = phone
        self.category_id: Final = category_id
        self.category_title: Final = category_title
        self.access_type: Final = access_type
        self.participation_confirmed: Final = participation_confirmed
        self.newly_enrolled: Final = newly_enrolled
        self.pockets: Final = pockets
        self.sales_count: Final = sales_count
        self.sales_sum_minor_units: Final = sales_sum_minor_units
        self.last_visit: Final = last_visit
        self.given_name: Final = given_name
        self.family_name: Final = family_name
        self.language: Final = language

    def with_pockets(self, pockets: tuple[Pocket, ...]) -> Membership:
        """The membership with these pockets."""
        return Membership(
            self.customer_id, self.phone, self.category_id, self.category_title,
            self.access_type, self.participation_confirmed, self.newly_enrolled, pockets,
            self.sales_count, self.sales_sum_minor_units, self.last_visit, self.given_name,
            self.family_name, self.language,
        )  # fmt: skip

    def with_statistics(
        self,
        sales_count: int,
        sales_sum_minor_units: int,
        last_visit: datetime | None,
        participation_confirmed: bool,
    ) -> Membership:
        """The membership with these statistics and participation."""
        return Membership(
            self.customer_id, self.phone, self.category_id, self.category_title,
            self.access_type, participation_confirmed, self.newly_enrolled, self.pockets,
            sales_count, sales_sum_minor_units, last_visit, self.given_name, self.family_name,
            self.language,
        )  # fmt: skip


def with_points_limit(membership: Membership, limit: int | None) -> Membership:
    """The membership with its points pocket's no-PIN limit set to `limit` (hundredths;
    None: no PIN is ever needed). The limit is a rule of the terminal's program, not
    something a membership row holds: it is filled in when a membership is answered,
    from the program at its current version, so a rules change shows at once. The same
    membership when its pocket shows that limit already."""
    pockets: list[Pocket] = []
    changed = False
    for pocket in membership.pockets:
        if (
            pocket.account_type_id == POINTS_ACCOUNT_TYPE_ID
            and pocket.redemption_limit_without_pin != limit
        ):
            pockets.append(pocket.with_limit(limit))
            changed = True
        else:
            pockets.append(pocket)
    return membership.with_pockets(tuple(pockets)) if changed else membership


def points_limit(membership: Membership) -> int | None:
    """The no-PIN limit its points pocket reports (see `with_points_limit`)."""
    for pocket in membership.pockets:
        if pocket.account_type_id == POINTS_ACCOUNT_TYPE_ID:
            return pocket.redemption_limit_without_pin
    return None


@dataclass(frozen=True, slots=True)
class StoredIdentifier:
    """An identifier kept for a customer: the phone, or a card of this business."""

    kind: IdentifierKind
    value: str


@dataclass(frozen=True, slots=True)
class CustomerMatch:
    """A search result: the membership and its identifiers."""

    membership: Membership
    identifiers: tuple[StoredIdentifier, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Questionnaire:
    """What a terminal may register about a customer, for its own business only; an
    empty value keeps what the business recorded before."""

    given_name: str = ""
    family_name: str = ""
    language: str = ""
    personal_data_consent: bool = False


def validate_questionnaire(questionnaire: Questionnaire) -> None:
    """Raise InvalidArgument naming every field over its limit; return if all fit."""
    violations = tuple(_questionnaire_violations(questionnaire))
    if violations:
        first = violations[0]
        raise InvalidArgument(
            message=f"{first.field}: {first.description}"
            + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
            reason="QUESTIONNAIRE_INVALID",
            violations=violations,
        )


def _questionnaire_violations(questionnaire: Questionnaire) -> Iterator[FieldViolation]:
    names = (
        ("given_name", questionnaire.given_name, given_name_characters_max),
        ("family_name", questionnaire.family_name, family_name_characters_max),
    )
    for name, value, characters_max in names:
        if len(value) > characters_max:
            yield FieldViolation(name, f"at most {characters_max} characters")
    language = questionnaire.language
    if len(language) > language_characters_max:
        yield FieldViolation("language", f"at most {language_characters_max} characters")
    elif language and _language_tag.fullmatch(language) is None:
        yield FieldViolation(
            "language", f"{echoed(language)} is not a BCP 47 tag such as uk or en-GB"
        )


__all__ = [
    "AccessType",
    "CustomerMatch",
    "Membership",
    "Pocket",
    "PocketKind",
    "Questionnaire",
    "StoredIdentifier",
    "points_limit",
    "validate_questionnaire",
    "with_points_limit",
]
