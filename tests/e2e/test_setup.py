"""The setup of a business through AdminService on a real server: programs, points of
sale, terminals and their credentials — versions, pages, archive guards, other businesses'
ids, field paths, the audit log (without secrets), and what each change does to the
terminals (sign-in, tokens, keys, notices) within the server's terminal cache time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from admin_support import audit_entries, audit_mark, error_field, owner, refused
from support import (
    Tenant,
    TerminalAccess,
    bearer,
    error_reason,
    field_violations,
    found_business,
    make_business_through_api,
    new_phone,
)
from test_back_office_access import administrator_key
from test_transactions import sale

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import setup_pb2 as setup
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

# The session server caches terminals for 0.2 s (tests/e2e/conftest.py): past this, every
# change to a terminal or its credentials has reached authentication.
terminal_cache_passed_seconds = 0.5
new_password = "a brand new password"


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> AdminServiceAsyncStub:
    return AdminServiceStub(channel)


def a_program(name: str = "Club", **fields: Any) -> setup.Program:
    settings: dict[str, Any] = {
        "default_access_type": common_pb2.ACCESS_TYPE_FULL,
        "notice_channel": setup.NOTICE_CHANNEL_SMS,
        "enrols_unknown_phones": True,
        **fields,
    }
    return setup.Program(name=name, **settings)


def a_point_of_sale(program_id: int, name: str = "Kiosk", **fields: Any) -> setup.PointOfSale:
    return setup.PointOfSale(
        program_id=program_id, name=name, time_zone=fields.pop("time_zone", "Europe/Kyiv"),
        title={"en": "Coffee on the corner", "uk": "Кава на розі"},
        address={"en": "1 Main St"}, published=True, **fields,
    )  # fmt: skip


async def create_terminal(
    stub: AdminServiceAsyncStub, business: Tenant, login: str, **fields: Any
) -> setup.Terminal:
    terminal = setup.Terminal(
        point_of_sale_id=business.point_of_sale_id, name="Till 2",
        kind=pb.TERMINAL_KIND_POS_APP, login=login, **fields,
    )  # fmt: skip
    created = await stub.CreateTerminal(
        setup.CreateTerminalRequest(terminal=terminal, password="first password!"),
        metadata=owner(business),
    )
    return created.terminal


async def test_programs_are_created_read_paged_updated_and_archived_with_their_audit(
    stub: AdminServiceAsyncStub, pool: asyncpg.Pool, business: Tenant
) -> None:
    set_up = await audit_mark(pool, business.business_id)
    created = [
        (
            await stub.CreateProgram(
                setup.CreateProgramRequest(program=a_program(f"Club {n}")), metadata=owner(business)
            )
        ).program
        for n in range(3)
    ]
    assert [program.version for program in created] == [1, 1, 1]
    assert created[0].notice_channel == setup.NOTICE_CHANNEL_SMS
    assert created[0].HasField("create_time") and not created[0].HasField("archive_time")
    first = await stub.ListPrograms(
        setup.ListProgramsRequest(page_size=2), metadata=owner(business)
    )
    rest = await stub.ListPrograms(
        setup.ListProgramsRequest(page_size=2, page_token=first.next_page_token),
        metadata=owner(business),
    )
    listed = [program.program_id for program in [*first.programs, *rest.programs]]
    assert listed == [business.program_id, *(program.program_id for program in created)]
    assert first.next_page_token and not rest.next_page_token

    changed = a_program("Club renamed", notice_channel=setup.NOTICE_CHANNEL_NONE)
    changed.program_id = created[0].program_id
    updated = await stub.UpdateProgram(
        setup.UpdateProgramRequest(program=changed, expected_version=1), metadata=owner(business)
    )
    assert (updated.program.name, updated.program.version) == ("Club renamed", 2)
    stale = a_program("Lost update")
    stale.program_id = created[0].program_id
    error = await refused(
        stub.UpdateProgram(
            setup.UpdateProgramRequest(program=stale, expected_version=1), metadata=owner(business)
        )
    )
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.ABORTED, "VERSION_MISMATCH")
    read = await stub.GetProgram(
        setup.GetProgramRequest(program_id=created[0].program_id), metadata=owner(business)
    )
    assert read.program == updated.program

    archived = await stub.ArchiveProgram(
        setup.ArchiveProgramRequest(program_id=created[1].program_id, expected_version=1),
        metadata=owner(business),
    )
    assert archived.program.HasField("archive_time")
    live = await stub.ListPrograms(setup.ListProgramsRequest(), metadata=owner(business))
    everything = await stub.ListPrograms(
        setup.ListProgramsRequest(show_archived=True), metadata=owner(business)
    )
    assert created[1].program_id not in [program.program_id for program in live.programs]
    assert created[1].program_id in [program.program_id for program in everything.programs]
    error = await refused(
        stub.SetProgramRules(
            admin.SetProgramRulesRequest(
                program_id=created[1].program_id, rules=admin.ProgramRules()
            ),
            metadata=owner(business),
        )
    )
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "ARCHIVED")

    entries = await audit_entries(pool, business.business_id, "loyalty_programs", after=set_up)
    assert [(entry["action"], int(entry["resource_id"])) for entry in entries] == [
        *(("create", program.program_id) for program in created),
        ("update", created[0].program_id),
        ("archive", created[1].program_id),
    ]
    assert entries[3]["before"]["name"] == "Club 0"
    assert entries[3]["after"]["notice_channel"] == "none"


async def test_a_program_that_points_of_sale_run_is_not_archived(
    stub: AdminServiceAsyncStub, business: Tenant
) -> None:
    error = await refused(
        stub.ArchiveProgram(
            setup.ArchiveProgramRequest(program_id=business.program_id, expected_version=1),
            metadata=owner(business),
        )
    )
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "IN_USE")
    assert "1 points of sale" in (error.details() or "")


async def test_bad_setup_input_is_refused_naming_every_field(
    stub: AdminServiceAsyncStub, business: Tenant
) -> None:
    error = await refused(
        stub.CreateProgram(
            setup.CreateProgramRequest(program=setup.Program(name=" ")), metadata=owner(business)
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == {
        "program.name",
        "program.default_access_type",
        "program.notice_channel",
    }
    bad_place = a_point_of_sale(business.program_id, time_zone="Mars/Olympus")
    bad_place.title["english"] = "Coffee"
    error = await refused(
        stub.CreatePointOfSale(
            setup.CreatePointOfSaleRequest(point_of_sale=bad_place), metadata=owner(business)
        )
    )
    assert set(field_violations(error)) == {
        "point_of_sale.time_zone",
        "point_of_sale.title['english']",
    }
    error = await refused(
        stub.CreateTerminal(
            setup.CreateTerminalRequest(
                terminal=setup.Terminal(point_of_sale_id=business.point_of_sale_id, name="T"),
                password="short",
            ),
            metadata=owner(business),
        )
    )
    assert set(field_violations(error)) == {"terminal.kind", "terminal.login", "password"}


async def test_another_businesses_setup_is_not_found(
    stub: AdminServiceAsyncStub, channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> None:
    other = await make_business_through_api(channel, pool)
    calls: list[Awaitable[object]] = [
        stub.GetProgram(
            setup.GetProgramRequest(program_id=other.program_id), metadata=owner(business)
        ),
        stub.ArchiveProgram(
            setup.ArchiveProgramRequest(program_id=other.program_id, expected_version=1),
            metadata=owner(business),
        ),
        stub.GetPointOfSale(
            setup.GetPointOfSaleRequest(point_of_sale_id=other.point_of_sale_id),
            metadata=owner(business),
        ),
        stub.GetTerminal(
            setup.GetTerminalRequest(terminal_id=other.cash_desk.terminal_id),
            metadata=owner(business),
        ),
        stub.SetTerminalPassword(
            setup.SetTerminalPasswordRequest(
                terminal_id=other.cash_desk.terminal_id, new_password=new_password
            ),
            metadata=owner(business),
        ),
        stub.CreateTerminalApiKey(
            setup.CreateTerminalApiKeyRequest(terminal_id=other.cash_desk.terminal_id),
            metadata=owner(business),
        ),
    ]
    reasons = []
    for call in calls:
        error = await refused(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        reasons.append(error_reason(error))
    assert reasons == [
        "PROGRAM_NOT_FOUND", "PROGRAM_NOT_FOUND", "POINT_OF_SALE_NOT_FOUND",
        "TERMINAL_NOT_FOUND", "TERMINAL_NOT_FOUND", "TERMINAL_NOT_FOUND",
    ]  # fmt: skip
    error = await refused(
        stub.CreatePointOfSale(
            setup.CreatePointOfSaleRequest(point_of_sale=a_point_of_sale(other.program_id)),
            metadata=owner(business),
        )
    )
    assert (error_reason(error), error_field(error)) == (
        "PROGRAM_NOT_FOUND",
        "point_of_sale.program_id",
    )
    listed = await stub.ListTerminals(setup.ListTerminalsRequest(), metadata=owner(business))
    assert other.cash_desk.terminal_id not in [
        terminal.terminal_id for terminal in listed.terminals
    ]


async def test_set_program_rules_names_the_version_it_read_and_is_audited(
    stub: AdminServiceAsyncStub, pool: asyncpg.Pool, business: Tenant
) -> None:
    set_up = await audit_mark(pool, business.business_id)
    read = await stub.GetProgramRules(
        admin.GetProgramRulesRequest(program_id=business.program_id), metadata=owner(business)
    )
    rules = admin.ProgramRules(hold_seconds=120, redemption_share_max_basis_points=5_000)
    answer = await stub.SetProgramRules(
        admin.SetProgramRulesRequest(
            program_id=business.program_id, rules=rules, expected_rules_version=read.rules_version
        ),
        metadata=owner(business),
    )
    assert answer.rules_version == read.rules_version + 1
    error = await refused(
        stub.SetProgramRules(
            admin.SetProgramRulesRequest(
                program_id=business.program_id,
                rules=admin.ProgramRules(hold_seconds=30),
                expected_rules_version=read.rules_version,
            ),
            metadata=owner(business),
        )
    )
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.ABORTED, "VERSION_MISMATCH")
    now = await stub.GetProgramRules(
        admin.GetProgramRulesRequest(program_id=business.program_id), metadata=owner(business)
    )
    assert (now.rules_version, now.rules.hold_seconds) == (answer.rules_version, 120)
    program = await stub.GetProgram(
        setup.GetProgramRequest(program_id=business.program_id), metadata=owner(business)
    )
    assert (program.program.version, program.program.rules_version) == (1, answer.rules_version)
    entries = await audit_entries(pool, business.business_id, "loyalty_programs", after=set_up)
    assert [entry["action"] for entry in entries] == ["set_rules"]
    assert entries[0]["after"]["rules"]["hold_seconds"] == 120
    assert entries[0]["actor"]


async def test_points_of_sale_are_versioned_and_archived_once_no_terminal_is_at_them(
    stub: AdminServiceAsyncStub, pool: asyncpg.Pool, business: Tenant, steward: TerminalAccess
) -> None:
    """The business's point of sale has two terminals: its cash desk and `steward`."""
    set_up = await audit_mark(pool, business.business_id)
    created = await stub.CreatePointOfSale(
        setup.CreatePointOfSaleRequest(point_of_sale=a_point_of_sale(business.program_id)),
        metadata=owner(business),
    )
    place = created.point_of_sale
    assert (place.title["uk"], place.address["en"], place.published) == (
        "Кава на розі",
        "1 Main St",
        True,
    )
    moved = a_point_of_sale(business.program_id, "Kiosk 2", time_zone="UTC")
    moved.point_of_sale_id = place.point_of_sale_id
    moved.published = False
    updated = await stub.UpdatePointOfSale(
        setup.UpdatePointOfSaleRequest(point_of_sale=moved, expected_version=1),
        metadata=owner(business),
    )
    assert (updated.point_of_sale.version, updated.point_of_sale.published) == (2, False)
    error = await refused(
        stub.UpdatePointOfSale(
            setup.UpdatePointOfSaleRequest(point_of_sale=moved, expected_version=1),
            metadata=owner(business),
        )
    )
    assert error_reason(error) == "VERSION_MISMATCH"

    error = await refused(
        stub.ArchivePointOfSale(
            setup.ArchivePointOfSaleRequest(
                point_of_sale_id=business.point_of_sale_id, expected_version=1
            ),
            metadata=owner(business),
        )
    )
    assert error_reason(error) == "IN_USE" and "2 terminals" in (error.details() or "")
    archived = await stub.ArchivePointOfSale(
        setup.ArchivePointOfSaleRequest(
            point_of_sale_id=place.point_of_sale_id, expected_version=2
        ),
        metadata=owner(business),
    )
    assert archived.point_of_sale.HasField("archive_time")
    error = await refused(
        stub.CreateTerminal(
            setup.CreateTerminalRequest(
                terminal=setup.Terminal(
                    point_of_sale_id=place.point_of_sale_id, name="T",
                    kind=pb.TERMINAL_KIND_KIOSK, login=f"kiosk-{new_phone()[1:]}",
                ),
                password=new_password,
            ),
            metadata=owner(business),
        )
    )  # fmt: skip
    assert (error_reason(error), error_field(error)) == (
        "POINT_OF_SALE_NOT_FOUND",
        "terminal.point_of_sale_id",
    )
    entries = await audit_entries(pool, business.business_id, "points_of_sale", after=set_up)
    assert [entry["action"] for entry in entries] == ["create", "update", "archive"]


async def test_a_new_password_revokes_the_tokens_of_the_old_one(
    stub: AdminServiceAsyncStub,
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    set_up = await audit_mark(pool, business.business_id)
    login = f"till-{new_phone()[1:]}"
    terminal = await create_terminal(stub, business, login)
    # Created without `enabled`: a new terminal works at once.
    assert (terminal.login, terminal.kind, terminal.enabled) == (
        login,
        pb.TERMINAL_KIND_POS_APP,
        True,
    )
    signed_in = await terminal_stub.SignIn(
        pb.SignInRequest(login=login, password="first password!")
    )
    assert signed_in.terminal.kind == pb.TERMINAL_KIND_POS_APP
    settings = pb.GetTerminalSettingsRequest()
    await terminal_stub.GetTerminalSettings(settings, metadata=bearer(signed_in.token))

    changed = await stub.SetTerminalPassword(
        setup.SetTerminalPasswordRequest(
            terminal_id=terminal.terminal_id, new_password=new_password
        ),
        metadata=owner(business),
    )
    assert changed.terminal.version == 2
    await asyncio.sleep(terminal_cache_passed_seconds)
    error = await refused(
        terminal_stub.GetTerminalSettings(settings, metadata=bearer(signed_in.token))
    )
    assert (error.code(), error_reason(error)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )
    error = await refused(
        terminal_stub.SignIn(pb.SignInRequest(login=login, password="first password!"))
    )
    assert error_reason(error) == "WRONG_CREDENTIALS"
    again = await terminal_stub.SignIn(pb.SignInRequest(login=login, password=new_password))
    await terminal_stub.GetTerminalSettings(settings, metadata=bearer(again.token))

    entries = await audit_entries(pool, business.business_id, "terminals", after=set_up)
    assert [entry["action"] for entry in entries] == ["create", "set_password"]
    for entry in entries:
        for document in (entry["before"], entry["after"]):
            assert document is None or "password_hash" not in document
    error = await refused(create_terminal(stub, business, login))
    assert (error.code(), error_reason(error), error_field(error)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "LOGIN_TAKEN",
        "terminal.login",
    )


async def test_api_keys_are_shown_once_revoked_and_rotated(
    stub: AdminServiceAsyncStub,
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    steward: TerminalAccess,
) -> None:
    set_up = await audit_mark(pool, business.business_id)
    terminal = await create_terminal(stub, business, f"keys-{new_phone()[1:]}")
    settings = pb.GetTerminalSettingsRequest()
    created = await stub.CreateTerminalApiKey(
        setup.CreateTerminalApiKeyRequest(terminal_id=terminal.terminal_id, name="till app"),
        metadata=owner(business),
    )
    answer = await terminal_stub.GetTerminalSettings(settings, metadata=bearer(created.secret))
    assert answer.terminal.terminal_id == terminal.terminal_id
    rotated = await stub.RotateTerminalApiKey(
        setup.RotateTerminalApiKeyRequest(api_key_id=created.api_key.api_key_id),
        metadata=owner(business),
    )
    assert rotated.api_key.name == "till app" and rotated.secret != created.secret
    await terminal_stub.GetTerminalSettings(settings, metadata=bearer(rotated.secret))
    revoked = await stub.RevokeTerminalApiKey(
        setup.RevokeTerminalApiKeyRequest(api_key_id=rotated.api_key.api_key_id),
        metadata=owner(business),
    )
    assert revoked.api_key.HasField("revoke_time")
    await asyncio.sleep(terminal_cache_passed_seconds)
    for secret in (created.secret, rotated.secret):
        error = await refused(terminal_stub.GetTerminalSettings(settings, metadata=bearer(secret)))
        assert error_reason(error) == "API_KEY_INVALID"
    for call in (
        stub.RotateTerminalApiKey(
            setup.RotateTerminalApiKeyRequest(api_key_id=created.api_key.api_key_id),
            metadata=owner(business),
        ),
        stub.RevokeTerminalApiKey(
            setup.RevokeTerminalApiKeyRequest(api_key_id=rotated.api_key.api_key_id),
            metadata=owner(business),
        ),
    ):
        error = await refused(call)
        assert (error.code(), error_reason(error)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "ARCHIVED",
        )

    listed = await stub.ListTerminalApiKeys(
        setup.ListTerminalApiKeysRequest(terminal_id=terminal.terminal_id, show_revoked=True),
        metadata=owner(business),
    )
    assert [key.api_key_id for key in listed.api_keys] == [
        created.api_key.api_key_id,
        rotated.api_key.api_key_id,
    ]
    live = await stub.ListTerminalApiKeys(
        setup.ListTerminalApiKeysRequest(), metadata=owner(business)
    )
    assert {key.terminal_id for key in live.api_keys} == {
        business.cash_desk.terminal_id,
        steward.terminal_id,
    }
    entries = await audit_entries(pool, business.business_id, "terminal_api_keys", after=set_up)
    assert [entry["action"] for entry in entries] == ["create", "revoke", "create", "revoke"]
    for entry in entries:
        for document in (entry["before"], entry["after"]):
            assert document is None or "key_hash" not in document


async def test_a_disabled_or_archived_terminal_stops_authenticating(
    stub: AdminServiceAsyncStub,
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    steward: TerminalAccess,
) -> None:
    desk = business.cash_desk
    settings = pb.GetTerminalSettingsRequest()
    read = await stub.GetTerminal(
        setup.GetTerminalRequest(terminal_id=desk.terminal_id), metadata=owner(business)
    )
    disabled = setup.Terminal()
    disabled.CopyFrom(read.terminal)
    disabled.enabled = False
    await stub.UpdateTerminal(
        setup.UpdateTerminalRequest(terminal=disabled, expected_version=1), metadata=owner(business)
    )
    await asyncio.sleep(terminal_cache_passed_seconds)
    error = await refused(
        terminal_stub.GetTerminalSettings(settings, metadata=bearer(desk.api_key))
    )
    assert (error.code(), error_reason(error)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "TERMINAL_DISABLED",
    )
    error = await refused(
        terminal_stub.SignIn(pb.SignInRequest(login=desk.login, password=desk.password))
    )
    assert error_reason(error) == "WRONG_CREDENTIALS"

    archived = await stub.ArchiveTerminal(
        setup.ArchiveTerminalRequest(terminal_id=desk.terminal_id, expected_version=2),
        metadata=owner(business),
    )
    assert archived.terminal.HasField("archive_time")
    keys = await stub.ListTerminalApiKeys(
        setup.ListTerminalApiKeysRequest(terminal_id=desk.terminal_id), metadata=owner(business)
    )
    assert list(keys.api_keys) == []  # revoked with the terminal
    await asyncio.sleep(terminal_cache_passed_seconds)
    error = await refused(
        terminal_stub.GetTerminalSettings(settings, metadata=bearer(desk.api_key))
    )
    assert error_reason(error) == "API_KEY_INVALID"
    other = await terminal_stub.GetTerminalSettings(settings, metadata=bearer(steward.api_key))
    assert other.terminal.terminal_id == steward.terminal_id


@pytest.mark.parametrize(
    ("notice_channel", "stored"),
    [(setup.NOTICE_CHANNEL_PUSH, ["push"]), (setup.NOTICE_CHANNEL_NONE, [])],
)
async def test_transaction_notices_go_on_the_programs_channel(
    stub: AdminServiceAsyncStub,
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    notice_channel: int,
    stored: list[str],
) -> None:
    await stub.SetProgramRules(
        admin.SetProgramRulesRequest(
            program_id=business.program_id,
            rules=admin.ProgramRules(
                rules=[
                    admin.Rule(
                        rule_id=1, title="5% back", kind=admin.RULE_KIND_ACCRUAL,
                        scope=admin.RULE_SCOPE_LINE, value_kind=admin.VALUE_KIND_PERCENT,
                        value=500,
                    )
                ]
            ),
        ),
        metadata=owner(business),
    )  # fmt: skip
    program = a_program("Test program", notice_channel=notice_channel)
    program.program_id = business.program_id
    await stub.UpdateProgram(
        setup.UpdateProgramRequest(program=program, expected_version=1), metadata=owner(business)
    )
    await asyncio.sleep(terminal_cache_passed_seconds)
    answer = await terminal_stub.ProcessCheck(
        sale("NOTICE-1", new_phone()), metadata=bearer(business.cash_desk.api_key)
    )
    assert answer.transaction.receipt.points_accrued_hundredths == 500
    rows = await pool.fetch(
        "SELECT channel, status, reason FROM outbox_messages"
        " WHERE business_id = $1 AND purpose = 'transaction'",
        business.business_id,
    )
    assert [row["channel"] for row in rows] == stored
    # A customer who has not confirmed participation gets nothing: the notice is written
    # as rejected, never handed to the dispatcher.
    assert {(row["status"], row["reason"]) for row in rows} <= {
        ("rejected", "PARTICIPATION_NOT_CONFIRMED")
    }


async def test_an_analyst_reads_the_setup_and_changes_none_of_it(
    stub: AdminServiceAsyncStub, channel: grpc.aio.Channel, pool: asyncpg.Pool
) -> None:
    founded = await found_business(channel, pool)
    analyst = await administrator_key(
        stub, founded.owner_api_key, admin.ADMINISTRATOR_ROLE_ANALYST, f"an-{new_phone()[1:]}"
    )
    await stub.ListPrograms(setup.ListProgramsRequest(), metadata=bearer(analyst))
    error = await refused(
        stub.CreateProgram(
            setup.CreateProgramRequest(program=a_program()), metadata=bearer(analyst)
        )
    )
    assert (error.code(), error_reason(error)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ROLE_NOT_ALLOWED",
    )
    created = await stub.CreateProgram(
        setup.CreateProgramRequest(program=a_program()), metadata=bearer(founded.owner_api_key)
    )
    assert created.program.version == 1
