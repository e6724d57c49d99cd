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
    moment_from_proto,
    stored_kind_from_proto,
    timestamp,
)
from purse.api.grpc.terminal.customers import stored_identifier_to_proto
from purse.api.grpc.terminal.transactions import transaction_to_proto
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.customer_operations import (
    AccountCredit,
    AccountDebit,
    CouponIssue,
    CustomerOperation,
    PointsCredit,
    PointsDebit,
)
from purse.domain.customers import Questionnaire
from purse.domain.errors import FieldViolation, InvalidArgument, invalid
from purse.service.admin.business import Businesses
from purse.service.admin.customer_operations import CustomerOperations
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


_top_level_fields = frozenset({"customer_id", "terminal_id", "idempotency_key"})


def operation_from_proto(
    request: pb.ApplyCustomerOperationRequest,
) -> tuple[CustomerOperation, str]:
    """The domain's operation, and the request field it came in (a path prefix)."""
    which = request.WhichOneof("operation")
    if which == "credit_points":
        sent = request.credit_points
        expires_at = (
            moment_from_proto(sent.expire_time, "credit_points.expire_time")
            if sent.HasField("expire_time")
            else None
        )
        return PointsCredit(sent.points_hundredths, expires_at, sent.valid_days), which
    if which == "debit_points":
        return PointsDebit(request.debit_points.points_hundredths), which
    if which == "credit_account":
        credit = request.credit_account
        return AccountCredit(credit.account_type_id, credit.amount), which
    if which == "debit_account":
        debit = request.debit_account
        return AccountDebit(debit.account_type_id, debit.amount), which
    if which == "issue_coupon":
        coupon = request.issue_coupon
        return CouponIssue(coupon.series_id, coupon.code or None), which
    raise invalid(
        "operation",
        "set one of credit_points, debit_points, credit_account, debit_account, issue_coupon",
    )


def _in_request(error: InvalidArgument, operation_field: str) -> InvalidArgument:
    """The use case names an operation's fields as the operation does; the request holds
    them inside its oneof field (and calls a moment `expire_time`)."""

    def path(field: str) -> str:
        if field in _top_level_fields:
            return field
        return f"{operation_field}.{'expire_time' if field == 'expires_at' else field}"

    violations = tuple(
        FieldViolation(path(each.field), each.description) for each in error.violations
    )
    first = violations[0] if violations else None
    message = f"{first.field}: {first.description}" if first else error.message
    return InvalidArgument(message, reason=error.reason, violations=violations)


class CustomerCalls:
    customers: CustomerCards
    businesses: Businesses
    operations: CustomerOperations

    @administrator_call(Access.CHANGE)
    async def ApplyCustomerOperation(
        self,
        request: pb.ApplyCustomerOperationRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ApplyCustomerOperationResponse:
        operation, field = operation_from_proto(request)
        try:
            result = await self.operations.apply(
                caller.actor,
                request.terminal_id,
                request.idempotency_key,
                request.customer_id,
                operation,
            )
        except InvalidArgument as error:
            raise _in_request(error, field) from error
        response = pb.ApplyCustomerOperationResponse(
            transaction=transaction_to_proto(result.transaction)
        )
        if result.membership is not None:
            response.membership.CopyFrom(membership_to_proto(result.membership))
        applied = result.operation
        if isinstance(applied, CouponIssue) and applied.code is not None:
            response.coupon_code = applied.code
        if isinstance(applied, PointsCredit) and applied.expires_at is not None:
            response.expire_time.FromDatetime(applied.expires_at)
        return response

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
