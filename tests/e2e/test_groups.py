"""Groups answer as one-by-one calls would, over gRPC on a real server.

Checks from different calls share work: coalesced unary calls, the checks of one stream
message, the operations of one writer batch. A group shares work, never semantics: one
bad check fails alone, checks of one customer are applied in the order given (each
seeing what the previous one did), and every answer shows the membership after its own
transaction.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
from admin_support import customer_with_points, five_percent_back, set_program
from google.protobuf import timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import (
    Tenant,
    TerminalAccess,
    assert_audit_is_clean,
    bearer,
    error_reason,
    field_violations,
    new_phone,
)
from test_transactions import coffee_card, coffees, points_of, purchases_counted, sale

from purse.config import Settings
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

far_future = timestamp_pb2.Timestamp(seconds=253_402_300_799)  # 9999-12-31T23:59:59Z


async def stream_answers(
    channel: grpc.aio.Channel, business: Tenant, messages: AsyncIterator[pb.ProcessChecksRequest]
) -> list[pb.ProcessChecksResponse]:
    """Every answer of one ProcessChecks stream of the cash desk."""
    stub = TerminalServiceStub(channel)
    return [
        answer
        async for answer in stub.ProcessChecks(
            messages, metadata=bearer(business.cash_desk.api_key), timeout=30
        )
    ]


def free_cups(answer: pb.ProcessCheckResponse) -> int:
    return sum(progress.rewards for progress in answer.transaction.receipt.achievements)


def overflowing(number: str) -> pb.ProcessCheckRequest:
    """Two lines whose amounts each nearly fill an int64 and together overflow it."""
    request = sale(number)
    del request.check.lines[:]
    for position in (1, 2):
        request.check.lines.add(
            position=position, product_code="GOLD", price_minor_units=10**13,
            quantity_thousandths=9 * 10**8, amount_minor_units=9 * 10**18,
        )  # fmt: skip
    return request


async def process_or_error(
    stub: TerminalServiceAsyncStub, request: pb.ProcessCheckRequest, key: str
) -> pb.ProcessCheckResponse | grpc.aio.AioRpcError:
    try:
        return await stub.ProcessCheck(request, metadata=bearer(key), timeout=30)
    except grpc.aio.AioRpcError as error:
        return error


async def test_a_sale_time_out_of_range_among_concurrent_calls_fails_alone(
    terminal_stub: TerminalServiceAsyncStub,
    pool: asyncpg.Pool,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, rules=(five_percent_back,))
    phones = [new_phone() for _ in range(40)]
    poison = sale("POISON-TIME", phones[0])
    poison.sale_time.CopyFrom(far_future)
    key = business.cash_desk.api_key
    answers = await asyncio.gather(
        *(process_or_error(terminal_stub, sale(f"G-{n}", phone), key) for n, phone in
          enumerate(phones)),
        process_or_error(terminal_stub, poison, key),
    )  # fmt: skip
    *good, refused = answers
    assert all(isinstance(answer, pb.ProcessCheckResponse) for answer in good), good
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sale_time" in field_violations(refused)
    assert await points_of(pool, business, phones[1]) == (500, 0)


async def test_line_totals_that_overflow_fail_alone_among_concurrent_calls(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    steward: TerminalAccess,
    infrastructure: Settings,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, rules=(five_percent_back,))
    phones = [new_phone() for _ in range(30)]
    good_key, poison_key = business.cash_desk.api_key, steward.api_key
    answers = await asyncio.gather(
        *(process_or_error(terminal_stub, sale(f"O-{n}", phone), good_key)
          for n, phone in enumerate(phones)),
        *(process_or_error(terminal_stub, overflowing(f"POISON-{n}"), poison_key)
          for n in range(3)),
    )  # fmt: skip
    good, refused = answers[: len(phones)], answers[len(phones) :]
    assert all(isinstance(answer, pb.ProcessCheckResponse) for answer in good), good
    for error in refused:
        assert isinstance(error, grpc.aio.AioRpcError)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(error)) & {
            "check.lines[0].amount_minor_units", "check.sum_minor_units"
        }  # fmt: skip
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def test_a_bad_timestamp_in_a_stream_message_fails_that_check_alone(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> None:
    await set_program(channel, business, rules=(five_percent_back,))
    phones = [new_phone() for _ in range(6)]

    async def messages() -> AsyncIterator[pb.ProcessChecksRequest]:
        for round_number in range(2):
            checks = [sale(f"T-{round_number}-{n}", phone) for n, phone in enumerate(phones)]
            checks[2].sale_time.CopyFrom(far_future)
            checks[4].CopyFrom(overflowing(f"T-{round_number}-4"))
            yield pb.ProcessChecksRequest(checks=checks)

    answers = await stream_answers(channel, business, messages())
    assert len(answers) == 2
    for answer in answers:
        outcomes = [result.WhichOneof("outcome") for result in answer.results]
        assert outcomes == ["processed", "processed", "error", "processed", "error", "processed"]
        assert "sale_time" in answer.results[2].error.field_violations
        assert answer.results[2].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert answer.results[4].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert await points_of(pool, business, phones[0]) == (1_000, 0)


async def test_sixteen_coffees_in_two_stream_messages_earn_what_one_by_one_earns(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> None:
    await set_program(channel, business)
    card = await coffee_card(channel, business, every=7)
    phone = new_phone()

    async def messages() -> AsyncIterator[pb.ProcessChecksRequest]:
        for half in range(2):
            yield pb.ProcessChecksRequest(
                checks=[coffees(f"C16-{half * 8 + n}", phone, 1) for n in range(8)]
            )

    results = [
        result
        for answer in await stream_answers(channel, business, messages())
        for result in answer.results
    ]
    assert [result.WhichOneof("outcome") for result in results] == ["processed"] * 16
    free = [n + 1 for n, result in enumerate(results) if free_cups(result.processed)]
    assert free == [7, 14]
    assert await purchases_counted(pool, business, phone, card) == 2


async def test_sixteen_coffees_as_concurrent_calls_earn_exactly_two_free_and_none_is_refused(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await set_program(channel, business)
    card = await coffee_card(channel, business, every=7)
    phone = new_phone()
    key = business.cash_desk.api_key
    answers = await asyncio.gather(
        *(process_or_error(terminal_stub, coffees(f"U16-{n}", phone, 1), key) for n in range(16))
    )
    refused = [answer for answer in answers if isinstance(answer, grpc.aio.AioRpcError)]
    assert refused == []
    assert (
        sum(free_cups(answer) for answer in answers if isinstance(answer, pb.ProcessCheckResponse))
        == 2
    )
    assert await purchases_counted(pool, business, phone, card) == 2


async def test_the_answer_shows_the_membership_after_the_sale(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, rules=(five_percent_back,))
    phone = new_phone()
    auth = bearer(business.cash_desk.api_key)
    first = await terminal_stub.ProcessCheck(sale("M-1", phone, amount=4_000), metadata=auth)
    assert (first.membership.sales_count, first.membership.sales_sum_minor_units) == (1, 4_000)
    assert first.membership.HasField("last_visit_time")
    second = await terminal_stub.ProcessCheck(sale("M-2", phone, amount=6_000), metadata=auth)
    assert (second.membership.sales_count, second.membership.sales_sum_minor_units) == (2, 10_000)
    again = await terminal_stub.ProcessCheck(sale("M-1", phone, amount=4_000), metadata=auth)
    assert again.membership.sales_count == 2  # a retry shows the membership as it is now


async def test_each_check_of_a_stream_message_shows_its_own_membership_and_notice(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> None:
    await set_program(channel, business, rules=(five_percent_back,))
    phone = new_phone()

    async def messages() -> AsyncIterator[pb.ProcessChecksRequest]:
        yield pb.ProcessChecksRequest(checks=[sale(f"N-{n}", phone) for n in range(3)])

    answers = await stream_answers(channel, business, messages())
    results = [result.processed for result in answers[0].results]
    assert [result.membership.sales_count for result in results] == [1, 2, 3]
    assert [result.membership.pockets[0].balance for result in results] == [500, 1_000, 1_500]
    bodies = await pool.fetch(
        "SELECT o.body FROM outbox_messages o JOIN transactions t USING (business_id,"
        " transaction_id) WHERE o.business_id = $1 AND o.purpose = 'transaction'"
        " AND t.check_number = ANY($2::text[]) ORDER BY t.check_number",
        business.business_id, ["N-0", "N-1", "N-2"],
    )  # fmt: skip
    assert len(bodies) == 3
    for row, balance in zip(bodies, ("5.00", "10.00", "15.00"), strict=True):
        assert f"balance {balance}" in row["body"], row["body"]


async def test_an_offline_sale_sets_the_last_visit_to_its_sale_time(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business)
    phone = new_phone()
    auth = bearer(business.cash_desk.api_key)
    when = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    offline = sale("OFF-1", phone)
    offline.sale_time.FromDatetime(when)
    answer = await terminal_stub.ProcessCheck(offline, metadata=auth)
    assert answer.membership.last_visit_time.ToDatetime(tzinfo=UTC) == when
    older = sale("OFF-0", phone)
    older.sale_time.FromDatetime(when - timedelta(days=1))
    answer = await terminal_stub.ProcessCheck(older, metadata=auth)
    assert answer.membership.last_visit_time.ToDatetime(tzinfo=UTC) == when  # never backwards


# The coffee card of each business the property test ran on (one per business, not per
# example: every card counts every cup).
_cards: dict[int, int] = {}
# A check of the property test: (cups of coffee, points to redeem in hundredths)
check_shapes = st.tuples(st.integers(1, 3), st.sampled_from([0, 0, 500, 2_000]))


@settings(
    max_examples=8, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(
    checks=st.lists(check_shapes, min_size=2, max_size=12),
    cuts=st.lists(st.integers(1, 11), max_size=4),
)
async def test_any_grouping_of_checks_ends_where_one_by_one_ends(
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    checks: list[tuple[int, int]],
    cuts: list[int],
) -> None:
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    card = _cards.get(business.business_id) or await coffee_card(channel, business, every=3)
    _cards[business.business_id] = card
    alone = await customer_with_points(channel, business, 3_000)
    grouped = await customer_with_points(channel, business, 3_000)
    stub = TerminalServiceStub(channel)

    def requests(phone: str) -> list[pb.ProcessCheckRequest]:
        made = []
        for n, (cups, points) in enumerate(checks):
            request = coffees(f"{phone}-{n}", phone, cups)
            request.redemption.points_hundredths = points
            made.append(request)
        return made

    key = business.cash_desk.api_key
    one_by_one = [await process_or_error(stub, request, key) for request in requests(alone)]
    bounds = sorted({0, len(checks), *(cut for cut in cuts if cut < len(checks))})
    grouped_requests = requests(grouped)

    async def messages() -> AsyncIterator[pb.ProcessChecksRequest]:
        for start, end in itertools.pairwise(bounds):
            yield pb.ProcessChecksRequest(checks=grouped_requests[start:end])

    results = [
        result
        for answer in await stream_answers(channel, business, messages())
        for result in answer.results
    ]
    assert [_shape(answer) for answer in one_by_one] == [_stream_shape(r) for r in results]
    assert await points_of(pool, business, alone) == await points_of(pool, business, grouped)
    assert await purchases_counted(pool, business, alone, card) == await purchases_counted(
        pool, business, grouped, card
    )


def _shape(answer: pb.ProcessCheckResponse | grpc.aio.AioRpcError) -> tuple[object, ...]:
    if isinstance(answer, grpc.aio.AioRpcError):
        return ("error", answer.code().value[0], error_reason(answer))
    return _receipt_shape(answer)


def _stream_shape(result: pb.CheckResult) -> tuple[object, ...]:
    if result.WhichOneof("outcome") == "error":
        return ("error", result.error.code, result.error.reason)
    return _receipt_shape(result.processed)


def _receipt_shape(answer: pb.ProcessCheckResponse) -> tuple[object, ...]:
    receipt = answer.transaction.receipt
    return (
        "processed", answer.transaction.status, receipt.to_pay_minor_units,
        receipt.points_redeemed_hundredths, receipt.points_accrued_hundredths,
        free_cups(answer), tuple(pocket.balance for pocket in answer.membership.pockets),
    )  # fmt: skip


async def test_a_nul_character_in_one_streamed_check_fails_that_check_alone(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> None:
    await set_program(channel, business, rules=(five_percent_back,))
    phone = new_phone()
    checks = [sale(f"NUL-{n}", phone) for n in range(3)]
    checks[1].check.lines[0].product_code = "GO\x00ODS"

    async def messages() -> AsyncIterator[pb.ProcessChecksRequest]:
        yield pb.ProcessChecksRequest(checks=checks)

    answers = await stream_answers(channel, business, messages())
    results = answers[0].results
    assert [result.WhichOneof("outcome") for result in results] == [
        "processed", "error", "processed"
    ]  # fmt: skip
    assert results[1].error.reason == "STRING_HAS_NUL"
    assert "check.lines[0].product_code" in results[1].error.field_violations
    assert await points_of(pool, business, phone) == (1_000, 0)
