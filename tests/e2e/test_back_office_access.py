"""Who administers a business: the operator founds it, its owner brings in managers and
analysts, each role may do what it may and no more, credentials can be rotated and
revoked, and every change is in the audit log."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from support import Founded, bearer, error_reason, field_violations, found_business, operator_key

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.platform.v1 import platform_service_pb2 as platform
from purse.platform.v1.platform_service_pb2_grpc import PlatformServiceStub

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub

# The session server's administrator cache lives 0.2 s (PURSE_TERMINAL_CACHE_SECONDS).
cache_window_seconds = 0.3
password = "a long enough password"


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> AdminServiceAsyncStub:
    return AdminServiceStub(channel)


@pytest.fixture
async def founded(channel: grpc.aio.Channel, pool: asyncpg.Pool) -> Founded:
    return await found_business(channel, pool)


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call  # type: ignore[misc]
    return failure.value


async def administrator_key(
    stub: AdminServiceAsyncStub, owner_key: str, role: admin.AdministratorRole.ValueType, login: str
) -> str:
    created = await stub.CreateAdministrator(
        admin.CreateAdministratorRequest(login=login, name=login, role=role, password=password),
        metadata=bearer(owner_key),
    )
    key = await stub.CreateApiKey(
        admin.CreateApiKeyRequest(administrator_id=created.administrator.administrator_id),
        metadata=bearer(owner_key),
    )
    return key.secret


async def test_the_operator_founds_a_business_whose_owner_key_speaks_for_it(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    caller = await stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(founded.owner_api_key))
    assert caller.business_id == founded.business_id
    assert caller.administrator.role == admin.ADMINISTRATOR_ROLE_OWNER
    business = await stub.GetBusiness(
        admin.GetBusinessRequest(), metadata=bearer(founded.owner_api_key)
    )
    assert (business.business.currency, business.business.time_zone) == ("UAH", "Europe/Kyiv")
    assert list(business.business.languages) == ["uk", "en"]
    categories = await stub.ListCustomerCategories(
        admin.ListCustomerCategoriesRequest(), metadata=bearer(founded.owner_api_key)
    )
    assert [(each.name, each.is_default) for each in categories.categories] == [
        ("New customers", True)
    ]


async def test_founding_needs_an_operator_key(channel: grpc.aio.Channel) -> None:
    request = platform.CreateBusinessRequest(
        name="X", currency="UAH", owner_login="someone", owner_password=password
    )
    error = await refused(PlatformServiceStub(channel).CreateBusiness(request))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = await refused(
        PlatformServiceStub(channel).CreateBusiness(request, metadata=bearer("purse_key_made_up"))
    )
    assert error_reason(error) == "OPERATOR_KEY_INVALID"


async def test_founding_with_bad_fields_names_each_and_creates_nothing(
    channel: grpc.aio.Channel, pool: asyncpg.Pool
) -> None:
    businesses_before = await pool.fetchval("SELECT count(*) FROM businesses")
    request = platform.CreateBusinessRequest(
        name="", currency="XYZ", time_zone="Mars/Olympus", owner_login="a", owner_password="short"
    )
    error = await refused(
        PlatformServiceStub(channel).CreateBusiness(
            request, metadata=bearer(await operator_key(pool))
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"name", "currency", "time_zone", "owner_login", "owner_password"} <= set(
        field_violations(error)
    )
    assert await pool.fetchval("SELECT count(*) FROM businesses") == businesses_before


async def test_a_taken_owner_login_is_already_exists_and_creates_no_business(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, founded: Founded
) -> None:
    businesses_before = await pool.fetchval("SELECT count(*) FROM businesses")
    request = platform.CreateBusinessRequest(
        name="Twin", currency="UAH", owner_login=founded.owner_login, owner_password=password
    )
    error = await refused(
        PlatformServiceStub(channel).CreateBusiness(
            request, metadata=bearer(await operator_key(pool))
        )
    )
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.ALREADY_EXISTS, "LOGIN_TAKEN")
    assert await pool.fetchval("SELECT count(*) FROM businesses") == businesses_before


async def test_each_role_does_what_it_may_and_is_refused_the_rest(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    owner = founded.owner_api_key
    manager = await administrator_key(
        stub, owner, admin.ADMINISTRATOR_ROLE_MANAGER, f"m-{founded.business_id}"
    )
    analyst = await administrator_key(
        stub, owner, admin.ADMINISTRATOR_ROLE_ANALYST, f"a-{founded.business_id}"
    )
    category = admin.CustomerCategory(name="Gold", title={"en": "Gold"})
    # Reads: everyone.
    for key in (owner, manager, analyst):
        await stub.ListCustomerCategories(
            admin.ListCustomerCategoriesRequest(), metadata=bearer(key)
        )
    # Changes: owner and manager.
    await stub.CreateCustomerCategory(
        admin.CreateCustomerCategoryRequest(category=category), metadata=bearer(manager)
    )
    error = await refused(
        stub.CreateCustomerCategory(
            admin.CreateCustomerCategoryRequest(category=category), metadata=bearer(analyst)
        )
    )
    assert (error.code(), error_reason(error)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ROLE_NOT_ALLOWED",
    )
    # Administrators: the owner only.
    error = await refused(
        stub.CreateAdministrator(
            admin.CreateAdministratorRequest(
                login=f"x-{founded.business_id}",
                role=admin.ADMINISTRATOR_ROLE_OWNER,
                password=password,
            ),
            metadata=bearer(manager),
        )
    )
    assert error_reason(error) == "ROLE_NOT_ALLOWED"
    error = await refused(
        stub.CreateApiKey(
            admin.CreateApiKeyRequest(administrator_id=founded.owner_administrator_id),
            metadata=bearer(manager),
        )
    )
    assert error_reason(error) == "ROLE_NOT_ALLOWED"


async def test_sign_in_gives_a_token_that_a_new_password_revokes(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    signed_in = await stub.SignIn(
        admin.SignInRequest(login=founded.owner_login, password=founded.owner_password)
    )
    assert signed_in.business_id == founded.business_id
    token = signed_in.token
    await stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(token))
    wrong = await refused(
        stub.SignIn(admin.SignInRequest(login=founded.owner_login, password="not the password"))
    )
    assert error_reason(wrong) == "WRONG_CREDENTIALS"
    error = await refused(
        stub.SetAdministratorPassword(
            admin.SetAdministratorPasswordRequest(
                current_password="not the password", new_password=password
            ),
            metadata=bearer(token),
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    await stub.SetAdministratorPassword(
        admin.SetAdministratorPasswordRequest(
            current_password=founded.owner_password, new_password=password
        ),
        metadata=bearer(token),
    )
    await asyncio.sleep(cache_window_seconds)
    error = await refused(stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(token)))
    assert error_reason(error) == "TOKEN_REVOKED"
    again = await stub.SignIn(admin.SignInRequest(login=founded.owner_login, password=password))
    await stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(again.token))


async def test_a_rotated_key_replaces_the_old_one_and_a_revoked_one_stops(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    owner = founded.owner_api_key
    extra = await stub.CreateApiKey(
        admin.CreateApiKeyRequest(name="script"), metadata=bearer(owner)
    )
    rotated = await stub.RotateApiKey(
        admin.RotateApiKeyRequest(api_key_id=extra.api_key.api_key_id), metadata=bearer(owner)
    )
    assert rotated.api_key.name == "script"
    await stub.RevokeApiKey(
        admin.RevokeApiKeyRequest(api_key_id=rotated.api_key.api_key_id), metadata=bearer(owner)
    )
    await asyncio.sleep(cache_window_seconds)
    for secret in (extra.secret, rotated.secret):
        error = await refused(stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(secret)))
        assert error_reason(error) == "API_KEY_INVALID"
    keys = await stub.ListApiKeys(
        admin.ListApiKeysRequest(show_revoked=True), metadata=bearer(owner)
    )
    assert len(keys.api_keys) == 3
    assert sum(1 for key in keys.api_keys if key.HasField("revoke_time")) == 2


async def test_the_last_owner_is_neither_demoted_nor_archived(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    owner = founded.owner_api_key
    listed = await stub.ListAdministrators(
        admin.ListAdministratorsRequest(), metadata=bearer(owner)
    )
    (me,) = listed.administrators
    error = await refused(
        stub.UpdateAdministrator(
            admin.UpdateAdministratorRequest(
                administrator_id=me.administrator_id,
                expected_version=me.version,
                role=admin.ADMINISTRATOR_ROLE_ANALYST,
            ),
            metadata=bearer(owner),
        )
    )
    assert error_reason(error) == "LAST_OWNER"
    error = await refused(
        stub.ArchiveAdministrator(
            admin.ArchiveAdministratorRequest(
                administrator_id=me.administrator_id, expected_version=me.version
            ),
            metadata=bearer(owner),
        )
    )
    assert error_reason(error) == "LAST_OWNER"


async def test_an_archived_administrator_s_keys_stop_at_once(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    owner = founded.owner_api_key
    manager_key = await administrator_key(
        stub, owner, admin.ADMINISTRATOR_ROLE_MANAGER, f"gone-{founded.business_id}"
    )
    caller = await stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(manager_key))
    manager = caller.administrator.administrator_id
    listed = await stub.ListAdministrators(
        admin.ListAdministratorsRequest(), metadata=bearer(owner)
    )
    version = next(a.version for a in listed.administrators if a.administrator_id == manager)
    await stub.ArchiveAdministrator(
        admin.ArchiveAdministratorRequest(administrator_id=manager, expected_version=version),
        metadata=bearer(owner),
    )
    await asyncio.sleep(cache_window_seconds)
    error = await refused(stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(manager_key)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_every_change_is_in_the_audit_log_without_secrets(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    owner = founded.owner_api_key
    await administrator_key(
        stub, owner, admin.ADMINISTRATOR_ROLE_ANALYST, f"au-{founded.business_id}"
    )
    entries = await stub.ListAuditEntries(admin.ListAuditEntriesRequest(), metadata=bearer(owner))
    seen = [(entry.actor.split(" ")[0], entry.action, entry.resource) for entry in entries.entries]
    assert seen[:2] == [
        (founded.owner_login, "create", "admin_api_keys"),
        (founded.owner_login, "create", "administrators"),
    ]
    assert ("operator", "create", "businesses") in seen
    for entry in entries.entries:
        for document in (entry.before_json, entry.after_json):
            if document:
                assert not {"password_hash", "key_hash"} & set(json.loads(document))
    only = await stub.ListAuditEntries(
        admin.ListAuditEntriesRequest(resource="businesses", page_size=1), metadata=bearer(owner)
    )
    assert [entry.resource for entry in only.entries] == ["businesses"]


async def test_the_audit_log_cannot_be_rewritten(pool: asyncpg.Pool, founded: Founded) -> None:
    with pytest.raises(asyncpg.RaiseError):
        await pool.execute("DELETE FROM audit_log WHERE business_id = $1", founded.business_id)
    with pytest.raises(asyncpg.RaiseError):
        await pool.execute(
            "UPDATE audit_log SET actor = 'someone else' WHERE business_id = $1",
            founded.business_id,
        )


async def test_a_business_setting_update_names_the_version_it_read(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    owner = founded.owner_api_key
    read = (await stub.GetBusiness(admin.GetBusinessRequest(), metadata=bearer(owner))).business
    changed = admin.Business()
    changed.CopyFrom(read)
    changed.name = "Renamed"
    updated = await stub.UpdateBusiness(
        admin.UpdateBusinessRequest(business=changed, expected_version=read.version),
        metadata=bearer(owner),
    )
    assert (updated.business.name, updated.business.version) == ("Renamed", read.version + 1)
    error = await refused(
        stub.UpdateBusiness(
            admin.UpdateBusinessRequest(business=read, expected_version=read.version),
            metadata=bearer(owner),
        )
    )
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.ABORTED, "VERSION_MISMATCH")
    bad = admin.Business()
    bad.CopyFrom(read)
    bad.phone_prefix = "380"
    bad.languages.append("not a language")
    error = await refused(
        stub.UpdateBusiness(
            admin.UpdateBusinessRequest(business=bad, expected_version=read.version + 1),
            metadata=bearer(owner),
        )
    )
    assert {"business.phone_prefix", "business.languages[2]"} <= set(field_violations(error))
    now = (await stub.GetBusiness(admin.GetBusinessRequest(), metadata=bearer(owner))).business
    assert now.name == "Renamed"


async def test_another_business_s_ids_are_not_found(
    stub: AdminServiceAsyncStub, channel: grpc.aio.Channel, pool: asyncpg.Pool, founded: Founded
) -> None:
    other = await found_business(channel, pool)
    theirs = await stub.ListCustomerCategories(
        admin.ListCustomerCategoriesRequest(), metadata=bearer(other.owner_api_key)
    )
    category = theirs.categories[0]
    mine = bearer(founded.owner_api_key)
    error = await refused(
        stub.GetCustomerCategory(
            admin.GetCustomerCategoryRequest(category_id=category.category_id), metadata=mine
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await refused(
        stub.UpdateAdministrator(
            admin.UpdateAdministratorRequest(
                administrator_id=other.owner_administrator_id,
                expected_version=1,
                role=admin.ADMINISTRATOR_ROLE_ANALYST,
            ),
            metadata=mine,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    keys = await stub.ListApiKeys(admin.ListApiKeysRequest(), metadata=bearer(other.owner_api_key))
    error = await refused(
        stub.RevokeApiKey(
            admin.RevokeApiKeyRequest(api_key_id=keys.api_keys[0].api_key_id), metadata=mine
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_wrong_passwords_lock_an_administrator_login_out_even_for_the_right_one(
    stub: AdminServiceAsyncStub, founded: Founded
) -> None:
    wrong = admin.SignInRequest(login=founded.owner_login, password="not the password")
    codes = []
    for _ in range(6):
        codes.append((await refused(stub.SignIn(wrong))).code())
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 5 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    right = admin.SignInRequest(login=founded.owner_login, password=founded.owner_password)
    error = await refused(stub.SignIn(right))
    assert error_reason(error) == "SIGN_IN_RATE_LIMITED"
    # Keys keep working: the lockout is about guessing this login's password.
    await stub.GetCaller(admin.GetCallerRequest(), metadata=bearer(founded.owner_api_key))
