"""The administrator's, the operator's and the terminal's Python clients against a real
server: sign-in by password, typed results with the message one attribute away, and the
check stream answering each check in order, refusals included."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
from support import ServerProcess, Tenant, found_business, new_phone, operator_key
from test_transactions import sale

from purse.admin.v1 import admin_service_pb2
from purse.client import AdminClient, PlatformClient, PurseError, TerminalClient
from purse.client.admin_v1 import AdministratorRole
from purse.client.v1 import TransactionStatus


async def test_the_admin_client_signs_in_with_a_password_and_answers_typed_results(
    server: ServerProcess, channel: grpc.aio.Channel, pool: asyncpg.Pool
) -> None:
    founded = await found_business(channel, pool)
    async with AdminClient(
        server.target, login=founded.owner_login, password=founded.owner_password
    ) as admin:
        caller = await admin.get_caller()
        listed = await admin.list_administrators(page_size=10)
    assert caller.business_id == founded.business_id
    assert caller.administrator.role is AdministratorRole.OWNER
    assert isinstance(caller.raw, admin_service_pb2.GetCallerResponse)
    assert caller.raw.administrator.login == founded.owner_login
    (owner,) = listed.administrators
    assert owner.login == founded.owner_login
    assert owner.create_time is not None
    assert owner.create_time.tzinfo is UTC
    assert owner.create_time <= datetime.now(UTC)
    assert owner.archive_time is None


async def test_the_platform_client_founds_a_business_with_the_operators_key(
    server: ServerProcess, pool: asyncpg.Pool
) -> None:
    async with PlatformClient(server.target, api_key=await operator_key(pool)) as platform:
        founded = await platform.create_business(
            name="Founded by the Python client",
            currency="UAH",
            languages=["uk", "en"],
            owner_login=f"owner-{new_phone().removeprefix('+')}",
            owner_password="correct horse battery staple",
            owner_name="Owner",
        )
        with pytest.raises(PurseError) as refused:
            await platform.create_business(name="", currency="UAH")
    assert founded.business_id > 0
    assert founded.owner_api_key
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in refused.value.field_violations


def test_the_platform_client_takes_only_an_api_key() -> None:
    with pytest.raises(ValueError, match="takes an API key"):
        PlatformClient("127.0.0.1:1", login="operator", password="secret")


async def test_the_check_stream_answers_each_check_in_order_refusals_included(
    server: ServerProcess, business: Tenant
) -> None:
    phone = new_phone()
    checks = [sale("PY-1", phone), sale("PY-2", "12"), sale("PY-3", phone)]
    async with (
        TerminalClient(server.target, api_key=business.cash_desk.api_key) as terminal,
        terminal.check_stream() as stream,
    ):
        results = await stream.process(checks)
        await stream.send([sale("PY-4", phone)])
        await stream.done_sending()
        rest = [result async for result in stream]
        listed = await terminal.list_transactions(page_size=10)
    assert [result.check_number for result in results] == ["PY-1", "PY-2", "PY-3"]
    assert results[0].processed is not None
    assert results[0].processed.transaction.status is TransactionStatus.COMPLETED
    assert results[1].processed is None
    assert results[1].error is not None
    assert results[1].error.reason == "PHONE_INVALID"
    assert list(results[1].error.field_violations) == ["identifier.phone"]
    assert [result.check_number for result in rest] == ["PY-4"]
    assert stream.outstanding == 0
    assert [transaction.check_number for transaction in listed.transactions] == [
        "PY-4",
        "PY-3",
        "PY-1",
    ]
