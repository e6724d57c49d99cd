"""Customers, memberships, identifiers and pockets, always scoped by business.

Every query takes the business id first and filters on it; a customer of another
business is simply not found. A membership is read with all its pockets in one round
trip. Enrolment (customer + membership + points pocket) is one statement.

What a business collected about a customer (names, language, consent) is read from and
written to that business's membership only; the shared `customers` row gives the phone
and nothing else, so no business sees or changes what another one collected.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from purse.domain.customers import (
    POINTS_ACCOUNT_TYPE_ID,
    AccessType,
    CustomerMatch,
    Membership,
    Pocket,
    PocketKind,
    Questionnaire,
    StoredIdentifier,
)
from purse.domain.identifiers import IdentifierKind
from purse.domain.localize import localized

search_results_max = 100

_membership_select = """
SELECT m.customer_id, c.phone, m.given_name, m.family_name, m.language,
       m.category_id, cat.name AS category_name, cat.title AS category_title,
       m.access_type, m.participation_confirmed, m.sales_count, m.sales_sum_minor_units,
       m.last_visit_at,
       ARRAY(
         SELECT ROW(p.pocket_id, p.account_type_id, coalesce(a.kind, 'points'),
                    coalesce(a.name, ''), a.title::text, p.balance, p.held,
                    a.redemption_limit_without_pin)
           FROM pockets p
           LEFT JOIN account_types a
             ON a.business_id = p.business_id AND a.account_type_id = p.account_type_id
          WHERE p.business_id = m.business_id AND p.customer_id = m.customer_id
            -- An archived account type is no longer offered: its empty pockets go.
            AND (a.archived_at IS NULL OR p.balance <> 0 OR p.held <> 0)
          ORDER BY p.account_type_id
       ) AS pockets,
       (SELECT ROW(coalesce(sum(l.remaining), 0), min(l.expires_at))
          FROM points_lots l
          JOIN pockets p ON p.business_id = l.business_id AND p.pocket_id = l.pocket_id
         WHERE p.business_id = m.business_id AND p.customer_id = m.customer_id
           AND p.account_type_id = 0 AND l.remaining > 0 AND l.expires_at > now()
       ) AS expiring
  FROM memberships m
  JOIN customers c ON c.customer_id = m.customer_id
  JOIN customer_categories cat
    ON cat.business_id = m.business_id AND cat.category_id = m.category_id
"""

# ($1 business, $2 customer, $3 kind, $4 value) -> member (NULL: not one), holder (the
# customer holding the value now: another one means it is taken).
ATTACH_IDENTIFIER = """
WITH member AS (
  SELECT customer_id FROM memberships WHERE business_id = $1 AND customer_id = $2
), inserted AS (
  INSERT INTO customer_identifiers (business_id, kind, value, customer_id)
  SELECT $1, $3, $4, customer_id FROM member
  ON CONFLICT (business_id, kind, value) DO NOTHING RETURNING customer_id
) SELECT (SELECT customer_id FROM member) AS member,
         coalesce((SELECT customer_id FROM inserted),
                  (SELECT customer_id FROM customer_identifiers
                    WHERE business_id = $1 AND kind = $3 AND value = $4)) AS holder
"""
DETACH_IDENTIFIER = """
DELETE FROM customer_identifiers
 WHERE business_id = $1 AND customer_id = $2 AND kind = $3 AND value = $4
"""

_enrol = """
WITH customer AS (
    -- A no-op update, so that RETURNING gives the id of a phone known already, one a
    -- concurrent enrolment committed after this statement began included. The shared
    -- row holds nothing a business collected: there is nothing else to write to it.
    INSERT INTO customers (phone) VALUES ($2)
    ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone
    RETURNING customer_id
), membership AS (
    INSERT INTO memberships (business_id, customer_id, category_id, access_type,
                             personal_data_consent, given_name, family_name, language)
    SELECT $1, customer.customer_id, cat.category_id, $3, $7, $4, $5, $6
      FROM customer
      JOIN customer_categories cat ON cat.business_id = $1 AND cat.is_default
    -- An existing member: what this business registers now replaces what it had, an
    -- empty value keeping the old one; nothing is written when nothing is given.
    ON CONFLICT (business_id, customer_id) DO UPDATE SET
        given_name = CASE WHEN EXCLUDED.given_name <> '' THEN EXCLUDED.given_name
                          ELSE memberships.given_name END,
        family_name = CASE WHEN EXCLUDED.family_name <> '' THEN EXCLUDED.family_name
                           ELSE memberships.family_name END,
        language = CASE WHEN EXCLUDED.language <> '' THEN EXCLUDED.language
                        ELSE memberships.language END,
        profile_version = memberships.profile_version + 1
     WHERE EXCLUDED.given_name <> '' OR EXCLUDED.family_name <> '' OR EXCLUDED.language <> ''
    -- xmax is 0 only in a row version this statement inserted (an update sets it).
    RETURNING customer_id, xmax = 0 AS inserted
), points AS (
    INSERT INTO pockets (business_id, customer_id, account_type_id)
    SELECT $1, customer_id, 0 FROM membership WHERE inserted
    ON CONFLICT DO NOTHING
)
SELECT customer.customer_id,
       EXISTS (SELECT 1 FROM membership WHERE inserted) AS enrolled
  FROM customer
"""


# Enum members by stored value: a dict lookup costs a fraction of the Enum call.
_pocket_kinds = {kind.value: kind for kind in PocketKind}
_access_types = {access.value: access for access in AccessType}


def _pocket(values: Sequence[Any], language: str) -> Pocket:
    pocket_id, account_type_id, kind, name, title, balance, held, limit = values
    # Positional: a compiled record is built about twice as fast without keywords.
    return Pocket(
        pocket_id,
        _pocket_kinds[kind],
        account_type_id,
        # Titles come as text: jsonb inside an anonymous record skips the jsonb codec.
        ""
        if account_type_id == POINTS_ACCOUNT_TYPE_ID
        else localized(json.loads(title), language, name),
        balance,
        held,
        limit,
    )


def _with_expiring(pockets: tuple[Pocket, ...], expiring: Sequence[Any]) -> tuple[Pocket, ...]:
    """The points pocket with its live special points: how many, and the soonest expiry."""
    amount, soonest = expiring
    return tuple(
        pocket.with_expiring(int(amount), soonest)
        if pocket.account_type_id == POINTS_ACCOUNT_TYPE_ID and amount
        else pocket
        for pocket in pockets
    )


def _membership(row: asyncpg.Record, newly_enrolled: bool = False) -> Membership:
    language = row["language"]
    return Membership(
        row["customer_id"],
        row["phone"],
        row["category_id"],
        localized(row["category_title"], language, row["category_name"]),
        _access_types[row["access_type"]],
        row["participation_confirmed"],
        newly_enrolled,
        _with_expiring(
            tuple(_pocket(values, language) for values in row["pockets"]), row["expiring"]
        ),
        row["sales_count"],
        row["sales_sum_minor_units"],
        row["last_visit_at"],
        row["given_name"],
        row["family_name"],
        language,
    )


class CustomerStore:
    """Reads and writes customers of one business at a time (the first argument)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def membership(self, business_id: int, customer_id: int) -> Membership | None:
        row = await self._pool.fetchrow(
            _membership_select + " WHERE m.business_id = $1 AND m.customer_id = $2",
            business_id,
            customer_id,
        )
        return None if row is None else _membership(row)

    async def membership_by_phone(self, business_id: int, phone: str) -> Membership | None:
        row = await self._pool.fetchrow(
            _membership_select + " WHERE m.business_id = $1 AND c.phone = $2",
            business_id,
            phone,
        )
        return None if row is None else _membership(row)

    async def memberships_by_phones(
        self, business_id: int, phones: Sequence[str]
    ) -> dict[str, Membership]:
        """The members among `phones`, by phone, in one query."""
        rows = await self._pool.fetch(
            _membership_select + " WHERE m.business_id = $1 AND c.phone = ANY($2::text[])",
            business_id,
            list(phones),
        )
        return {row["phone"]: _membership(row) for row in rows}

    async def membership_by_identifier(
        self, business_id: int, kind: IdentifierKind, value: str
    ) -> Membership | None:
        row = await self._pool.fetchrow(
            _membership_select + " WHERE m.business_id = $1 AND m.customer_id = ("
            "   SELECT i.customer_id FROM customer_identifiers i"
            "    WHERE i.business_id = $1 AND i.kind = $2 AND i.value = $3)",
            business_id,
            kind.value,
            value,
        )
        return None if row is None else _membership(row)

    async def enrol(
        self,
        business_id: int,
        phone: str,
        access_type: AccessType,
        questionnaire: Questionnaire | None = None,
    ) -> tuple[int, bool]:
        """(customer id, whether the membership is new); idempotent under races."""
        questionnaire = questionnaire or Questionnaire()
        row = await self._pool.fetchrow(
            _enrol,
            business_id,
            phone,
            access_type.value,
            questionnaire.given_name,
            questionnaire.family_name,
            questionnaire.language,
            questionnaire.personal_data_consent,
        )
        assert row is not None
        return row["customer_id"], row["enrolled"]

    async def add_identifier(
        self, business_id: int, customer_id: int, kind: IdentifierKind, value: str
    ) -> int | None:
        """Attach; returns the customer who holds the value now (another one = conflict),
        or None when the customer is not a member of this business."""
        row = await self._pool.fetchrow(
            ATTACH_IDENTIFIER,
            business_id,
            customer_id,
            kind.value,
            value,
        )
        assert row is not None
        return None if row["member"] is None else row["holder"]

    async def remove_identifier(
        self, business_id: int, customer_id: int, kind: IdentifierKind, value: str
    ) -> bool:
        status = await self._pool.execute(
            DETACH_IDENTIFIER,
            business_id,
            customer_id,
            kind.value,
            value,
        )
        return str(status).endswith(" 1")

    async def search_by_phone_prefix(
        self, business_id: int, phone_prefix: str, limit: int
    ) -> list[CustomerMatch]:
        assert 0 < limit <= search_results_max
        rows = await self._pool.fetch(
            _membership_select
            + " WHERE m.business_id = $1 AND c.phone LIKE $2 || '%' ORDER BY c.phone LIMIT $3",
            business_id,
            phone_prefix,
            limit,
        )
        return await self._with_identifiers(business_id, [_membership(row) for row in rows])

    async def _with_identifiers(
        self, business_id: int, memberships: list[Membership]
    ) -> list[CustomerMatch]:
        if not memberships:
            return []
        rows = await self._pool.fetch(
            "SELECT customer_id, kind, value FROM customer_identifiers"
            " WHERE business_id = $1 AND customer_id = ANY($2::bigint[])"
            " ORDER BY customer_id, kind, value",
            business_id,
            [membership.customer_id for membership in memberships],
        )
        cards: dict[int, list[StoredIdentifier]] = {}
        for row in rows:
            cards.setdefault(row["customer_id"], []).append(
                StoredIdentifier(IdentifierKind(row["kind"]), row["value"])
            )
        return [
            CustomerMatch(
                membership,
                (
                    StoredIdentifier(IdentifierKind.PHONE, membership.phone),
                    *cards.get(membership.customer_id, ()),
                ),
            )
            for membership in memberships
        ]

    async def match(self, business_id: int, membership: Membership) -> CustomerMatch:
        matches = await self._with_identifiers(business_id, [membership])
        return matches[0]

    async def customer_phone(self, customer_id: int) -> str | None:
        """The phone of a customer (customers are shared by every business)."""
        phone: str | None = await self._pool.fetchval(
            "SELECT phone FROM customers WHERE customer_id = $1", customer_id
        )
        return phone
