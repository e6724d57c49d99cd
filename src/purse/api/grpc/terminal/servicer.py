"""TerminalService: authenticates each call, maps the request, calls the use case.

Each method is wrapped by `authenticated_call` (`purse.api.grpc.common.calls`), which
resolves the terminal from the `authorization` metadata, runs the method, and turns
refusals into rich statuses through the one table in `common/errors.py`.

Traced (when given a tracer, `purse.tracing`): each message of a ProcessChecks stream is
a span that starts a trace of its own, linked to the stream's span. A stream may stay open
for an hour; as one trace, its every statement would hang off one span.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from opentelemetry import trace

from purse.api.grpc.common import mapping
from purse.api.grpc.common.calls import (
    Context,
    abort_for,
    authenticated_call,
    bearer_credential,
    public_call,
)
from purse.api.grpc.common.errors import (
    dependency_unavailable_reason,
    proto_message,
    proto_violations,
    status_code_for,
    unavailable_status,
)
from purse.api.grpc.terminal.customers import (
    match_to_proto,
    stored_identifier_to_proto,
    terminal_to_proto,
)
from purse.api.grpc.terminal.receipts import calculation_request_from_proto, fill_receipt
from purse.api.grpc.terminal.transactions import (
    fill_transaction,
    process_request_from_proto,
    refund_to_proto,
    status_filter_from_proto,
    transaction_to_proto,
)
from purse.domain.catalogue import Catalogue
from purse.domain.customers import Questionnaire
from purse.domain.errors import DomainError, TimedOut, UnexpectedFailure, invalid
from purse.domain.identifiers import Identifier, IdentifierKind
from purse.domain.terminals import TerminalContext
from purse.service.authentication import Authenticator
from purse.service.goods import GoodsCatalogue
from purse.service.terminal.answers import Answer
from purse.service.terminal.calculation import CheckCalculation
from purse.service.terminal.checkout import Checkout, ProcessRequest
from purse.service.terminal.history import History, ListFilter
from purse.service.terminal.holds import Holds
from purse.service.terminal.identification import IdentificationService
from purse.service.terminal.refunds import Refunds
from purse.service.terminal.unary_processing import UnaryProcessing
from purse.store.failures import DEPENDENCY_FAILURES
from purse.store.postgres.catalogue import CatalogueStore
from purse.tracing import current_span_context, linked_span
from purse.v1 import common_pb2, terminal_service_pb2_grpc
from purse.v1 import terminal_service_pb2 as pb

checks_per_stream_message_max = 1_000
_logger = logging.getLogger(__name__)


class TerminalServicer(terminal_service_pb2_grpc.TerminalServiceServicer):
    """The terminal contract over gRPC."""

    def __init__(
        self,
        authenticator: Authenticator,
        identification: IdentificationService,
        catalogue: CatalogueStore,
        goods: GoodsCatalogue,
        calculation: CheckCalculation,
        checkout: Checkout,
        holds: Holds,
        refunds: Refunds,
        history: History,
        unary: UnaryProcessing,
        stream_idle_seconds_max: float,
        stream_lifetime_seconds_max: float,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.authenticator = authenticator
        self._tracer = tracer
        self._identification = identification
        self._catalogue = catalogue
        self._goods = goods
        self._calculation = calculation
        self._checkout = checkout
        self._holds = holds
        self._refunds = refunds
        self._history = history
        self._unary = unary
        self._stream_idle_seconds_max = stream_idle_seconds_max
        self._stream_lifetime_seconds_max = stream_lifetime_seconds_max

    @public_call
    async def SignIn(self, request: pb.SignInRequest, context: Context) -> pb.SignInResponse:
        token, expires_at, terminal = await self.authenticator.sign_in(
            request.login, request.password
        )
        return pb.SignInResponse(
            token=token,
            expire_time=mapping.timestamp(float(expires_at)),
            terminal=terminal_to_proto(terminal),
        )

    @authenticated_call
    async def GetTerminalSettings(
        self, request: pb.GetTerminalSettingsRequest, context: Context, terminal: TerminalContext
    ) -> pb.GetTerminalSettingsResponse:
        catalogue = await self._catalogue.catalogue(terminal.business_id)
        return _settings_to_proto(terminal, catalogue)

    @authenticated_call
    async def IdentifyCustomer(
        self, request: pb.IdentifyCustomerRequest, context: Context, terminal: TerminalContext
    ) -> pb.IdentifyCustomerResponse:
        identifier = mapping.identifier_from_proto(request.identifier)
        membership = await self._identification.identify_customer(terminal, identifier)
        response = pb.IdentifyCustomerResponse()
        mapping.fill_membership(response.membership, membership)
        return response

    @authenticated_call
    async def CalculateCheck(
        self, request: pb.CalculateCheckRequest, context: Context, terminal: TerminalContext
    ) -> pb.CalculateCheckResponse:
        calculation = await self._calculation.calculate(
            terminal, calculation_request_from_proto(request)
        )
        response = pb.CalculateCheckResponse()
        fill_receipt(response.receipt, calculation)
        if calculation.membership is not None:
            mapping.fill_membership(response.membership, calculation.membership)
        return response

    @authenticated_call
    async def IssueStewardCode(
        self, request: pb.IssueStewardCodeRequest, context: Context, terminal: TerminalContext
    ) -> pb.IssueStewardCodeResponse:
        identifier = mapping.identifier_from_proto(request.identifier)
        code, expires_at = await self._identification.issue_steward_code(terminal, identifier)
        return pb.IssueStewardCodeResponse(code=code, expire_time=mapping.timestamp(expires_at))

    @authenticated_call
    async def SearchCustomers(
        self, request: pb.SearchCustomersRequest, context: Context, terminal: TerminalContext
    ) -> pb.SearchCustomersResponse:
        which = request.WhichOneof("query")
        if which is None:
            identifier = mapping.identifier_from_proto(common_pb2.CustomerIdentifier(), "query")
        else:
            kind = IdentifierKind.PHONE if which == "phone_prefix" else IdentifierKind(which)
            identifier = Identifier(kind, getattr(request, which))
        matches = await self._identification.search(terminal, identifier, request.page_size)
        return pb.SearchCustomersResponse(customers=[match_to_proto(match) for match in matches])

    @authenticated_call
    async def RegisterCustomer(
        self, request: pb.RegisterCustomerRequest, context: Context, terminal: TerminalContext
    ) -> pb.RegisterCustomerResponse:
        questionnaire = Questionnaire(
            given_name=request.given_name.strip(),
            family_name=request.family_name.strip(),
            language=request.language.strip(),
            personal_data_consent=request.personal_data_consent,
        )
        match = await self._identification.register(
            terminal, request.phone, questionnaire, request.card_number
        )
        return pb.RegisterCustomerResponse(
            membership=mapping.membership_to_proto(match.membership),
            identifiers=[stored_identifier_to_proto(item) for item in match.identifiers],
        )

    @authenticated_call
    async def AddCustomerIdentifier(
        self, request: pb.AddCustomerIdentifierRequest, context: Context, terminal: TerminalContext
    ) -> pb.AddCustomerIdentifierResponse:
        match = await self._identification.add_identifier(
            terminal,
            request.customer_id,
            mapping.stored_kind_from_proto(request.kind),
            request.value,
        )
        return pb.AddCustomerIdentifierResponse(
            identifiers=[stored_identifier_to_proto(item) for item in match.identifiers]
        )

    @authenticated_call
    async def RemoveCustomerIdentifier(
        self,
        request: pb.RemoveCustomerIdentifierRequest,
        context: Context,
        terminal: TerminalContext,
    ) -> pb.RemoveCustomerIdentifierResponse:
        match = await self._identification.remove_identifier(
            terminal,
            request.customer_id,
            mapping.stored_kind_from_proto(request.kind),
            request.value,
        )
        return pb.RemoveCustomerIdentifierResponse(
            identifiers=[stored_identifier_to_proto(item) for item in match.identifiers]
        )

    @authenticated_call
    async def ProcessCheck(
        self, request: pb.ProcessCheckRequest, context: Context, terminal: TerminalContext
    ) -> pb.ProcessCheckResponse:
        answer = await self._unary.process(
            terminal, process_request_from_proto(request), context.time_remaining()
        )
        return _process_response(answer)

    async def ProcessChecks(
        self, request_iterator: AsyncIterator[pb.ProcessChecksRequest], context: Context
    ) -> AsyncIterator[pb.ProcessChecksResponse]:
        """Each message is authenticated again (the terminal cache makes that cheap), so a
        stream ends PERMISSION_DENIED or UNAUTHENTICATED, applying nothing more, once its
        terminal is disabled or its token expires. A stream idle longer than
        `stream_idle_seconds_max`, or open longer than `stream_lifetime_seconds_max`, ends
        DEADLINE_EXCEEDED while it waits for a message: no check in flight is cut off."""
        credential = bearer_credential(context)
        opened = time.monotonic()
        messages = aiter(request_iterator)
        stream = current_span_context() if self._tracer is not None else None
        try:
            while True:
                message = await self._next_message(messages, opened)
                if message is None:
                    return
                with self._message_span(stream, len(message.checks)):
                    terminal = await self.authenticator.authenticate(credential)
                    if len(message.checks) > checks_per_stream_message_max:
                        raise invalid(
                            "checks", f"at most {checks_per_stream_message_max} checks a message"
                        )
                    response = await self._many(terminal, message.checks)
                # Outside the span: it is not current across a yield.
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as failure:
            await abort_for(context, failure)

    def _message_span(
        self, stream: trace.SpanContext | None, checks: int
    ) -> contextlib.AbstractContextManager[Any]:
        """A stream message's span, linked to the stream's; nothing when not traced."""
        if self._tracer is None:
            return contextlib.nullcontext()
        return linked_span(
            self._tracer, "ProcessChecks message", (stream,), {"purse.checks": checks}
        )

    async def _next_message(
        self, messages: AsyncIterator[pb.ProcessChecksRequest], opened: float
    ) -> pb.ProcessChecksRequest | None:
        """The stream's next message; None when the client closed its side."""
        lifetime_left = self._stream_lifetime_seconds_max - (time.monotonic() - opened)
        wait = min(self._stream_idle_seconds_max, lifetime_left)
        try:
            return await asyncio.wait_for(anext(messages), max(wait, 0.0))
        except StopAsyncIteration:
            return None
        except TimeoutError:
            if wait < self._stream_idle_seconds_max:
                raise TimedOut(
                    f"a stream stays open at most {self._stream_lifetime_seconds_max:g} s; "
                    "open a new one",
                    reason="STREAM_LIFETIME_OVER",
                ) from None
            raise TimedOut(
                f"no message for {self._stream_idle_seconds_max:g} s; the stream is closed",
                reason="STREAM_IDLE",
            ) from None

    async def _many(
        self, terminal: TerminalContext, checks: Sequence[pb.ProcessCheckRequest]
    ) -> pb.ProcessChecksResponse:
        """A stream message's checks, each answered as the unary call would answer it; the
        response is built in place (a result copied into its list costs its whole size)."""
        requests: list[ProcessRequest | DomainError] = []
        for check in checks:
            try:
                requests.append(process_request_from_proto(check))
            except DomainError as refusal:
                requests.append(refusal)
            except Exception:
                _logger.exception("mapping one check of a stream message failed")
                requests.append(UnexpectedFailure("this check could not be read"))
        valid = [request for request in requests if not isinstance(request, DomainError)]
        response = pb.ProcessChecksResponse()
        add_result = response.results.add
        try:
            answers = iter(await self._checkout.process_group(terminal, valid))
        except DEPENDENCY_FAILURES as failure:
            status = unavailable_status(failure)
            for check in checks:
                error = add_result(check_number=check.check_number).error
                error.code, error.message = status.code.value[0], status.details or ""
                error.reason = dependency_unavailable_reason
            return response
        for check, request in zip(checks, requests, strict=True):
            outcome = request if isinstance(request, DomainError) else next(answers)
            result = add_result(check_number=check.check_number)
            if isinstance(outcome, DomainError):
                result.error.CopyFrom(_check_error(outcome))
            else:
                _fill_process_response(result.processed, outcome)
        return response

    @authenticated_call
    async def ConfirmTransaction(
        self, request: pb.ConfirmTransactionRequest, context: Context, terminal: TerminalContext
    ) -> pb.ConfirmTransactionResponse:
        answer = await self._holds.confirm(
            terminal, request.transaction_id, request.pin.strip(), context.time_remaining()
        )
        response = pb.ConfirmTransactionResponse()
        fill_transaction(response.transaction, answer.record)
        if answer.membership is not None:
            mapping.fill_membership(response.membership, answer.membership)
        return response

    @authenticated_call
    async def ResendCode(
        self, request: pb.ResendCodeRequest, context: Context, terminal: TerminalContext
    ) -> pb.ResendCodeResponse:
        next_time = await self._holds.resend(terminal, request.transaction_id)
        return pb.ResendCodeResponse(next_resend_time=mapping.timestamp(next_time))

    @authenticated_call
    async def CancelTransaction(
        self, request: pb.CancelTransactionRequest, context: Context, terminal: TerminalContext
    ) -> pb.CancelTransactionResponse:
        answer = await self._holds.cancel(
            terminal, request.transaction_id, context.time_remaining()
        )
        return pb.CancelTransactionResponse(transaction=transaction_to_proto(answer.record))

    @authenticated_call
    async def RefundTransaction(
        self, request: pb.RefundTransactionRequest, context: Context, terminal: TerminalContext
    ) -> pb.RefundTransactionResponse:
        refund, record = await self._refunds.refund(
            terminal,
            request.transaction_id,
            request.refund_number,
            [(line.position, line.quantity_thousandths) for line in request.lines],
            hashlib.sha256(request.SerializeToString(deterministic=True)).digest(),
        )
        return pb.RefundTransactionResponse(
            refund=refund_to_proto(refund), transaction=transaction_to_proto(record)
        )

    @authenticated_call
    async def GetTransaction(
        self, request: pb.GetTransactionRequest, context: Context, terminal: TerminalContext
    ) -> pb.GetTransactionResponse:
        which = request.WhichOneof("key")
        if which == "check_number":
            record = await self._history.get_by_check_number(terminal, request.check_number)
        elif which == "transaction_id":
            record = await self._history.get(terminal, request.transaction_id)
        else:
            raise invalid("key", "give a transaction_id or a check_number")
        return pb.GetTransactionResponse(transaction=transaction_to_proto(record))

    @authenticated_call
    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, context: Context, terminal: TerminalContext
    ) -> pb.ListTransactionsResponse:
        filters = ListFilter(
            customer_id=request.customer_id or None,
            terminal_id=request.terminal_id or None,
            status=status_filter_from_proto(request.status),
            created_from=mapping.moment_from_proto(request.start_time, "start_time")
            if request.HasField("start_time")
            else None,
            created_before=mapping.moment_from_proto(request.end_time, "end_time")
            if request.HasField("end_time")
            else None,
        )
        records, token = await self._history.page(
            terminal.business_id, request.page_size, request.page_token, filters
        )
        return pb.ListTransactionsResponse(
            transactions=[transaction_to_proto(record) for record in records],
            next_page_token=token,
        )

    @authenticated_call
    async def ListGoods(
        self, request: pb.ListGoodsRequest, context: Context, terminal: TerminalContext
    ) -> pb.ListGoodsResponse:
        goods, token = await self._goods.goods(
            terminal, request.page_size, request.page_token, request.goods_category_code
        )
        return pb.ListGoodsResponse(
            goods=[
                pb.Goods(
                    product_code=item.product_code,
                    title=item.title,
                    price_minor_units=item.price_minor_units,
                    goods_category_code=item.goods_category_code,
                )
                for item in goods
            ],
            next_page_token=token,
        )

    @authenticated_call
    async def ListGoodsCategories(
        self, request: pb.ListGoodsCategoriesRequest, context: Context, terminal: TerminalContext
    ) -> pb.ListGoodsCategoriesResponse:
        categories, token = await self._goods.goods_categories(
            terminal, request.page_size, request.page_token
        )
        return pb.ListGoodsCategoriesResponse(
            goods_categories=[
                pb.GoodsCategory(code=item.code, name=item.name) for item in categories
            ],
            next_page_token=token,
        )


def _process_response(answer: Answer) -> pb.ProcessCheckResponse:
    response = pb.ProcessCheckResponse()
    _fill_process_response(response, answer)
    return response


def _fill_process_response(response: pb.ProcessCheckResponse, answer: Answer) -> None:
    fill_transaction(response.transaction, answer.record)
    if answer.membership is not None:
        mapping.fill_membership(response.membership, answer.membership)


def _check_error(refusal: DomainError) -> pb.CheckError:
    return pb.CheckError(
        code=status_code_for(refusal).value[0],
        reason=refusal.reason,
        message=proto_message(refusal),
        field_violations=dict(proto_violations(refusal)),
    )


def _settings_to_proto(
    terminal: TerminalContext, catalogue: Catalogue
) -> pb.GetTerminalSettingsResponse:
    return pb.GetTerminalSettingsResponse(
        terminal=terminal_to_proto(terminal),
        program_id=terminal.program_id,
        program_name=terminal.program_name,
        currency=terminal.currency,
        currency_exponent=terminal.currency_exponent,
        phone_prefix=terminal.phone_prefix,
        time_zone=terminal.time_zone,
        enrols_unknown_phones=terminal.enrols_unknown_phones,
        customer_categories=[
            pb.CustomerCategory(
                category_id=category.category_id,
                name=category.name,
                title=common_pb2.LocalizedText(texts=category.title),
                is_default=category.is_default,
            )
            for category in catalogue.customer_categories
        ],
        account_types=[
            pb.AccountType(
                account_type_id=account.account_type_id,
                name=account.name,
                kind=mapping.POCKET_KINDS[account.kind],
                unit=mapping.POCKET_UNITS[account.kind],
                title=common_pb2.LocalizedText(texts=account.title),
                product_codes=account.product_codes,
                redemption_limit_without_pin=account.redemption_limit_without_pin,
                purchases_per_reward=account.purchases_per_reward,
            )
            for account in catalogue.account_types
        ],
    )
