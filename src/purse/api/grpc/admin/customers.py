"""AdminService: the customer's card."""

from __future__ import annotations

from purse.admin.v1 import admin_service_pb2 as pb
from purse.admin.v1 import customers_pb2
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.common.calls import Context
from purse.api.grpc.common.mapping import (
    ACCESS_TYPES,
    identifier_from_proto,
    membership_to_proto,
    stored_kind_from_proto,
    timestamp,
)
from purse.api.grpc.terminal.customers import stored_identifier_to_proto
from purse.api.grpc.terminal.transactions import transaction_to_proto
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.customers import Questionnaire
from purse.service.admin.business import Businesses
from purse.service.admin.customers import CustomerCard, CustomerCards, LedgerEntry, Profile

_access_types = {number: access for access, number in ACCESS_TYPES.items()}


def card_to_proto(card: CustomerCard) -> customers_pb2.CustomerCard:
    message = customers_pb2.CustomerCard(
        membership=membership_to_proto(card.match.membership),
        personal_data_consent=card.personal_data_consent,
        average_check_minor_units=card.average_check,
        profile_version=card.profile_version,
    )
    message.identifiers.extend(stored_identifier_to_proto(each) for each in card.match.identifiers)
    for lot in card.lots:
        added = message.points_lots.add(lot_id=lot.lot_id, remaining_hundredths=lot.remaining)
        added.expire_time.FromDatetime(lot.expires_at)
    for coupon in card.coupons:
        held = message.coupons.add(
            coupon_id=coupon.coupon_id,
            code=coupon.code,
            series_id=coupon.series_id,
            series_name=coupon.series_name,
            status=coupon.status,
        )
        held.issue_time.FromDatetime(coupon.issued_at)
        if coupon.expires_at is not None:
            held.expire_time.FromDatetime(coupon.expires_at)
    message.member_since_time.FromDatetime(card.member_since)
    return message


def _entry_to_proto(entry: LedgerEntry) -> customers_pb2.LedgerEntry:
    message = customers_pb2.LedgerEntry(
        entry_id=entry.entry_id,
        account_type_id=entry.account_type_id,
        kind=entry.kind,
        amount=entry.amount,
        held_amount=entry.held_amount,
        transaction_id=entry.transaction_id or 0,
        create_time=timestamp(entry.created_at),
    )
    if entry.expires_at is not None:
        message.expire_time.FromDatetime(entry.expires_at)
    return message


class CustomerCalls:
    customers: CustomerCards
    businesses: Businesses

    @administrator_call(Access.READ)
    async def FindCustomer(
        self, request: pb.FindCustomerRequest, context: Context, caller: AdministratorContext
    ) -> pb.FindCustomerResponse:
        business = await self.businesses.get(caller.business_id)
        card = await self.customers.find(
            caller.business_id,
            business.settings.phone_prefix,
            identifier_from_proto(request.identifier),
        )
        return pb.FindCustomerResponse(card=card_to_proto(card))

    @administrator_call(Access.READ)
    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetCustomerResponse:
        card = await self.customers.get(caller.business_id, request.customer_id)
        return pb.GetCustomerResponse(card=card_to_proto(card))

    @administrator_call(Access.READ)
    async def ListCustomerLedgerEntries(
        self,
        request: pb.ListCustomerLedgerEntriesRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ListCustomerLedgerEntriesResponse:
        page = await self.customers.ledger(
            caller.business_id, request.customer_id, request.page_size, request.page_token
        )
        response = pb.ListCustomerLedgerEntriesResponse(next_page_token=page.next_page_token)
        response.entries.extend(_entry_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.READ)
    async def ListCustomerTransactions(
        self,
        request: pb.ListCustomerTransactionsRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ListCustomerTransactionsResponse:
        records, token = await self.customers.transactions(
            caller.business_id, request.customer_id, request.page_size, request.page_token
        )
        return pb.ListCustomerTransactionsResponse(
            transactions=[transaction_to_proto(record) for record in records],
            next_page_token=token,
        )

    @administrator_call(Access.CHANGE)
    async def UpdateCustomer(
        self, request: pb.UpdateCustomerRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateCustomerResponse:
        profile = Profile(
            request.category_id,
            _access_types.get(request.access_type),
            Questionnaire(
                request.given_name,
                request.family_name,
                request.language,
                request.personal_data_consent,
            ),
        )
        card = await self.customers.update(
            caller.actor, request.customer_id, request.expected_profile_version, profile
        )
        return pb.UpdateCustomerResponse(card=card_to_proto(card))

    @administrator_call(Access.CHANGE)
    async def AddCustomerCard(
        self, request: pb.AddCustomerCardRequest, context: Context, caller: AdministratorContext
    ) -> pb.AddCustomerCardResponse:
        card = await self.customers.add_card(
            caller.actor, request.customer_id, stored_kind_from_proto(request.kind), request.value
        )
        return pb.AddCustomerCardResponse(card=card_to_proto(card))

    @administrator_call(Access.CHANGE)
    async def RemoveCustomerCard(
        self,
        request: pb.RemoveCustomerCardRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.RemoveCustomerCardResponse:
        card = await self.customers.remove_card(
            caller.actor, request.customer_id, stored_kind_from_proto(request.kind), request.value
        )
        return pb.RemoveCustomerCardResponse(card=card_to_proto(card))
