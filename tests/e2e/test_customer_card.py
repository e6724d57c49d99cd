"""The customer's card in the control panel: what an administrator reads of one customer
and changes about them, and what a terminal sees right after."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import credit_points, enrol
from support import Tenant, bearer, error_reason, field_violations, found_business, new_phone
from test_transactions import sale

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> AdminServiceAsyncStub:
    return AdminServiceStub(channel)


async def card_of(
    stub: AdminServiceAsyncStub, business: Tenant, phone: str
) -> admin.FindCustomerResponse:
    return await stub.FindCustomer(
        admin.FindCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
        metadata=bearer(business.administrator_api_key),
    )


async def identify(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, **identifier: str
) -> pb.IdentifyCustomerResponse:
    return await terminal_stub.IdentifyCustomer(
        pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(**identifier)),
        metadata=bearer(business.cash_desk.api_key),
    )


async def test_the_card_shows_what_the_customer_holds_and_did(
    stub: AdminServiceAsyncStub,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    customer = await enrol(channel, business)
    phone = customer.phone
    credited = await credit_points(channel, business, customer.customer_id, 5_000)
    till = bearer(business.cash_desk.api_key)
    await terminal_stub.ProcessCheck(sale("card-1", phone), metadata=till)
    # Above the no-PIN limit: held until the PIN comes.
    await terminal_stub.ProcessCheck(sale("card-2", phone, redeem=1_000), metadata=till)
    card = (await card_of(stub, business, phone)).card
    membership = card.membership
    assert membership.phone == phone
    assert (membership.pockets[0].balance, membership.pockets[0].held) == (5_000, 1_000)
    assert (membership.sales_count, card.average_check_minor_units) == (1, 10_000)
    assert card.HasField("member_since_time") and card.profile_version == 1
    key = bearer(business.administrator_api_key)
    entries = await stub.ListCustomerLedgerEntries(
        admin.ListCustomerLedgerEntriesRequest(customer_id=membership.customer_id, page_size=1),
        metadata=key,
    )
    assert [(each.kind, each.held_amount) for each in entries.entries] == [("hold", 1_000)]
    older = await stub.ListCustomerLedgerEntries(
        admin.ListCustomerLedgerEntriesRequest(
            customer_id=membership.customer_id, page_token=entries.next_page_token
        ),
        metadata=key,
    )
    assert [(each.kind, each.amount) for each in older.entries] == [("adjust", 5_000)]
    transactions = await stub.ListCustomerTransactions(
        admin.ListCustomerTransactionsRequest(customer_id=membership.customer_id), metadata=key
    )
    # Newest first, the owner's credit of the starting points too.
    assert [each.check_number for each in transactions.transactions] == [
        "card-2",
        "card-1",
        credited.transaction.check_number,
    ]


async def test_a_profile_change_is_what_a_terminal_sees_next(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    identified = await identify(terminal_stub, business, phone=phone)
    assert identified.membership.access_type == common_pb2.ACCESS_TYPE_FULL
    key = bearer(business.administrator_api_key)
    gold = await stub.CreateCustomerCategory(
        admin.CreateCustomerCategoryRequest(
            category=admin.CustomerCategory(name="Gold", title={"en": "Gold"})
        ),
        metadata=key,
    )
    card = (await card_of(stub, business, phone)).card
    updated = await stub.UpdateCustomer(
        admin.UpdateCustomerRequest(
            customer_id=card.membership.customer_id,
            expected_profile_version=card.profile_version,
            category_id=gold.category.category_id,
            access_type=common_pb2.ACCESS_TYPE_LIMITED,
            given_name="Olena",
            language="uk",
            personal_data_consent=True,
        ),
        metadata=key,
    )
    assert updated.card.profile_version == card.profile_version + 1
    seen = (await identify(terminal_stub, business, phone=phone)).membership
    assert (seen.access_type, seen.category_id, seen.given_name) == (
        common_pb2.ACCESS_TYPE_LIMITED,
        gold.category.category_id,
        "Olena",
    )
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.UpdateCustomer(
            admin.UpdateCustomerRequest(
                customer_id=card.membership.customer_id,
                expected_profile_version=card.profile_version,
                category_id=gold.category.category_id,
                access_type=common_pb2.ACCESS_TYPE_FULL,
            ),
            metadata=key,
        )
    assert error_reason(stale.value) == "VERSION_MISMATCH"


async def test_a_card_added_identifies_the_customer_and_a_removed_one_no_longer_does(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    customer_id = (await identify(terminal_stub, business, phone=phone)).membership.customer_id
    number = f"77{new_phone()[-10:]}"
    key = bearer(business.administrator_api_key)
    with pytest.raises(grpc.aio.AioRpcError):
        await identify(terminal_stub, business, card_number=number)
    await stub.AddCustomerCard(
        admin.AddCustomerCardRequest(
            customer_id=customer_id, kind=common_pb2.IDENTIFIER_KIND_CARD_NUMBER, value=number
        ),
        metadata=key,
    )
    found = await identify(terminal_stub, business, card_number=number)
    assert found.membership.customer_id == customer_id
    await stub.RemoveCustomerCard(
        admin.RemoveCustomerCardRequest(
            customer_id=customer_id, kind=common_pb2.IDENTIFIER_KIND_CARD_NUMBER, value=number
        ),
        metadata=key,
    )
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await identify(terminal_stub, business, card_number=number)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    entries = await stub.ListAuditEntries(
        admin.ListAuditEntriesRequest(resource="customer_identifiers"), metadata=key
    )
    assert [each.action for each in entries.entries] == ["remove_card", "add_card"]


async def test_bad_profile_fields_are_named_and_change_nothing(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    customer_id = (await identify(terminal_stub, business, phone=phone)).membership.customer_id
    key = bearer(business.administrator_api_key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.UpdateCustomer(
            admin.UpdateCustomerRequest(customer_id=customer_id, given_name="x" * 500),
            metadata=key,
        )
    assert {"expected_profile_version", "access_type"} <= set(field_violations(refused.value))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.UpdateCustomer(
            admin.UpdateCustomerRequest(
                customer_id=customer_id,
                expected_profile_version=1,
                category_id=10**12,
                access_type=common_pb2.ACCESS_TYPE_FULL,
            ),
            metadata=key,
        )
    assert error_reason(refused.value) == "CUSTOMER_CATEGORY_NOT_FOUND"
    assert (await card_of(stub, business, phone)).card.profile_version == 1


async def test_another_business_sees_none_of_the_customer(
    stub: AdminServiceAsyncStub,
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    phone = new_phone()
    customer_id = (await identify(terminal_stub, business, phone=phone)).membership.customer_id
    other = bearer((await found_business(channel, pool)).owner_api_key)
    calls: list[Awaitable[object]] = [
        stub.GetCustomer(admin.GetCustomerRequest(customer_id=customer_id), metadata=other),
        stub.FindCustomer(
            admin.FindCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
            metadata=other,
        ),
        stub.ListCustomerLedgerEntries(
            admin.ListCustomerLedgerEntriesRequest(customer_id=customer_id), metadata=other
        ),
        stub.ListCustomerTransactions(
            admin.ListCustomerTransactionsRequest(customer_id=customer_id), metadata=other
        ),
        stub.AddCustomerCard(
            admin.AddCustomerCardRequest(
                customer_id=customer_id, kind=common_pb2.IDENTIFIER_KIND_CARD_NUMBER, value="123456"
            ),
            metadata=other,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
