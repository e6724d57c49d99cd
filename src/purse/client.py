"""A typed Python client for integrators: the terminal contract over gRPC.

    async with TerminalClient("127.0.0.1:50051", api_key="purse_key_...") as terminal:
        membership = await terminal.identify(phone="+380501234567")

Credentials: a long-lived API key, or a login and password (the client signs in, keeps
the short-lived token, and signs in again when it expires). Every call has a deadline.
Calls are retried only where a retry cannot apply anything twice: reads and
identification, on UNAVAILABLE, with exponential backoff. The client speaks protobuf
messages of `purse.v1` (the generated stubs), so every field of the contract is at hand.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from purse.v1 import common_pb2, terminal_service_pb2_grpc
from purse.v1 import terminal_service_pb2 as pb

deadline_seconds_default = 5.0
retry_attempts_max = 4
retry_backoff_seconds_first = 0.05
retry_backoff_seconds_max = 1.0
_retryable_codes = (grpc.StatusCode.UNAVAILABLE,)
Response = TypeVar("Response")


class PurseError(Exception):
    """A refusal from the server, with the google.rpc details unpacked."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.code = error.code()
        self.message = error.details() or ""
        self.reason = ""
        self.field_violations: dict[str, str] = {}
        self.retry_after_seconds = 0
        status = rpc_status.from_call(error)
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                self.reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                self.field_violations.update(
                    {item.field: item.description for item in bad_request.field_violations}
                )
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                self.retry_after_seconds = retry.retry_delay.seconds
        super().__init__(f"{self.code.name} {self.reason}: {self.message}")


def identifier(
    phone: str = "",
    card_number: str = "",
    card_qr: str = "",
    app_token: str = "",
    steward_code: str = "",
) -> common_pb2.CustomerIdentifier:
    """A CustomerIdentifier from exactly one keyword."""
    given = {
        name: value
        for name, value in (
            ("phone", phone),
            ("card_number", card_number),
            ("card_qr", card_qr),
            ("app_token", app_token),
            ("steward_code", steward_code),
        )
        if value
    }
    if len(given) != 1:
        raise ValueError("give exactly one of phone, card_number, card_qr, app_token, steward_code")
    return common_pb2.CustomerIdentifier(**given)


class TerminalClient:
    """One terminal's connection to Purse."""

    def __init__(
        self,
        target: str,
        api_key: str = "",
        login: str = "",
        password: str = "",
        deadline_seconds: float = deadline_seconds_default,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        if not api_key and not (login and password):
            raise ValueError("give an API key, or a login and a password")
        self._channel = channel or grpc.aio.insecure_channel(
            target, options=[("grpc.keepalive_time_ms", 60_000), ("grpc.enable_retries", 0)]
        )
        self._stub = terminal_service_pb2_grpc.TerminalServiceStub(self._channel)
        self._api_key = api_key
        self._login = login
        self._password = password
        self._token = ""
        self._deadline_seconds = deadline_seconds

    async def __aenter__(self) -> TerminalClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def sign_in(self) -> pb.SignInResponse:
        """Exchange login and password for a token (done for you on first use)."""
        try:
            response: pb.SignInResponse = await self._stub.SignIn(
                pb.SignInRequest(login=self._login, password=self._password),
                timeout=self._deadline_seconds,
            )
        except grpc.aio.AioRpcError as error:
            raise PurseError(error) from error
        self._token = response.token
        return response

    async def _metadata(self) -> tuple[tuple[str, str], ...]:
        if self._api_key:
            return (("authorization", f"Bearer {self._api_key}"),)
        if not self._token:
            await self.sign_in()
        return (("authorization", f"Bearer {self._token}"),)

    async def _call(
        self,
        method: Callable[..., Awaitable[Response]],
        request: Any,
        retry: bool,
    ) -> Response:
        attempts = retry_attempts_max if retry else 1
        backoff = retry_backoff_seconds_first
        signed_in_again = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return await method(
                    request, metadata=await self._metadata(), timeout=self._deadline_seconds
                )
            except grpc.aio.AioRpcError as error:
                failure = PurseError(error)
            if (
                failure.code == grpc.StatusCode.UNAUTHENTICATED
                and failure.reason == "TOKEN_EXPIRED"
                and not self._api_key
                and not signed_in_again
            ):
                # Sign-in again is safe for any call: the refused call did nothing.
                signed_in_again = True
                self._token = ""
                continue
            if failure.code not in _retryable_codes or attempt >= attempts:
                raise failure
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, retry_backoff_seconds_max)

    async def settings(self) -> pb.GetTerminalSettingsResponse:
        return await self._call(
            self._stub.GetTerminalSettings, pb.GetTerminalSettingsRequest(), retry=True
        )

    async def identify(self, **kwargs: str) -> common_pb2.Membership:
        """identify(phone=...) / card_number= / card_qr= / app_token= / steward_code=.

        Retried: enrolment is idempotent. Steward codes are single-use, so a call that
        redeems one is never retried.
        """
        response: pb.IdentifyCustomerResponse = await self._call(
            self._stub.IdentifyCustomer,
            pb.IdentifyCustomerRequest(identifier=identifier(**kwargs)),
            retry="steward_code" not in kwargs,
        )
        return response.membership

    async def calculate_check(self, request: pb.CalculateCheckRequest) -> pb.CalculateCheckResponse:
        """The receipt a check would get; changes nothing, so it is retried."""
        return await self._call(self._stub.CalculateCheck, request, retry=True)

    async def process_check(self, request: pb.ProcessCheckRequest) -> pb.ProcessCheckResponse:
        """Apply a check. Retried: the check number makes a retry return the first answer."""
        return await self._call(self._stub.ProcessCheck, request, retry=True)

    async def confirm(self, transaction_id: int, pin: str) -> pb.ConfirmTransactionResponse:
        return await self._call(
            self._stub.ConfirmTransaction,
            pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=pin),
            retry=False,
        )

    async def cancel(self, transaction_id: int) -> pb.CancelTransactionResponse:
        return await self._call(
            self._stub.CancelTransaction,
            pb.CancelTransactionRequest(transaction_id=transaction_id),
            retry=False,
        )

    async def refund(self, request: pb.RefundTransactionRequest) -> pb.RefundTransactionResponse:
        """Refund (part of) a sale. Retried: the refund number makes it idempotent."""
        return await self._call(self._stub.RefundTransaction, request, retry=True)

    async def issue_steward_code(self, **kwargs: str) -> pb.IssueStewardCodeResponse:
        return await self._call(
            self._stub.IssueStewardCode,
            pb.IssueStewardCodeRequest(identifier=identifier(**kwargs)),
            retry=False,
        )

    async def search_customers(
        self, phone_prefix: str = "", card_number: str = "", card_qr: str = "", page_size: int = 0
    ) -> list[pb.CustomerMatch]:
        request = pb.SearchCustomersRequest(page_size=page_size)
        if phone_prefix:
            request.phone_prefix = phone_prefix
        elif card_number:
            request.card_number = card_number
        elif card_qr:
            request.card_qr = card_qr
        response: pb.SearchCustomersResponse = await self._call(
            self._stub.SearchCustomers, request, retry=True
        )
        return list(response.customers)

    async def register_customer(self, **fields: Any) -> pb.RegisterCustomerResponse:
        return await self._call(
            self._stub.RegisterCustomer, pb.RegisterCustomerRequest(**fields), retry=True
        )

    async def add_identifier(
        self, customer_id: int, kind: int, value: str
    ) -> list[pb.StoredIdentifier]:
        response: pb.AddCustomerIdentifierResponse = await self._call(
            self._stub.AddCustomerIdentifier,
            pb.AddCustomerIdentifierRequest(customer_id=customer_id, kind=kind, value=value),  # type: ignore[arg-type]
            retry=True,
        )
        return list(response.identifiers)

    async def remove_identifier(
        self, customer_id: int, kind: int, value: str
    ) -> list[pb.StoredIdentifier]:
        response: pb.RemoveCustomerIdentifierResponse = await self._call(
            self._stub.RemoveCustomerIdentifier,
            pb.RemoveCustomerIdentifierRequest(customer_id=customer_id, kind=kind, value=value),  # type: ignore[arg-type]
            retry=False,
        )
        return list(response.identifiers)
