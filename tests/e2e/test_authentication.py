"""Terminal sign-in, tokens, API keys, disabled terminals and sign-in rate limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support import (
    ServerProcess,
    Tenant,
    TerminalAccess,
    bearer,
    disable_terminal,
    error_reason,
    new_terminal,
    retry_delay_seconds,
)

from purse.admin.v1 import setup_pb2 as setup
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def test_a_terminal_signs_in_and_its_token_opens_the_api(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
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
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
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
    terminal_stub: TerminalServiceAsyncStub, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.GetTerminalSettings(pb.GetTerminalSettingsRequest(), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == reason


async def test_a_wrong_password_is_unauthenticated(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SignIn(pb.SignInRequest(login=business.cash_desk.login, password="x"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == "WRONG_CREDENTIALS"


async def test_an_empty_login_is_bad_input(terminal_stub: TerminalServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SignIn(pb.SignInRequest(login="", password="x"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def signed_in_kiosk(
    stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> tuple[TerminalAccess, pb.SignInResponse]:
    """A new kiosk of the business, and its first sign-in."""
    terminal = await new_terminal(channel, business)
    signed_in = await stub.SignIn(
        pb.SignInRequest(login=terminal.login, password=terminal.password)
    )
    return terminal, signed_in


async def test_a_disabled_terminal_is_permission_denied_for_token_and_key(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    terminal, signed_in = await signed_in_kiosk(terminal_stub, channel, business)
    await disable_terminal(channel, business, terminal.terminal_id)
    await asyncio.sleep(0.3)  # the server caches terminals for 0.2 s in this suite
    for credential in (signed_in.token, terminal.api_key):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await terminal_stub.GetTerminalSettings(
                pb.GetTerminalSettingsRequest(), metadata=bearer(credential)
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(refused.value) == "TERMINAL_DISABLED"
    # Signing in to a disabled terminal is answered as a wrong password is, right
    # password or not: the answer must not confirm a guessed password.
    answers = []
    for password in (terminal.password, "not the password"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await terminal_stub.SignIn(pb.SignInRequest(login=terminal.login, password=password))
        answers.append((refused.value.code(), error_reason(refused.value), refused.value.details()))
    assert answers[0] == answers[1]
    assert answers[0][:2] == (grpc.StatusCode.UNAUTHENTICATED, "WRONG_CREDENTIALS")


async def test_a_new_password_revokes_the_tokens_of_the_old_one(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    terminal, signed_in = await signed_in_kiosk(terminal_stub, channel, business)
    settings = pb.GetTerminalSettingsRequest()
    new_one = "a new password"
    await terminal_stub.GetTerminalSettings(settings, metadata=bearer(signed_in.token))
    await AdminServiceStub(channel).SetTerminalPassword(
        setup.SetTerminalPasswordRequest(terminal_id=terminal.terminal_id, new_password=new_one),
        metadata=bearer(business.administrator_api_key),
    )
    await asyncio.sleep(0.3)  # the server caches terminals for 0.2 s in this suite
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.GetTerminalSettings(settings, metadata=bearer(signed_in.token))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == "TOKEN_REVOKED"
    renewed = await terminal_stub.SignIn(pb.SignInRequest(login=terminal.login, password=new_one))
    await terminal_stub.GetTerminalSettings(settings, metadata=bearer(renewed.token))


async def test_repeated_wrong_passwords_lock_the_login_even_for_the_right_one(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    terminal = await new_terminal(channel, business)
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
    status = rpc_status.from_call(limited.value)
    retry = error_details_pb2.RetryInfo()
    assert status is not None and any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds > 0


async def test_an_unknown_login_is_refused_like_a_wrong_password(
    terminal_stub: TerminalServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.SignIn(pb.SignInRequest(login="nobody-at-all", password="x"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(refused.value) == "WRONG_CREDENTIALS"


def refusals(results: Sequence[object]) -> list[tuple[grpc.StatusCode, str]]:
    """(status, reason) of every failed call among `results`."""
    return [
        (result.code(), error_reason(result))
        for result in results
        if isinstance(result, grpc.aio.AioRpcError)
    ]


async def test_a_burst_of_wrong_passwords_evaluates_at_most_the_maximum(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    """200 concurrent wrong passwords: no more than 5 are ever evaluated (WRONG_CREDENTIALS),
    the rest are refused before any hash; then even the right password is refused."""
    terminal = await new_terminal(channel, business)
    burst = await asyncio.gather(
        *(
            terminal_stub.SignIn(pb.SignInRequest(login=terminal.login, password=f"guess-{n}"))
            for n in range(200)
        ),
        return_exceptions=True,
    )
    answers = refusals(burst)
    assert len(answers) == 200
    wrong = answers.count((grpc.StatusCode.UNAUTHENTICATED, "WRONG_CREDENTIALS"))
    assert 1 <= wrong <= 5
    assert {a for a in answers if a[1] != "WRONG_CREDENTIALS"} <= {
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "SIGN_IN_RATE_LIMITED"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "SIGN_IN_BUSY"),
    }
    # An attempt refused as busy was given back: top up to exactly five evaluated.
    while True:
        try:
            await terminal_stub.SignIn(pb.SignInRequest(login=terminal.login, password="again"))
        except grpc.aio.AioRpcError as refused:
            if error_reason(refused) != "WRONG_CREDENTIALS":
                assert error_reason(refused) == "SIGN_IN_RATE_LIMITED"
                break
        wrong += 1
    assert wrong == 5
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await terminal_stub.SignIn(
            pb.SignInRequest(login=terminal.login, password=terminal.password)
        )
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(limited.value) == "SIGN_IN_RATE_LIMITED"


async def test_a_burst_after_three_failures_cannot_reach_the_right_password(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    """3 failures, then 40 wrong passwords and the right one at once: at most 2 of the
    burst are evaluated, and success never wipes the failures counted before it."""
    terminal = await new_terminal(channel, business)
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await terminal_stub.SignIn(pb.SignInRequest(login=terminal.login, password="guess"))
    requests = [pb.SignInRequest(login=terminal.login, password=f"g-{n}") for n in range(40)]
    requests.insert(20, pb.SignInRequest(login=terminal.login, password=terminal.password))
    burst = await asyncio.gather(
        *(terminal_stub.SignIn(request) for request in requests), return_exceptions=True
    )
    signed_in = [r for r in burst if isinstance(r, pb.SignInResponse)]
    wrong = refusals(burst).count((grpc.StatusCode.UNAUTHENTICATED, "WRONG_CREDENTIALS"))
    assert wrong + len(signed_in) <= 2
    # Whether or not the right one got through, the login is at (or reaches) its limit.
    for _ in range(2 - wrong):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await terminal_stub.SignIn(pb.SignInRequest(login=terminal.login, password="guess"))
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await terminal_stub.SignIn(
            pb.SignInRequest(login=terminal.login, password=terminal.password)
        )
    assert error_reason(limited.value) == "SIGN_IN_RATE_LIMITED"


# The flood: made-up logins kept in flight by this many callers for this long.
flood_callers = 200
flood_seconds = 3.0
# How soon after the flood a new call must be answered (it was refused for tens of
# seconds while aborted calls waited for the garbage collector to free their streams).
after_flood_answer_seconds = 2.0


async def test_a_flood_of_unknown_logins_does_not_starve_a_real_sign_in(
    server: ServerProcess, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    """200 made-up logins kept in flight on the suite's own connection: each is answered
    by the server (a wrong password, or busy with RetryInfo), never refused by the
    transport; a real sign-in in the middle of the flood and, on a new channel, right
    after it, are answered within a few seconds."""
    answers: list[tuple[grpc.StatusCode, str]] = []

    async def flooder(number: int) -> None:
        stop_at = asyncio.get_running_loop().time() + flood_seconds
        round_ = 0
        while asyncio.get_running_loop().time() < stop_at:
            round_ += 1
            login = f"nobody-{number}-{round_}-{business.business_id}"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await terminal_stub.SignIn(pb.SignInRequest(login=login, password="x"), timeout=10)
            answers.append((refused.value.code(), error_reason(refused.value)))

    flood = asyncio.gather(*(flooder(n) for n in range(flood_callers)))
    await asyncio.sleep(1.0)  # the flood is at full height
    signed_in = await terminal_stub.SignIn(
        pb.SignInRequest(login=business.cash_desk.login, password=business.cash_desk.password),
        timeout=3.0,
    )
    assert signed_in.terminal.terminal_id == business.cash_desk.terminal_id
    await flood
    assert len(answers) >= flood_callers
    assert set(answers) <= {
        (grpc.StatusCode.UNAUTHENTICATED, "WRONG_CREDENTIALS"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "SIGN_IN_BUSY"),
    }
    # A new channel to the same target shares the flood's connection (grpc pools them).
    async with grpc.aio.insecure_channel(server.target) as channel:
        after = await TerminalServiceStub(channel).SignIn(
            pb.SignInRequest(login=business.cash_desk.login, password=business.cash_desk.password),
            timeout=after_flood_answer_seconds,
        )
    assert after.terminal.terminal_id == business.cash_desk.terminal_id


async def test_more_sign_ins_at_once_than_password_checks_are_refused_as_busy(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    """Right passwords of 30 terminals at once: more than the server checks at a time, so
    some are refused at once with RetryInfo; those get in when they try again."""
    terminals = [await new_terminal(channel, business) for _ in range(30)]
    burst = await asyncio.gather(
        *(
            terminal_stub.SignIn(pb.SignInRequest(login=t.login, password=t.password))
            for t in terminals
        ),
        return_exceptions=True,
    )
    busy = [t for t, r in zip(terminals, burst, strict=True) if isinstance(r, grpc.RpcError)]
    assert busy, "30 checks at once should exceed the server's concurrent password checks"
    for result in burst:
        if isinstance(result, grpc.aio.AioRpcError):
            assert result.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_reason(result) == "SIGN_IN_BUSY"
            assert retry_delay_seconds(result) > 0
    for terminal in busy:  # a busy refusal evaluated nothing and cost no attempt
        await terminal_stub.SignIn(
            pb.SignInRequest(login=terminal.login, password=terminal.password)
        )
