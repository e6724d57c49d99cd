"""The Python client integrators use: credentials, re-sign-in, and readable refusals."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from support import ServerProcess, Tenant, new_phone, terminal_token_lifetime_seconds

from purse.client import PurseError, TerminalClient


async def test_the_client_identifies_with_an_api_key(
    server: ServerProcess, business: Tenant
) -> None:
    async with TerminalClient(server.target, api_key=business.cash_desk.api_key) as terminal:
        phone = new_phone()
        membership = await terminal.identify(phone=phone)
        assert membership.phone == phone
        settings = await terminal.get_terminal_settings()
        assert settings.terminal.business_id == business.business_id


async def test_the_client_signs_in_and_signs_in_again_when_the_token_expires(
    server: ServerProcess, business: Tenant
) -> None:
    async with TerminalClient(
        server.target, login=business.cash_desk.login, password=business.cash_desk.password
    ) as terminal:
        first = await terminal.get_terminal_settings()
        first_token = terminal._token
        await asyncio.sleep(terminal_token_lifetime_seconds + 0.2)
        second = await terminal.get_terminal_settings()
        assert second.terminal.terminal_id == first.terminal.terminal_id
        assert terminal._token != first_token


async def test_client_refusals_carry_code_reason_and_field_violations(
    server: ServerProcess, business: Tenant
) -> None:
    async with TerminalClient(server.target, api_key=business.cash_desk.api_key) as terminal:
        with pytest.raises(PurseError) as refused:
            await terminal.identify(phone="12")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.reason == "PHONE_INVALID"
    assert "identifier.phone" in refused.value.field_violations
