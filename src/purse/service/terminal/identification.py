"""Identifying customers at a terminal, issuing steward codes, registering customers.

The terminal's business scopes everything: a card of business A is unknown at a terminal
of business B, and the membership returned is always the one in the terminal's business.
A steward code is single use, and a terminal may try at most `steward_code_guesses_max`
codes that redeem nothing per window: each try is reserved (one Redis script) before the
code is looked up, so guessing is refused (RateLimited) before it can find a live code.
An unknown phone enrols the customer ("New customers", the program's default access
type) when the program allows it. A blacklisted customer is identified, and the
membership says so; refusing transactions is the transaction's business.

Registration writes the registering business's membership only: names and language are
what that business collected, so a registration by one business never changes what
another one shows, and only the registering business's cached membership is forgotten.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from purse.domain import credentials, identifiers
from purse.domain.customers import (
    AccessType,
    CustomerMatch,
    Membership,
    Questionnaire,
    validate_questionnaire,
    with_points_limit,
)
from purse.domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    invalid,
)
from purse.domain.identifiers import Identifier, IdentifierKind
from purse.domain.pages import page_limit
from purse.domain.terminals import TerminalContext, TerminalKind
from purse.service.ports import Customers, Limit, MembershipCache, ProgramRules, StewardCodeIssuer
from purse.service.unit_of_work import UnitOfWork
from purse.store.redis import keys
from purse.store.redis.balance_cache import hint

search_page_size_default = 20
search_page_size_max = 100

_steward_refusals = {
    "used": ("this steward code was used already", "STEWARD_CODE_USED"),
    "expired": ("this steward code has expired; issue a new one", "STEWARD_CODE_EXPIRED"),
}


def _customer_not_found(what: str) -> NotFound:
    return NotFound(f"no customer of this business has this {what}", reason="CUSTOMER_NOT_FOUND")


class IdentificationService:
    """Who is this customer, in this terminal's business."""

    def __init__(
        self,
        customers: Customers,
        steward_codes: StewardCodeIssuer,
        steward_guesses: Limit,
        app_token_key: bytes,
        app_token_window_seconds: int,
        programs: ProgramRules,
        clock: Callable[[], float] = time.time,
        cache: MembershipCache | None = None,
        changes: UnitOfWork | None = None,
    ) -> None:
        self._customers = customers
        self._programs = programs
        self._cache = cache
        self._changes = changes or UnitOfWork()
        self._steward_codes = steward_codes
        self._steward_guesses = steward_guesses
        self._app_token_key = app_token_key
        self._app_token_window_seconds = app_token_window_seconds
        self._clock = clock

    async def identify_customer(
        self, terminal: TerminalContext, identifier: Identifier
    ) -> Membership:
        """IdentifyCustomer's answer: `identify`, with the points pocket's no-PIN limit of
        the terminal's program (read alongside, never cached with the membership)."""
        membership, limit = await asyncio.gather(
            self.identify(terminal, identifier), self._programs.points_limit(terminal)
        )
        return with_points_limit(membership, limit)

    async def identify(
        self,
        terminal: TerminalContext,
        identifier: Identifier,
        field: str = "identifier",
        cached: bool = True,
    ) -> Membership:
        """The membership `identifier` names. `cached=False` reads the database even when
        the balance cache is on: answers that are stored (ProcessCheck) must not rest on
        a cached balance."""
        kind, raw = identifier.kind, identifier.value
        path = f"{field}.{kind.value}"
        business_id = terminal.business_id
        cache = self._cache if cached else None
        if kind is IdentifierKind.PHONE:
            phone = identifiers.normalize_phone(raw, terminal.phone_prefix, path)
            return await _through(
                cache, business_id, hint(kind.value, phone), lambda: self._by_phone(terminal, phone)
            )
        if kind is IdentifierKind.CARD_NUMBER or kind is IdentifierKind.CARD_QR:
            value = identifiers.normalize_stored(kind, raw, path)
            return await _through(
                cache,
                business_id,
                hint(kind.value, value),
                lambda: self._by_card(terminal, kind, value),
            )
        if kind is IdentifierKind.APP_TOKEN:
            customer_id = credentials.verify_app_token(
                self._app_token_key,
                raw.strip(),
                self._clock(),
                self._app_token_window_seconds,
                path,
            )
            return await _through(
                cache, business_id, customer_id, lambda: self._by_customer(terminal, customer_id)
            )
        assert kind is IdentifierKind.STEWARD_CODE
        # The code is spent here, whatever the cache says: it is single use.
        customer_id = await self._steward_customer(
            terminal, identifiers.normalize_steward_code(raw, path)
        )
        return await _through(
            cache, business_id, customer_id, lambda: self._member(terminal, customer_id)
        )

    async def _by_card(
        self, terminal: TerminalContext, kind: IdentifierKind, value: str
    ) -> Membership:
        found = await self._customers.membership_by_identifier(terminal.business_id, kind, value)
        if found is None:
            raise _customer_not_found(kind.value.replace("_", " "))
        return found

    async def identify_many(
        self, terminal: TerminalContext, wanted: Sequence[Identifier | None]
    ) -> list[Membership | DomainError | None]:
        """Each identifier's membership (None for none) or refusal; members known by phone
        are read in one query, everyone else as `identify` does."""
        phones: dict[int, str] = {}
        results: list[Membership | DomainError | None] = [None] * len(wanted)
        for index, identifier in enumerate(wanted):
            if identifier is None or identifier.kind is not IdentifierKind.PHONE:
                continue
            try:
                phones[index] = identifiers.normalize_phone(
                    identifier.value, terminal.phone_prefix, "identifier.phone"
                )
            except DomainError as refusal:
                results[index] = refusal
        known = await self._customers.memberships_by_phones(
            terminal.business_id, sorted(set(phones.values()))
        )
        for index, phone in phones.items():
            results[index] = known.get(phone)
        rest = [
            index
            for index, identifier in enumerate(wanted)
            if identifier is not None and results[index] is None
        ]
        found = await asyncio.gather(
            *(self._identify_or_refusal(terminal, wanted[i]) for i in rest)
        )
        for index, membership in zip(rest, found, strict=True):
            results[index] = membership
        return results

    async def _identify_or_refusal(
        self, terminal: TerminalContext, identifier: Identifier | None
    ) -> Membership | DomainError:
        assert identifier is not None
        try:
            return await self.identify(terminal, identifier, cached=False)
        except DomainError as refusal:
            return refusal

    async def _by_phone(self, terminal: TerminalContext, phone: str) -> Membership:
        found = await self._customers.membership_by_phone(terminal.business_id, phone)
        if found is not None:
            return found
        if not terminal.enrols_unknown_phones:
            raise _customer_not_found("phone")
        customer_id, enrolled = await self._customers.enrol(
            terminal.business_id, phone, AccessType(terminal.default_access_type)
        )
        return await self._membership(terminal, customer_id, enrolled)

    async def _by_customer(self, terminal: TerminalContext, customer_id: int) -> Membership:
        found = await self._customers.membership(terminal.business_id, customer_id)
        if found is not None:
            return found
        phone = await self._customers.customer_phone(customer_id)
        if phone is None:
            raise _customer_not_found("app token")
        return await self._by_phone(terminal, phone)

    async def _steward_customer(self, terminal: TerminalContext, code: str) -> int:
        """The code's customer. A guess is reserved before the code is looked up; only a
        code that redeems gives its guess back."""
        guess_key = keys.steward_code_guesses(terminal.business_id, terminal.terminal_id)
        await self._steward_guesses.take(
            guess_key,
            "too many steward codes that redeem nothing from this terminal; try later",
            "STEWARD_CODE_RATE_LIMITED",
        )
        state, customer_id = await self._steward_codes.redeem(terminal.business_id, code)
        if state == "ok":
            await self._steward_guesses.release(guess_key)
        if state == "unknown":
            raise NotFound("no such steward code in this business", reason="STEWARD_CODE_NOT_FOUND")
        if state != "ok":
            message, reason = _steward_refusals[state]
            raise FailedPrecondition(message, reason=reason)
        return customer_id

    async def _member(self, terminal: TerminalContext, customer_id: int) -> Membership:
        found = await self._customers.membership(terminal.business_id, customer_id)
        if found is None:
            raise _customer_not_found("steward code")
        return found

    async def _membership(
        self, terminal: TerminalContext, customer_id: int, enrolled: bool
    ) -> Membership:
        found = await self._customers.membership(terminal.business_id, customer_id)
        assert found is not None, "a membership just enrolled must be readable"
        if enrolled:
            found = _replace_enrolled(found)
        return found

    async def issue_steward_code(
        self, terminal: TerminalContext, identifier: Identifier
    ) -> tuple[str, float]:
        """(code, expiry in Unix seconds) for the customer `identifier` names."""
        if terminal.kind is not TerminalKind.STEWARD:
            raise PermissionDenied(
                "only steward terminals issue steward codes", reason="TERMINAL_NOT_STEWARD"
            )
        if identifier.kind is IdentifierKind.STEWARD_CODE:
            raise invalid(
                "identifier.steward_code", "a steward code cannot be issued for a steward code"
            )
        membership = await self.identify(terminal, identifier)
        return await self._steward_codes.issue(terminal.business_id, membership.customer_id)

    def app_token(self, customer_id: int) -> str:
        """The customer app's current QR token (the customer service hands it out)."""
        return credentials.issue_app_token(
            self._app_token_key, customer_id, self._clock(), self._app_token_window_seconds
        )

    async def search(
        self, terminal: TerminalContext, identifier: Identifier, page_size: int
    ) -> list[CustomerMatch]:
        limit = page_limit(page_size, search_page_size_default, search_page_size_max)
        if identifier.kind is IdentifierKind.PHONE:
            prefix = identifiers.phone_search_prefix(
                identifier.value, terminal.phone_prefix, "phone_prefix"
            )
            matches = await self._customers.search_by_phone_prefix(
                terminal.business_id, prefix, limit
            )
        else:
            value = identifiers.normalize_stored(
                identifier.kind, identifier.value, identifier.kind.value
            )
            found = await self._customers.membership_by_identifier(
                terminal.business_id, identifier.kind, value
            )
            matches = (
                [] if found is None else [await self._customers.match(terminal.business_id, found)]
            )
        return await self._with_points_limit(terminal, matches)

    async def register(
        self, terminal: TerminalContext, phone: str, questionnaire: Questionnaire, card: str
    ) -> CustomerMatch:
        """Enrol with a questionnaire; an existing member's names and language become the
        ones given (an empty one keeps what this business recorded before)."""
        normalized = identifiers.normalize_phone(phone, terminal.phone_prefix, "phone")
        validate_questionnaire(questionnaire)
        card_number = identifiers.normalize_card_number(card, "card_number") if card else ""
        if card_number:
            holder = await self._customers.membership_by_identifier(
                terminal.business_id, IdentifierKind.CARD_NUMBER, card_number
            )
            if holder is not None and holder.phone != normalized:
                raise _identifier_taken("card_number")
        async with self._changes.changing(terminal.business_id) as changed:
            customer_id, enrolled = await self._customers.enrol(
                terminal.business_id,
                normalized,
                AccessType(terminal.default_access_type),
                questionnaire,
            )
            if not enrolled and _changes_membership(questionnaire):
                changed.customers([customer_id])
        if card_number:
            await self._attach(terminal, customer_id, IdentifierKind.CARD_NUMBER, card_number)
        membership = await self._membership(terminal, customer_id, enrolled)
        match = await self._customers.match(terminal.business_id, membership)
        return (await self._with_points_limit(terminal, [match]))[0]

    async def _with_points_limit(
        self, terminal: TerminalContext, matches: list[CustomerMatch]
    ) -> list[CustomerMatch]:
        """Matches as answered: each points pocket with the program's no-PIN limit."""
        if not matches:
            return matches
        limit = await self._programs.points_limit(terminal)
        return [
            replace(match, membership=with_points_limit(match.membership, limit))
            for match in matches
        ]

    async def add_identifier(
        self, terminal: TerminalContext, customer_id: int, kind: IdentifierKind, raw: str
    ) -> CustomerMatch:
        value = identifiers.normalize_stored(kind, raw, "value")
        await self._attach(terminal, customer_id, kind, value)
        return await self._match(terminal, customer_id)

    async def remove_identifier(
        self, terminal: TerminalContext, customer_id: int, kind: IdentifierKind, raw: str
    ) -> CustomerMatch:
        value = identifiers.normalize_stored(kind, raw, "value")
        async with self._changes.changing(terminal.business_id) as changed:
            removed = await self._customers.remove_identifier(
                terminal.business_id, customer_id, kind, value
            )
            if removed:
                changed.customers([customer_id], [hint(kind.value, value)])
        if not removed:
            raise NotFound("this customer has no such identifier", reason="IDENTIFIER_NOT_FOUND")
        return await self._match(terminal, customer_id)

    async def _attach(
        self, terminal: TerminalContext, customer_id: int, kind: IdentifierKind, value: str
    ) -> None:
        holder = await self._customers.add_identifier(
            terminal.business_id, customer_id, kind, value
        )
        if holder is None:
            raise _customer_not_found("id")
        if holder != customer_id:
            raise _identifier_taken(kind.value)

    async def _match(self, terminal: TerminalContext, customer_id: int) -> CustomerMatch:
        membership = await self._customers.membership(terminal.business_id, customer_id)
        if membership is None:
            raise _customer_not_found("id")
        return await self._customers.match(terminal.business_id, membership)


async def _through(
    cache: MembershipCache | None,
    business_id: int,
    by: str | int,
    read: Callable[[], Awaitable[Membership]],
) -> Membership:
    """The cached membership, or the database's (then kept for the next identification)."""
    if cache is None:
        return await read()
    found = await cache.lookup(business_id, by)
    if found.membership is not None:
        return found.membership
    membership = await read()
    await cache.remember(business_id, membership, by, found.ticket)
    return membership


def _changes_membership(questionnaire: Questionnaire) -> bool:
    """Whether registering an existing member overwrites the names or language this
    business recorded."""
    return bool(questionnaire.given_name or questionnaire.family_name or questionnaire.language)


def _identifier_taken(field: str) -> AlreadyExists:
    return AlreadyExists(
        f"this {field.replace('_', ' ')} belongs to another customer", reason="IDENTIFIER_TAKEN"
    )


def _replace_enrolled(membership: Membership) -> Membership:
    return membership._replace(newly_enrolled=True)
