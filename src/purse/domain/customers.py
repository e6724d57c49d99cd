"""Customers as a business sees them: membership, access type, pockets.

`AccessType` is the engine's own (`purse.domain.checks`), re-exported here.

Plain values built by the store and mapped by the API; `available` is derived here, in
one place, from balance and held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from purse.domain.checks import AccessType
from purse.domain.identifiers import IdentifierKind


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
    """A customer in one business, with statistics and pockets (points first)."""

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
    """What a terminal may register about a customer."""

    given_name: str = ""
    family_name: str = ""
    language: str = ""
    personal_data_consent: bool = False


__all__ = [
    "AccessType",
    "CustomerMatch",
    "Membership",
    "Pocket",
    "PocketKind",
    "Questionnaire",
    "StoredIdentifier",
]
