"""Every AdminService RPC, found from the contract itself: none answers without
credentials, and an analyst is refused every one that changes anything before it reads
a thing — so an RPC added later is covered the day it is added."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass
from support import bearer, error_reason, found_business

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.api.grpc.admin.calls import access_of
from purse.api.grpc.admin.servicer import AdminServicer
from purse.domain.administrators import Access

_service = admin.DESCRIPTOR.services_by_name["AdminService"]
_methods = [method for method in _service.methods if method.name != "SignIn"]


async def _call(channel: grpc.aio.Channel, name: str, credential: str | None) -> None:
    method = _service.methods_by_name[name]
    request = GetMessageClass(method.input_type)()
    stub: Any = AdminServiceStub(channel)
    metadata = bearer(credential) if credential is not None else ()
    call = getattr(stub, name)(request, metadata=metadata)
    if method.server_streaming:
        async for _ in call:
            continue
    else:
        await call


@pytest.mark.parametrize("name", [method.name for method in _methods])
async def test_no_rpc_answers_without_credentials(channel: grpc.aio.Channel, name: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(channel, name, None)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_analyst_is_refused_every_change_and_a_manager_every_administration(
    channel: grpc.aio.Channel, pool: asyncpg.Pool
) -> None:
    founded = await found_business(channel, pool)
    stub = AdminServiceStub(channel)
    keys: dict[int, str] = {}
    for role, login in (
        (admin.ADMINISTRATOR_ROLE_ANALYST, "an"),
        (admin.ADMINISTRATOR_ROLE_MANAGER, "ma"),
    ):
        created = await stub.CreateAdministrator(
            admin.CreateAdministratorRequest(
                login=f"{login}-{founded.business_id}", role=role, password="long enough password"
            ),
            metadata=bearer(founded.owner_api_key),
        )
        key = await stub.CreateApiKey(
            admin.CreateApiKeyRequest(administrator_id=created.administrator.administrator_id),
            metadata=bearer(founded.owner_api_key),
        )
        keys[role] = key.secret
    refused_for: dict[str, list[str]] = {"analyst": [], "manager": []}
    for method in _methods:
        access = access_of(getattr(AdminServicer, method.name))
        for role, who, forbidden in (
            (admin.ADMINISTRATOR_ROLE_ANALYST, "analyst", {Access.CHANGE, Access.ADMINISTER}),
            (admin.ADMINISTRATOR_ROLE_MANAGER, "manager", {Access.ADMINISTER}),
        ):
            if access not in forbidden:
                continue
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _call(channel, method.name, keys[role])
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, method.name
            assert error_reason(refused.value) == "ROLE_NOT_ALLOWED"
            refused_for[who].append(method.name)
    assert "CreateCustomerCategory" in refused_for["analyst"]
    assert "CreateAdministrator" in refused_for["manager"]
