"""The customer's card in the control panel: find, read, page the history, change the
profile and the cards.

Profile and card changes run in one back-office transaction with their audit entry,
inside the unit of work: once committed, the balance cache forgets the customer (and a
removed card's hint), so a terminal identifying the customer right after sees the
change. The profile has a version of its own (`profile_version`), so an update names
what it read without colliding with sales, which only move the statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from purse.domain import identifiers
from purse.domain.administrators import Actor
from purse.domain.customers import (
    AccessType,
    CustomerMatch,
    Membership,
    Questionnaire,
    validate_questionnaire,
)
from purse.domain.errors import Aborted, AlreadyExists, NotFound, invalid
from purse.domain.identifiers import Identifier, IdentifierKind
from purse.domain.setup import Fields
from purse.domain.transactions import TransactionRecord
from purse.service.admin.records import Page, PageRequest, page_of
from purse.service.ports import BackOfficeWriting, Customers, Row, Table, Writing
from purse.service.terminal.history import History, ListFilter
from purse.service.unit_of_work import UnitOfWork
from purse.store.redis.balance_cache import hint

MEMBERSHIPS = Table("memberships", "customer_id")
CARDS = Table("customer_identifiers", "customer_id")
_card_kinds = (IdentifierKind.CARD_NUMBER, IdentifierKind.CARD_QR)


@dataclass(frozen=True, slots=True)
class PointsLot:
    lot_id: int
    remaining: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HeldCoupon:
    coupon_id: int
    code: str
    series_id: int
    series_name: str
    status: str
    issued_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class CustomerCard:
    match: CustomerMatch
    lots: tuple[PointsLot, ...]
    coupons: tuple[HeldCoupon, ...]
    personal_data_consent: bool
    member_since: datetime
    profile_version: int

    @property
    def average_check(self) -> int:
        membership = self.match.membership
        if membership.sales_count == 0:
            return 0
        return membership.sales_sum_minor_units // membership.sales_count


@dataclass(frozen=True, slots=True)
class Profile:
    """What an administrator sets on a customer."""

    category_id: int
    access_type: AccessType | None
    questionnaire: Questionnaire


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: int
    account_type_id: int
    kind: str
    amount: int
    held_amount: int
    transaction_id: int | None
    expires_at: datetime | None
    created_at: datetime


class CardStore(Protocol):
    """`purse.store.postgres.customer_card.CustomerCardStore`."""

    async def extras(self, business_id: int, customer_id: int) -> Row | None: ...

    async def ledger(
        self, business_id: int, customer_id: int, before_entry: int, limit: int
    ) -> Sequence[Row]: ...

    async def locked_profile(self, writing: Writing, customer_id: int) -> Row | None: ...

    async def live_category(self, writing: Writing, category_id: int) -> bool: ...

    async def update_profile(self, writing: Writing, customer_id: int, profile: Row) -> Row: ...

    async def add_card(
        self, writing: Writing, customer_id: int, kind: IdentifierKind, value: str
    ) -> int | None: ...

    async def remove_card(
        self, writing: Writing, customer_id: int, kind: IdentifierKind, value: str
    ) -> bool: ...


def _not_found(field: str = "customer_id") -> NotFound:
    return NotFound(
        "no such customer in this business", reason="CUSTOMER_NOT_FOUND", metadata={"field": field}
    )


def _lots(values: Sequence[Any]) -> tuple[PointsLot, ...]:
    return tuple(PointsLot(*each) for each in values)


def _coupons(values: Sequence[Any]) -> tuple[HeldCoupon, ...]:
    return tuple(HeldCoupon(*each) for each in values)


class CustomerCards:
    def __init__(
        self,
        writes: BackOfficeWriting,
        customers: Customers,
        cards: CardStore,
        history: History,
        changes: UnitOfWork,
    ) -> None:
        self._writes = writes
        self._customers = customers
        self._cards = cards
        self._history = history
        self._changes = changes

    async def find(
        self, business_id: int, phone_prefix: str, identifier: Identifier
    ) -> CustomerCard:
        path = f"identifier.{identifier.kind.value}"
        if identifier.kind is IdentifierKind.PHONE:
            phone = identifiers.normalize_phone(identifier.value, phone_prefix, path)
            membership = await self._customers.membership_by_phone(business_id, phone)
        elif identifier.kind in _card_kinds:
            value = identifiers.normalize_stored(identifier.kind, identifier.value, path)
            membership = await self._customers.membership_by_identifier(
                business_id, identifier.kind, value
            )
        else:
            raise invalid(
                path, "the control panel finds customers by phone or card", "KIND_INVALID"
            )
        if membership is None:
            raise _not_found("identifier")
        return await self._card(business_id, membership)

    async def get(self, business_id: int, customer_id: int) -> CustomerCard:
        membership = await self._customers.membership(business_id, customer_id)
        if membership is None:
            raise _not_found()
        return await self._card(business_id, membership)

    async def _card(self, business_id: int, membership: Membership) -> CustomerCard:
        match = await self._customers.match(business_id, membership)
        extras = await self._cards.extras(business_id, membership.customer_id)
        if extras is None:
            raise _not_found()
        return CustomerCard(
            match,
            _lots(extras["lots"]),
            _coupons(extras["coupons"]),
            extras["personal_data_consent"],
            extras["created_at"],
            extras["profile_version"],
        )

    async def ledger(
        self, business_id: int, customer_id: int, page_size: int, token: str
    ) -> Page[LedgerEntry]:
        """Newest first; a page token names the entry the next page starts before."""
        request = PageRequest.of(page_size, token, ["ledger", business_id, customer_id])
        rows = await self._cards.ledger(business_id, customer_id, request.after, request.limit)
        if not rows and not request.after:
            await self.get(business_id, customer_id)  # NOT_FOUND for a stranger's id
        return page_of(request, rows, "entry_id", lambda row: LedgerEntry(**row))

    async def transactions(
        self, business_id: int, customer_id: int, page_size: int, token: str
    ) -> tuple[list[TransactionRecord], str]:
        await self.get(business_id, customer_id)
        return await self._history.page(
            business_id, page_size, token, ListFilter(customer_id=customer_id)
        )

    async def update(
        self, actor: Actor, customer_id: int, expected_version: int, profile: Profile
    ) -> CustomerCard:
        fields = Fields()
        fields.expected_version(expected_version, "expected_profile_version")
        if profile.access_type is None:
            fields.wrong("access_type", "required: full, limited, none or blacklisted")
        fields.raise_if_any()
        validate_questionnaire(profile.questionnaire)
        assert profile.access_type is not None
        async with self._changes.changing(actor.business_id) as changed:
            async with self._writes.writing(actor) as writing:
                before = await self._cards.locked_profile(writing, customer_id)
                if before is None:
                    raise _not_found()
                if before["profile_version"] != expected_version:
                    raise _stale(before["profile_version"], expected_version)
                if not await self._cards.live_category(writing, profile.category_id):
                    raise NotFound(
                        "no such live customer category in this business",
                        reason="CUSTOMER_CATEGORY_NOT_FOUND",
                        metadata={"field": "category_id"},
                    )
                after = await self._cards.update_profile(
                    writing, customer_id, _profile_row(profile)
                )
                await writing.record("update", MEMBERSHIPS, customer_id, before, after)
            changed.customers([customer_id])
        return await self.get(actor.business_id, customer_id)

    async def add_card(
        self, actor: Actor, customer_id: int, kind: IdentifierKind, raw: str
    ) -> CustomerCard:
        value = _card_value(kind, raw)
        async with self._changes.changing(actor.business_id) as changed:
            async with self._writes.writing(actor) as writing:
                holder = await self._cards.add_card(writing, customer_id, kind, value)
                if holder is None:
                    raise _not_found()
                if holder != customer_id:
                    raise AlreadyExists(
                        "the card belongs to another customer",
                        reason="IDENTIFIER_TAKEN",
                        metadata={"field": "value"},
                    )
                card = {"customer_id": customer_id, "kind": kind.value, "value": value}
                await writing.record("add_card", CARDS, customer_id, None, card)
            changed.customers([customer_id], [hint(kind.value, value)])
        return await self.get(actor.business_id, customer_id)

    async def remove_card(
        self, actor: Actor, customer_id: int, kind: IdentifierKind, raw: str
    ) -> CustomerCard:
        value = _card_value(kind, raw)
        async with self._changes.changing(actor.business_id) as changed:
            async with self._writes.writing(actor) as writing:
                if not await self._cards.remove_card(writing, customer_id, kind, value):
                    await self.get(actor.business_id, customer_id)
                    raise NotFound("this customer has no such card", reason="IDENTIFIER_NOT_FOUND")
                card = {"customer_id": customer_id, "kind": kind.value, "value": value}
                await writing.record("remove_card", CARDS, customer_id, card, None)
            changed.customers([customer_id], [hint(kind.value, value)])
        return await self.get(actor.business_id, customer_id)


def _card_value(kind: IdentifierKind, raw: str) -> str:
    if kind not in _card_kinds:
        raise invalid("kind", "CARD_NUMBER or CARD_QR", "KIND_INVALID")
    return identifiers.normalize_stored(kind, raw, "value")


def _profile_row(profile: Profile) -> Mapping[str, object]:
    assert profile.access_type is not None
    questionnaire = profile.questionnaire
    return {
        "category_id": profile.category_id,
        "access_type": profile.access_type.value,
        "given_name": questionnaire.given_name,
        "family_name": questionnaire.family_name,
        "language": questionnaire.language,
        "personal_data_consent": questionnaire.personal_data_consent,
    }


def _stale(version: int, expected: int) -> Aborted:
    return Aborted(
        f"the profile is at version {version}, not {expected}: read it again",
        reason="VERSION_MISMATCH",
        retry_after_seconds=0,
    )
