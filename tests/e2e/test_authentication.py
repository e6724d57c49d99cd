"""Terminal sign-in, tokens, API keys, disabled terminals and sign-in rate limits."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support import Tenant, bearer, error_reason, make_terminal

from purse.domain.terminals import TerminalKind
from purse.store.postgres.provisioning import Provisioning
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub


async def test_a_terminal_signs_in_and_its_token_opens_the_api(
    terminal_stub: TerminalServiceStub, business: Tenant
) -> None:
    signed_in = await terminal_stub.SignIn(
        pb.SignInRequest(login=business.cash_desk.login, password=business.cash_desk.password)
    )
    assert signed_in.terminal.business_id == business.business_id
    assert signed_in.terminal.kind == pb.TERMINAL_KIND_CASH_DESK
    assert signed_in.expire_time.seconds > 0
    settings = await terminal_stub.GetTerminalSettings(
        pb.GetTerminalSettingsRequest(), metadata=bearer(signed_in.token)
    )
    assert settings.terminal.terminal_id == business.cash_desk.terminal_id
    assert settings.currency == "UAH" and settings.currency_exponent == 2
    assert [c.name for c in settings.customer_categories] == ["New customers"]
    assert {a.name for a in settings.account_types} == {"Fuel", "Wallet"}


async def test_an_api_key_opens_the_api_without_signing_in(
    terminal_stub: TerminalServiceStub, business: Tenant
) -> None:
    settings = await terminal_stub.GetTerminalSettings(
        pb.GetTerminalSettingsRequest(), metadata=bearer(business.cash_desk.api_key)
    )
    assert settings.terminal.business_id == business.business_id


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "CREDENTIALS_MISSING"),
        ((("authorization", "Basic abc"),), "CREDENTIALS_MISSING"),
        (bearer("purse_key_not-a-real-key"), "API_KEY_INVALID"),
        (bearer("purse_tt_AAAA"), "TOKEN_INVALID"),
    ],
)
async def test_missing_or_wrong_credentials_are_unauthenticated(
    terminal_stub: TerminalServiceStub, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.GetTerminalSettings(pb.GetTerminalSettingsRequest(), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == reason


async def test_a_wrong_password_is_unauthenticated(
    terminal_stub: TerminalServiceStub, business: Tenant
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SignIn(pb.SignInRequest(login=business.cash_desk.login, password="x"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == "WRONG_CREDENTIALS"


async def test_an_empty_login_is_bad_input(terminal_stub: TerminalServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SignIn(pb.SignInRequest(login="", password="x"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_disabled_terminal_is_permission_denied_for_token_and_key(
    terminal_stub: TerminalServiceStub, pool: asyncpg.Pool, business: Tenant
) -> None:
    provisioning = Provisioning(pool)
    terminal = await make_terminal(
        provisioning, business.business_id, business.point_of_sale_id, TerminalKind.KIOSK
    )
    signed_in = await terminal_stub.SignIn(
        pb.SignInRequest(login=terminal.login, password=terminal.password)
    )
    await provisioning.set_terminal_enabled(business.business_id, terminal.terminal_id, False)
    await asyncio.sleep(0.3)  # the server caches terminals for 0.2 s in this suite
    for credential in (signed_in.token, terminal.api_key):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await terminal_stub.GetTerminalSettings(
                pb.GetTerminalSettingsRequest(), metadata=bearer(credential)
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(refused.value) == "TERMINAL_DISABLED"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SignIn(
            pb.SignInRequest(login=terminal.login, password=terminal.password)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_repeated_wrong_passwords_lock_the_login_even_for_the_right_one(
    terminal_stub: TerminalServiceStub, pool: asyncpg.Pool, business: Tenant
) -> None:
    terminal = await make_terminal(
        Provisioning(pool), business.business_id, business.point_of_sale_id, TerminalKind.KIOSK
    )
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as wrong:
            await terminal_stub.SignIn(pb.SignInRequest(login=terminal.login, password="guess"))
        assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await terminal_stub.SignIn(
            pb.SignInRequest(login=terminal.login, password=terminal.password)
        )
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(limited.value) == "SIGN_IN_RATE_LIMITED"
    status = rpc_status.from_call(limited.value)  # type: ignore[arg-type]
    retry = error_details_pb2.RetryInfo()
    assert status is not None and any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds > 0


async def test_an_unknown_login_is_refused_like_a_wrong_password(
    terminal_stub: TerminalServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SignIn(pb.SignInRequest(login="nobody-at-all", password="x"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == "WRONG_CREDENTIALS"
