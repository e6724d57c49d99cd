"""Personal data is per business: the names and language one business collected about a
customer are never shown to, nor changed by, another business that knows the same phone —
not through identification, registration, search, the balance cache, nor the texts the
customer receives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import credit_points, five_percent_back, set_program
from support import (
    ServerProcess,
    Tenant,
    bearer,
    error_reason,
    field_violations,
    make_business_through_api,
)
from support import new_phone as a_new_phone
from test_identification_cache import cache_hits
from test_transactions import sale

from purse.domain.customers import given_name_characters_max
from purse.notify import texts
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

collected_by_first = {"given_name": "Olena", "family_name": "Kosach", "language": "uk"}
collected_by_second = {"given_name": "Lesya", "family_name": "Ukrainka", "language": "en"}
nothing_collected = ("", "", "")


def personal_data(membership: common_pb2.Membership) -> tuple[str, str, str]:
    return membership.given_name, membership.family_name, membership.language


def as_collected(fields: dict[str, str]) -> tuple[str, str, str]:
    return fields["given_name"], fields["family_name"], fields["language"]


async def identify(
    stub: TerminalServiceAsyncStub, business: Tenant, phone: str
) -> common_pb2.Membership:
    answer = await stub.IdentifyCustomer(
        pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
        metadata=bearer(business.cash_desk.api_key),
    )
    return answer.membership


async def register(
    stub: TerminalServiceAsyncStub, business: Tenant, phone: str, **fields: str
) -> common_pb2.Membership:
    answer = await stub.RegisterCustomer(
        pb.RegisterCustomerRequest(phone=phone, **fields),  # type: ignore[arg-type]
        metadata=bearer(business.cash_desk.api_key),
    )
    return answer.membership


async def searched(
    stub: TerminalServiceAsyncStub, business: Tenant, phone: str
) -> list[common_pb2.Membership]:
    """What SearchCustomers (always read from PostgreSQL) finds for exactly `phone`."""
    found = await stub.SearchCustomers(
        pb.SearchCustomersRequest(phone_prefix=phone), metadata=bearer(business.cash_desk.api_key)
    )
    return [match.membership for match in found.customers]


async def identify_from_cache(
    stub: TerminalServiceAsyncStub, server: ServerProcess, business: Tenant, phone: str
) -> common_pb2.Membership:
    """Identify twice; the second answer, returned, must come from the balance cache."""
    await identify(stub, business, phone)
    hits = await cache_hits(server)
    membership = await identify(stub, business, phone)
    assert await cache_hits(server) == hits + 1
    return membership


async def known_to_the_first(
    stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> tuple[Tenant, str]:
    """A second business, and a phone that only `business` registered (with its data)."""
    other, phone = await make_business_through_api(channel, pool), a_new_phone()
    await register(stub, business, phone, **collected_by_first)
    return other, phone


async def test_a_business_never_sees_names_another_business_collected(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    server: ServerProcess,
    business: Tenant,
) -> None:
    other, phone = await known_to_the_first(terminal_stub, channel, pool, business)
    first = await identify(terminal_stub, other, phone)
    assert first.newly_enrolled
    assert personal_data(first) == nothing_collected
    cached = await identify_from_cache(terminal_stub, server, other, phone)
    assert personal_data(cached) == nothing_collected
    assert [personal_data(m) for m in await searched(terminal_stub, other, phone)] == [
        nothing_collected
    ]
    mine = await identify(terminal_stub, business, phone)
    assert personal_data(mine) == as_collected(collected_by_first)


async def test_registering_a_phone_another_business_knows_shows_none_of_its_names(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    other, phone = await known_to_the_first(terminal_stub, channel, pool, business)
    enrolled = await register(terminal_stub, other, phone)
    assert enrolled.newly_enrolled
    assert personal_data(enrolled) == nothing_collected
    named = await register(terminal_stub, other, phone, given_name="Lesya")
    assert personal_data(named) == ("Lesya", "", "")
    # Empty fields keep what this business recorded, never what another one did.
    kept = await register(terminal_stub, other, phone)
    assert not kept.newly_enrolled
    assert personal_data(kept) == ("Lesya", "", "")


async def test_a_registration_by_another_business_leaves_what_the_first_collected(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    server: ServerProcess,
    business: Tenant,
) -> None:
    other, phone = await known_to_the_first(terminal_stub, channel, pool, business)
    await identify_from_cache(terminal_stub, server, business, phone)  # now cached
    theirs = await register(terminal_stub, other, phone, **collected_by_second)
    assert personal_data(theirs) == as_collected(collected_by_second)
    assert personal_data(await identify(terminal_stub, business, phone)) == as_collected(
        collected_by_first
    )
    assert [personal_data(m) for m in await searched(terminal_stub, business, phone)] == [
        as_collected(collected_by_first)
    ]
    assert personal_data(await identify(terminal_stub, other, phone)) == as_collected(
        collected_by_second
    )


async def outbox_text(
    pool: asyncpg.Pool, business: Tenant, transaction_id: int, purpose: str
) -> tuple[str, str]:
    """(language, body) of the message queued for a transaction."""
    row = await pool.fetchrow(
        "SELECT language, body FROM outbox_messages"
        " WHERE business_id = $1 AND transaction_id = $2 AND purpose = $3",
        business.business_id,
        transaction_id,
        purpose,
    )
    assert row is not None, f"no {purpose} message for transaction {transaction_id}"
    return row["language"], row["body"]


async def sell(
    stub: TerminalServiceAsyncStub, business: Tenant, request: pb.ProcessCheckRequest
) -> pb.ProcessCheckResponse:
    answer: pb.ProcessCheckResponse = await stub.ProcessCheck(
        request, metadata=bearer(business.cash_desk.api_key)
    )
    return answer


async def test_texts_to_a_customer_go_in_the_language_their_business_recorded(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    other, phone = await make_business_through_api(channel, pool), a_new_phone()
    for each in (business, other):
        await set_program(
            channel, each, rules=(five_percent_back,), points_redemption_limit_without_pin=1_000
        )
    member = await register(terminal_stub, business, phone, **collected_by_first)
    await credit_points(channel, business, member.customer_id, 5_000)
    await register(terminal_stub, other, phone, **collected_by_second)
    held = await sell(terminal_stub, business, sale("PD-PIN", phone, redeem=2_000))
    assert held.transaction.status == pb.TRANSACTION_STATUS_PENDING
    assert await outbox_text(pool, business, held.transaction.transaction_id, "pin") == (
        "uk",
        texts.pin_text("uk"),
    )
    for seller, language in ((business, "uk"), (other, "en")):
        done = await sell(terminal_stub, seller, sale(f"PD-{language}", phone))
        accrued = done.transaction.receipt.points_accrued_hundredths
        assert accrued > 0
        expected = texts.transaction_text(language, accrued, 0, done.membership.pockets[0].balance)
        assert await outbox_text(pool, seller, done.transaction.transaction_id, "transaction") == (
            language,
            expected,
        )


async def test_names_and_languages_beyond_their_limits_are_refused_and_enrol_nobody(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = a_new_phone()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await register(
            terminal_stub,
            business,
            phone,
            given_name="x" * (given_name_characters_max + 1),
            language="not a tag",
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "QUESTIONNAIRE_INVALID"
    assert set(field_violations(refused.value)) == {"given_name", "language"}
    assert await searched(terminal_stub, business, phone) == []
    longest = "x" * given_name_characters_max
    accepted = await register(
        terminal_stub, business, phone, given_name=longest, language="zh-Hant-TW"
    )
    assert personal_data(accepted) == (longest, "", "zh-Hant-TW")
