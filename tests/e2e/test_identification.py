"""Identifying customers by every method, and every way of getting it wrong."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import blacklist, credit_account, credit_points, enrol
from support import (
    Tenant,
    TerminalAccess,
    bearer,
    error_reason,
    field_violations,
    make_business_through_api,
    new_phone,
    new_terminal,
    retry_delay_seconds,
    steward_code_lifetime_seconds,
)

from purse.config import Settings
from purse.domain import credentials
from purse.store.postgres import database
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def identify(
    stub: TerminalServiceAsyncStub, credential: str, **identifier: str
) -> common_pb2.Membership:
    answer = await stub.IdentifyCustomer(
        pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(**identifier)),
        metadata=bearer(credential),
    )
    return answer.membership


async def refusal(
    stub: TerminalServiceAsyncStub, credential: str, **identifier: str
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await identify(stub, credential, **identifier)
    return refused.value


async def add_card(
    stub: TerminalServiceAsyncStub,
    business: Tenant,
    customer_id: int,
    value: str,
    kind: common_pb2.IdentifierKind.ValueType = common_pb2.IDENTIFIER_KIND_CARD_NUMBER,
) -> None:
    """The cash desk gives the customer a card (AddCustomerIdentifier)."""
    await stub.AddCustomerIdentifier(
        pb.AddCustomerIdentifierRequest(customer_id=customer_id, kind=kind, value=value),
        metadata=bearer(business.cash_desk.api_key),
    )


async def test_an_unknown_phone_enrols_the_customer_as_a_new_customer(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    membership = await identify(terminal_stub, business.cash_desk.api_key, phone=phone)
    assert membership.newly_enrolled
    assert membership.phone == phone
    assert membership.category_title == "New customers"
    assert membership.access_type == common_pb2.ACCESS_TYPE_FULL
    assert [(p.kind, p.available, p.held) for p in membership.pockets] == [
        (common_pb2.POCKET_KIND_POINTS, 0, 0)
    ]
    again = await identify(terminal_stub, business.cash_desk.api_key, phone=phone)
    assert not again.newly_enrolled
    assert again.customer_id == membership.customer_id


async def test_a_locally_typed_phone_is_completed_with_the_business_prefix(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    local = "0" + phone.removeprefix("+380")
    membership = await identify(terminal_stub, business.cash_desk.api_key, phone=local)
    assert membership.phone == phone


@pytest.mark.ledger_set_by_hand
async def test_the_answer_carries_every_pocket_with_available_and_held_amounts(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    customer = await enrol(channel, business)
    phone, customer_id = customer.phone, customer.customer_id
    await credit_points(channel, business, customer_id, 12_345)
    await credit_account(channel, business, customer_id, business.products_account_type_id, 40_500)
    # Points held with no pending sale to hold them: a state no API call makes.
    await pool.execute(
        "UPDATE pockets SET held = 345 WHERE business_id = $1 AND customer_id = $2"
        " AND account_type_id = 0",
        business.business_id,
        customer_id,
    )
    membership = await identify(terminal_stub, business.cash_desk.api_key, phone=phone)
    points, fuel = membership.pockets
    assert (points.balance, points.held, points.available) == (12_345, 345, 12_000)
    assert points.unit == common_pb2.POCKET_UNIT_POINT_HUNDREDTHS
    assert fuel.kind == common_pb2.POCKET_KIND_PRODUCTS_ACCOUNT
    assert fuel.unit == common_pb2.POCKET_UNIT_THOUSANDTHS
    assert (fuel.title, fuel.available) == ("Fuel A-95", 40_500)
    assert fuel.redemption_limit_without_pin == 20_000


async def test_a_program_that_does_not_enrol_answers_not_found_for_unknown_phones(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, pool: asyncpg.Pool
) -> None:
    closed = await make_business_through_api(channel, pool, enrols_unknown_phones=False)
    error = await refusal(terminal_stub, closed.cash_desk.api_key, phone=new_phone())
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "CUSTOMER_NOT_FOUND"


async def test_a_customer_is_identified_by_card_number_and_by_card_qr(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    customer_id = (await enrol(channel, business)).customer_id
    await add_card(terminal_stub, business, customer_id, "E2E00001")
    await add_card(
        terminal_stub,
        business,
        customer_id,
        "https://q.test/E2E1",
        common_pb2.IDENTIFIER_KIND_CARD_QR,
    )
    by_card = await identify(terminal_stub, business.cash_desk.api_key, card_number="e2e-0000-1")
    by_qr = await identify(terminal_stub, business.cash_desk.api_key, card_qr="https://q.test/E2E1")
    assert by_card.customer_id == by_qr.customer_id == customer_id


async def test_a_steward_code_identifies_the_customer_at_a_cash_desk_once(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, steward: TerminalAccess
) -> None:
    phone = new_phone()
    issued = await terminal_stub.IssueStewardCode(
        pb.IssueStewardCodeRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
        metadata=bearer(steward.api_key),
    )
    assert len(issued.code) == 6
    membership = await identify(terminal_stub, business.cash_desk.api_key, steward_code=issued.code)
    assert membership.phone == phone
    reused = await refusal(terminal_stub, business.cash_desk.api_key, steward_code=issued.code)
    assert reused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(reused) == "STEWARD_CODE_USED"


async def test_guessing_steward_codes_is_refused_past_the_limit_per_terminal(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    business: Tenant,
    steward: TerminalAccess,
) -> None:
    """A cash desk that tried 10 codes that redeem nothing is refused even the live code,
    with a RetryInfo; another cash desk of the business redeems it."""
    issued = await terminal_stub.IssueStewardCode(
        pb.IssueStewardCodeRequest(identifier=common_pb2.CustomerIdentifier(phone=new_phone())),
        metadata=bearer(steward.api_key),
    )
    guesses = [f"{n:06d}" for n in range(12) if f"{n:06d}" != issued.code][:10]
    wrong = await asyncio.gather(
        *(refusal(terminal_stub, business.cash_desk.api_key, steward_code=g) for g in guesses)
    )
    assert {error_reason(each) for each in wrong} == {"STEWARD_CODE_NOT_FOUND"}
    limited = await refusal(terminal_stub, business.cash_desk.api_key, steward_code=issued.code)
    assert limited.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(limited) == "STEWARD_CODE_RATE_LIMITED"
    assert 0 < retry_delay_seconds(limited) <= Settings().steward_code_guesses_window_seconds
    other_desk = await new_terminal(channel, business, pb.TERMINAL_KIND_CASH_DESK)
    membership = await identify(terminal_stub, other_desk.api_key, steward_code=issued.code)
    assert membership.customer_id > 0


async def test_a_burst_of_steward_code_guesses_looks_up_no_more_than_the_limit(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    answers = await asyncio.gather(
        *(
            refusal(terminal_stub, business.cash_desk.api_key, steward_code=f"{n:06d}")
            for n in range(200)
        )
    )
    reasons = [error_reason(each) for each in answers]
    assert reasons.count("STEWARD_CODE_NOT_FOUND") == Settings().steward_code_guesses_max
    assert reasons.count("STEWARD_CODE_RATE_LIMITED") == 200 - Settings().steward_code_guesses_max


async def test_an_expired_steward_code_has_its_own_reason(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, steward: TerminalAccess
) -> None:
    issued = await terminal_stub.IssueStewardCode(
        pb.IssueStewardCodeRequest(identifier=common_pb2.CustomerIdentifier(phone=new_phone())),
        metadata=bearer(steward.api_key),
    )
    await asyncio.sleep(steward_code_lifetime_seconds + 0.2)
    expired = await refusal(terminal_stub, business.cash_desk.api_key, steward_code=issued.code)
    assert expired.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(expired) == "STEWARD_CODE_EXPIRED"


async def test_an_unknown_steward_code_is_not_found_and_a_malformed_one_is_bad_input(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    other = await refusal(terminal_stub, business.cash_desk.api_key, steward_code="000000")
    assert other.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(other) == "STEWARD_CODE_NOT_FOUND"
    malformed = await refusal(terminal_stub, business.cash_desk.api_key, steward_code="12ab")
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "identifier.steward_code" in field_violations(malformed)


async def test_only_steward_terminals_issue_steward_codes(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.IssueStewardCode(
            pb.IssueStewardCodeRequest(identifier=common_pb2.CustomerIdentifier(phone=new_phone())),
            metadata=bearer(business.cash_desk.api_key),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(refused.value) == "TERMINAL_NOT_STEWARD"


async def test_the_app_qr_token_identifies_the_customer_in_any_business(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    import time

    customer_id = (await enrol(channel, business)).customer_id
    key = credentials.derive_key(await database.load_instance_secret(pool), "app-token")
    token = credentials.issue_app_token(key, customer_id, time.time(), 30)
    membership = await identify(terminal_stub, business.cash_desk.api_key, app_token=token)
    assert membership.customer_id == customer_id
    elsewhere = await make_business_through_api(channel, pool)
    joined = await identify(terminal_stub, elsewhere.cash_desk.api_key, app_token=token)
    assert joined.customer_id == customer_id and joined.newly_enrolled
    stale = credentials.issue_app_token(key, customer_id, time.time() - 120, 30)
    expired = await refusal(terminal_stub, business.cash_desk.api_key, app_token=stale)
    assert expired.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(expired) == "APP_TOKEN_EXPIRED"
    forged = await refusal(terminal_stub, business.cash_desk.api_key, app_token=token[:-3] + "abc")
    assert forged.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(forged) == "APP_TOKEN_INVALID"


async def test_a_blacklisted_customer_is_identified_and_marked(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    customer = await enrol(channel, business)
    phone = customer.phone
    await blacklist(channel, business, customer.customer_id)
    membership = await identify(terminal_stub, business.cash_desk.api_key, phone=phone)
    assert membership.access_type == common_pb2.ACCESS_TYPE_BLACKLISTED


async def test_a_terminal_never_sees_another_business_customers_pockets(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    customer = await enrol(channel, business)
    phone, customer_id = customer.phone, customer.customer_id
    await credit_points(channel, business, customer_id, 99_900)
    await add_card(terminal_stub, business, customer_id, "ISOLATED1")
    other = await make_business_through_api(channel, pool)
    unknown_card = await refusal(terminal_stub, other.cash_desk.api_key, card_number="ISOLATED1")
    assert unknown_card.code() == grpc.StatusCode.NOT_FOUND
    theirs = await identify(terminal_stub, other.cash_desk.api_key, phone=phone)
    assert [p.balance for p in theirs.pockets] == [0]
    mine = await identify(terminal_stub, business.cash_desk.api_key, phone=phone)
    assert [p.balance for p in mine.pockets] == [99_900]


@pytest.mark.parametrize(
    ("identifier", "field", "reason"),
    [
        ({"phone": "12"}, "identifier.phone", "PHONE_INVALID"),
        ({"phone": "+38050abc"}, "identifier.phone", "PHONE_INVALID"),
        ({"card_number": "#!"}, "identifier.card_number", "CARD_NUMBER_INVALID"),
        ({"card_qr": "a\x01b"}, "identifier.card_qr", "CARD_QR_INVALID"),
        ({}, "identifier", "IDENTIFIER_MISSING"),
    ],
)
async def test_malformed_identifiers_are_invalid_argument_with_the_field_path(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    identifier: dict[str, str],
    field: str,
    reason: str,
) -> None:
    before = await business_customer_count(pool, business)
    error = await refusal(terminal_stub, business.cash_desk.api_key, **identifier)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == reason
    assert field in field_violations(error)
    assert await business_customer_count(pool, business) == before


async def business_customer_count(pool: asyncpg.Pool, business: Tenant) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM memberships WHERE business_id = $1", business.business_id
    )
    return count


async def test_an_unknown_card_is_not_found(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    error = await refusal(terminal_stub, business.cash_desk.api_key, card_number="NOSUCHCARD")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "CUSTOMER_NOT_FOUND"
