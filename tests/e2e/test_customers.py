"""Searching, registering, and adding and removing card identifiers from a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from support import Tenant, bearer, error_reason, make_business_through_api, new_phone

from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def register(
    stub: TerminalServiceAsyncStub, business: Tenant, **fields: object
) -> pb.RegisterCustomerResponse:
    return await stub.RegisterCustomer(
        pb.RegisterCustomerRequest(**fields),  # type: ignore[arg-type]
        metadata=bearer(business.cash_desk.api_key),
    )


async def test_registering_keeps_the_questionnaire_and_attaches_the_card(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    answer = await register(
        terminal_stub,
        business,
        phone=phone,
        given_name="Taras",
        family_name="Shevchenko",
        language="uk",
        card_number="REG-0001",
        personal_data_consent=True,
    )
    assert answer.membership.newly_enrolled
    assert (answer.membership.given_name, answer.membership.language) == ("Taras", "uk")
    assert [(i.kind, i.value) for i in answer.identifiers] == [
        (common_pb2.IDENTIFIER_KIND_PHONE, phone),
        (common_pb2.IDENTIFIER_KIND_CARD_NUMBER, "REG0001"),
    ]
    again = await register(terminal_stub, business, phone=phone)
    assert not again.membership.newly_enrolled
    assert again.membership.given_name == "Taras"


async def test_registering_with_another_customers_card_is_refused(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    await register(terminal_stub, business, phone=new_phone(), card_number="TAKEN01")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await register(terminal_stub, business, phone=new_phone(), card_number="TAKEN01")
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(refused.value) == "IDENTIFIER_TAKEN"


async def test_cards_are_added_found_and_removed(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    auth = bearer(business.cash_desk.api_key)
    member = (await register(terminal_stub, business, phone=new_phone())).membership
    added = await terminal_stub.AddCustomerIdentifier(
        pb.AddCustomerIdentifierRequest(
            customer_id=member.customer_id,
            kind=common_pb2.IDENTIFIER_KIND_CARD_QR,
            value="qr:ADD-1",
        ),
        metadata=auth,
    )
    assert (common_pb2.IDENTIFIER_KIND_CARD_QR, "qr:ADD-1") in [
        (i.kind, i.value) for i in added.identifiers
    ]
    found = await terminal_stub.SearchCustomers(
        pb.SearchCustomersRequest(card_qr="qr:ADD-1"), metadata=auth
    )
    assert [m.membership.customer_id for m in found.customers] == [member.customer_id]
    removed = await terminal_stub.RemoveCustomerIdentifier(
        pb.RemoveCustomerIdentifierRequest(
            customer_id=member.customer_id,
            kind=common_pb2.IDENTIFIER_KIND_CARD_QR,
            value="qr:ADD-1",
        ),
        metadata=auth,
    )
    assert [i.kind for i in removed.identifiers] == [common_pb2.IDENTIFIER_KIND_PHONE]
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await terminal_stub.RemoveCustomerIdentifier(
            pb.RemoveCustomerIdentifierRequest(
                customer_id=member.customer_id,
                kind=common_pb2.IDENTIFIER_KIND_CARD_QR,
                value="qr:ADD-1",
            ),
            metadata=auth,
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_terminal_cannot_touch_identifiers_of_another_business_customer(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    member = (await register(terminal_stub, business, phone=new_phone())).membership
    other = await make_business_through_api(channel, pool)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.AddCustomerIdentifier(
            pb.AddCustomerIdentifierRequest(
                customer_id=member.customer_id,
                kind=common_pb2.IDENTIFIER_KIND_CARD_NUMBER,
                value="STEAL01",
            ),
            metadata=bearer(other.cash_desk.api_key),
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_phone_cannot_be_added_as_a_stored_identifier(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    member = (await register(terminal_stub, business, phone=new_phone())).membership
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.AddCustomerIdentifier(
            pb.AddCustomerIdentifierRequest(
                customer_id=member.customer_id,
                kind=common_pb2.IDENTIFIER_KIND_PHONE,
                value="+380501234567",
            ),
            metadata=bearer(business.cash_desk.api_key),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "KIND_INVALID"


async def test_search_by_phone_prefix_lists_matching_members_only(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    await register(terminal_stub, business, phone=phone)
    found = await terminal_stub.SearchCustomers(
        pb.SearchCustomersRequest(phone_prefix=phone[:-2], page_size=50),
        metadata=bearer(business.cash_desk.api_key),
    )
    phones = [match.membership.phone for match in found.customers]
    assert phone in phones
    assert all(item.startswith(phone[:-2]) for item in phones)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SearchCustomers(
            pb.SearchCustomersRequest(phone_prefix="+38", page_size=500),
            metadata=bearer(business.cash_desk.api_key),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
