"""Customers, memberships and identifiers on a real PostgreSQL, always business-scoped."""

from __future__ import annotations

import asyncio

import asyncpg
from support import Tenant, make_business, new_phone

from purse.domain.customers import AccessType, PocketKind, Questionnaire
from purse.domain.identifiers import IdentifierKind
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.provisioning import Provisioning


async def test_enrolment_creates_membership_and_points_pocket_once(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store, phone = CustomerStore(pool), new_phone()
    customer_id, enrolled = await store.enrol(business.business_id, phone, AccessType.LIMITED)
    again_id, enrolled_again = await store.enrol(business.business_id, phone, AccessType.FULL)
    assert enrolled and not enrolled_again
    assert again_id == customer_id
    membership = await store.membership_by_phone(business.business_id, phone)
    assert membership is not None
    assert membership.access_type is AccessType.LIMITED
    assert membership.category_title == "New customers"
    assert [(p.kind, p.balance, p.held) for p in membership.pockets] == [(PocketKind.POINTS, 0, 0)]


async def test_concurrent_enrolments_of_one_phone_make_one_membership(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store, phone = CustomerStore(pool), new_phone()
    results = await asyncio.gather(
        *(store.enrol(business.business_id, phone, AccessType.FULL) for _ in range(20))
    )
    assert len({customer_id for customer_id, _ in results}) == 1
    assert sum(enrolled for _, enrolled in results) == 1
    count = await pool.fetchval(
        "SELECT count(*) FROM memberships m JOIN customers c USING (customer_id)"
        " WHERE m.business_id = $1 AND c.phone = $2",
        business.business_id,
        phone,
    )
    assert count == 1


async def test_one_phone_has_separate_pockets_in_each_business(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store, phone = CustomerStore(pool), new_phone()
    other = await make_business(pool)
    customer_id, _ = await store.enrol(business.business_id, phone, AccessType.FULL)
    await Provisioning(pool).adjust_pocket(business.business_id, customer_id, 0, 10_000)
    other_id, _ = await store.enrol(other.business_id, phone, AccessType.FULL)
    assert other_id == customer_id
    mine = await store.membership(business.business_id, customer_id)
    theirs = await store.membership(other.business_id, customer_id)
    assert mine is not None and theirs is not None
    assert mine.pockets[0].balance == 10_000
    assert theirs.pockets[0].balance == 0


async def test_a_card_of_one_business_is_unknown_to_another(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = CustomerStore(pool)
    other = await make_business(pool)
    customer_id, _ = await store.enrol(business.business_id, new_phone(), AccessType.FULL)
    holder = await store.add_identifier(
        business.business_id, customer_id, IdentifierKind.CARD_NUMBER, "CARD777"
    )
    assert holder == customer_id
    found = await store.membership_by_identifier(
        business.business_id, IdentifierKind.CARD_NUMBER, "CARD777"
    )
    assert found is not None and found.customer_id == customer_id
    assert (
        await store.membership_by_identifier(
            other.business_id, IdentifierKind.CARD_NUMBER, "CARD777"
        )
        is None
    )
    # Another business may not attach a card to a customer who is not its member.
    assert (
        await store.add_identifier(
            other.business_id, customer_id, IdentifierKind.CARD_NUMBER, "CARD778"
        )
        is None
    )


async def test_a_card_held_by_one_customer_reports_its_holder_to_another(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = CustomerStore(pool)
    first, _ = await store.enrol(business.business_id, new_phone(), AccessType.FULL)
    second, _ = await store.enrol(business.business_id, new_phone(), AccessType.FULL)
    await store.add_identifier(business.business_id, first, IdentifierKind.CARD_QR, "qr://1")
    holder = await store.add_identifier(
        business.business_id, second, IdentifierKind.CARD_QR, "qr://1"
    )
    assert holder == first
    assert await store.remove_identifier(
        business.business_id, first, IdentifierKind.CARD_QR, "qr://1"
    )
    assert not await store.remove_identifier(
        business.business_id, first, IdentifierKind.CARD_QR, "qr://1"
    )


async def test_search_by_phone_prefix_returns_members_with_their_cards(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    store = CustomerStore(pool)
    questionnaire = Questionnaire(given_name="Olena", language="uk")
    phone = new_phone()
    customer_id, _ = await store.enrol(business.business_id, phone, AccessType.FULL, questionnaire)
    await store.add_identifier(business.business_id, customer_id, IdentifierKind.CARD_NUMBER, "S1")
    matches = await store.search_by_phone_prefix(business.business_id, phone[:-1], 100)
    match = next(m for m in matches if m.membership.customer_id == customer_id)
    assert match.membership.given_name == "Olena"
    assert [(i.kind, i.value) for i in match.identifiers] == [
        (IdentifierKind.PHONE, phone),
        (IdentifierKind.CARD_NUMBER, "S1"),
    ]
