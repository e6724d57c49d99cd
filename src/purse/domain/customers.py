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
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from purse.domain.checks import AccessType
from purse.domain.errors import FieldViolation, InvalidArgument, echoed
from purse.domain.identifiers import IdentifierKind

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


@dataclass(frozen=True, slots=True)
class Pocket:
    """One pocket of a membership; amounts in the pocket's own unit."""

    pocket_id: int
    kind: PocketKind
    account_type_id: int
    title: str
    balance: int
    held: int
    redemption_limit_without_pin: int | None = None
    expiring: int = 0
    next_expiry: datetime | None = None

    @property
    def available(self) -> int:
        """Spendable now. Expired special points leave the balance when the sweeper writes
        them off; until then the engine already refuses to spend them."""
        return max(self.balance - self.held, 0)


@dataclass(frozen=True, slots=True)
class Membership:
    """A customer in one business, with statistics and pockets (points first); names
    and language are what this business collected (empty when it collected none)."""

    customer_id: int
    phone: str
    category_id: int
    category_title: str
    access_type: AccessType
    participation_confirmed: bool
    newly_enrolled: bool = False
    pockets: tuple[Pocket, ...] = ()
    sales_count: int = 0
    sales_sum_minor_units: int = 0
    last_visit: datetime | None = None
    given_name: str = ""
    family_name: str = ""
    language: str = ""


def with_points_limit(membership: Membership, limit: int | None) -> Membership:
    """The membership with its points pocket's no-PIN limit set to `limit` (hundredths;
    None: no PIN is ever needed). The limit is a rule of the terminal's program, not
    something a membership row holds: it is filled in when a membership is answered,
    from the program at its current version, so a rules change shows at once."""
    return replace(
        membership,
        pockets=tuple(
            replace(pocket, redemption_limit_without_pin=limit)
            if pocket.account_type_id == POINTS_ACCOUNT_TYPE_ID
            else pocket
            for pocket in membership.pockets
        ),
    )


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
