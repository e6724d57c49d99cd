"""CalculateCheck over gRPC: explained receipts, program rules set through AdminService,
every kind of pocket, and bad input — with nothing ever changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import (
    blacklist,
    credit_account,
    credit_points,
    customer_with_points,
    enrol,
    new_series,
    percent_accrual,
    set_rules,
    special_points_lot,
)
from google.protobuf import timestamp_pb2
from support import (
    Tenant,
    bearer,
    error_reason,
    field_violations,
    make_business_through_api,
    new_phone,
    operator_key,
)

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import customers_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.demo import create_demo, demo_customer_phone
from purse.store.postgres.provisioning import Provisioning
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

# Monday 08:30 in Kyiv: inside the demo's morning-coffee window.
monday_morning = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def line(position: int, code: str, price: int, quantity: int = 1000, **extra: str) -> pb.CheckLine:
    return pb.CheckLine(
        position=position,
        product_code=code,
        price_minor_units=price,
        quantity_thousandths=quantity,
        amount_minor_units=(price * quantity + 500) // 1000,
        **extra,
    )


def request(
    *lines: pb.CheckLine,
    phone: str = "",
    currency: str = "UAH",
    sale_time: datetime | None = None,
    **redemption: object,
) -> pb.CalculateCheckRequest:
    message = pb.CalculateCheckRequest(
        check=pb.Check(currency=currency, lines=lines),
        redemption=pb.Redemption(**redemption),  # type: ignore[arg-type]
        explain=True,
    )
    if phone:
        message.identifier.CopyFrom(common_pb2.CustomerIdentifier(phone=phone))
    if sale_time is not None:
        message.sale_time.CopyFrom(timestamp_pb2.Timestamp(seconds=int(sale_time.timestamp())))
    return message


async def calculate(
    stub: TerminalServiceAsyncStub, business: Tenant, message: pb.CalculateCheckRequest
) -> pb.CalculateCheckResponse:
    return await stub.CalculateCheck(message, metadata=bearer(business.cash_desk.api_key))


async def refusal(
    stub: TerminalServiceAsyncStub, business: Tenant, message: pb.CalculateCheckRequest
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await calculate(stub, business, message)
    return refused.value


async def test_the_demo_business_answers_with_an_explained_receipt(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, pool: asyncpg.Pool
) -> None:
    demo = await create_demo(channel, await operator_key(pool))
    answer = await terminal_stub.CalculateCheck(
        request(
            line(1, "CAPPUCCINO", 6500, 2000),
            line(2, "CROISSANT", 5500),
            line(3, "ESPRESSO", 4500),
            phone=demo_customer_phone,
            sale_time=monday_morning,
            points_hundredths=5000,
            coupon_codes=[demo.coupon_code],
        ),
        metadata=bearer(demo.cash_desk_api_key),
    )
    receipt = answer.receipt
    by_title = {item.title: item for item in receipt.adjustments}
    assert by_title["Morning coffee -15%"].amount_minor_units == 1950 + 675
    assert by_title["Bakery -10%"].lines[0].position == 2
    coupon = next(a for a in receipt.adjustments if a.kind == pb.ADJUSTMENT_KIND_COUPON)
    assert (coupon.code, coupon.amount_minor_units) == (demo.coupon_code, 4500 - 675)
    assert receipt.points_redeemed_hundredths == 5000
    assert receipt.paid_with_points_minor_units == 5000
    assert receipt.sum_minor_units == 13000 + 5500 + 4500
    assert receipt.sum_minor_units == (
        receipt.discount_minor_units
        + receipt.paid_with_points_minor_units
        + receipt.paid_with_accounts_minor_units
        + receipt.to_pay_minor_units
    )
    accruals = [a for a in receipt.adjustments if a.kind == pb.ADJUSTMENT_KIND_POINTS_ACCRUAL]
    assert {accrual.rule_id for accrual in accruals} == {1, 4}  # the check is over 200.00
    assert sum(a.pocket_amount for a in accruals) == receipt.points_accrued_hundredths
    assert not receipt.confirmation_required
    assert answer.membership.phone == demo_customer_phone
    small = await terminal_stub.CalculateCheck(
        request(line(1, "CROISSANT", 5500), phone=demo_customer_phone, sale_time=monday_morning),
        metadata=bearer(demo.cash_desk_api_key),
    )
    reasons = {item.rule_id: item for item in small.receipt.not_applied}
    assert reasons[4].reason == "CHECK_SUM_BELOW_MINIMUM"
    assert "200.00" in reasons[4].description


async def test_calculating_changes_nothing(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    phone = await customer_with_points(channel, business, 10_000)

    async def snapshot() -> list[tuple[object, ...]]:
        rows = await pool.fetch(
            "SELECT balance, held FROM pockets WHERE business_id = $1 ORDER BY pocket_id",
            business.business_id,
        )
        count = await pool.fetchval(
            "SELECT count(*) FROM transactions WHERE business_id = $1", business.business_id
        )
        return [tuple(row) for row in rows] + [(count,)]

    before = await snapshot()
    answer = await calculate(
        terminal_stub,
        business,
        request(line(1, "MILK", 4000), phone=phone, points_hundredths=2000),
    )
    assert answer.receipt.points_redeemed_hundredths == 2000
    assert await snapshot() == before


async def test_rules_set_through_the_admin_service_apply_to_the_next_check(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    phone = new_phone()
    first = await set_rules(channel, business, admin.ProgramRules(rules=[percent_accrual(1, 500)]))
    answer = await calculate(
        terminal_stub, business, request(line(1, "BREAD", 10_000), phone=phone)
    )
    assert answer.receipt.points_accrued_hundredths == 500
    second = await set_rules(
        channel, business, admin.ProgramRules(rules=[percent_accrual(1, 1000)])
    )
    assert second == first + 1
    answer = await calculate(
        terminal_stub, business, request(line(1, "BREAD", 10_000), phone=phone)
    )
    assert answer.receipt.points_accrued_hundredths == 1000
    stored = await AdminServiceStub(channel).GetProgramRules(
        admin.GetProgramRulesRequest(program_id=business.program_id),
        metadata=bearer(business.administrator_api_key),
    )
    assert stored.rules_version == second
    assert [rule.value for rule in stored.rules.rules] == [1000]
    assert stored.rules.point_value_minor_units_per_point == 100
    assert stored.rules.hold_seconds == 600
    assert stored.rules.cancel_completed_sales


async def test_invalid_rules_are_refused_with_field_paths_and_change_nothing(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    version = await set_rules(
        channel, business, admin.ProgramRules(rules=[percent_accrual(1, 100)])
    )
    bad = admin.ProgramRules(
        rules=[
            percent_accrual(1, 100, days_of_week=[9]),
            admin.Rule(rule_id=2, title="no kind", value=5),
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await set_rules(channel, business, bad)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rules.rules[1].kind" in field_violations(refused.value)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await set_rules(
            channel, business, admin.ProgramRules(rules=[percent_accrual(1, 100, days_of_week=[9])])
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any("days_of_week" in path for path in field_violations(refused.value))
    stored = await AdminServiceStub(channel).GetProgramRules(
        admin.GetProgramRulesRequest(program_id=business.program_id),
        metadata=bearer(business.administrator_api_key),
    )
    assert stored.rules_version == version


async def test_an_administrator_sees_only_the_programs_of_their_business(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant
) -> None:
    other = await make_business_through_api(channel, pool)
    stub = AdminServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetProgramRules(
            admin.GetProgramRulesRequest(program_id=other.program_id),
            metadata=bearer(business.administrator_api_key),
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetProgramRules(
            admin.GetProgramRulesRequest(program_id=business.program_id),
            metadata=bearer(business.cash_desk.api_key),
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_products_account_pays_for_its_products_and_asks_for_a_pin_above_its_limit(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    customer = await enrol(channel, business)
    phone = customer.phone
    await credit_account(
        channel, business, customer.customer_id, business.products_account_type_id, 30_000
    )
    answer = await calculate(
        terminal_stub,
        business,
        request(
            line(1, "A95", 5200, 40_500),
            line(2, "COFFEE", 3000),
            phone=phone,
            account_payments=[
                pb.AccountPayment(account_type_id=business.products_account_type_id, maximum=True)
            ],
        ),
    )
    receipt = answer.receipt
    payment = next(a for a in receipt.adjustments if a.kind == pb.ADJUSTMENT_KIND_ACCOUNT_PAYMENT)
    assert payment.pocket_amount == 30_000
    assert payment.amount_minor_units == 5200 * 30
    assert [share.position for share in payment.lines] == [1]
    assert receipt.confirmation_required
    assert receipt.confirmation_reasons[0].limit == 20_000
    assert receipt.confirmation_reasons[0].account_type_id == business.products_account_type_id


async def test_spending_takes_the_soonest_expiring_lot_first(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    customer = await enrol(channel, business)
    phone, customer_id = customer.phone, customer.customer_id
    await credit_points(channel, business, customer_id, 10_000)
    now = datetime.now(UTC)
    later = await special_points_lot(
        channel, business, customer_id, 3_000, now + timedelta(days=30)
    )
    sooner = await special_points_lot(
        channel, business, customer_id, 2_000, now + timedelta(days=2)
    )
    # A lot already expired but not yet swept: the API credits only lots still to expire.
    await Provisioning(pool).points_lot(
        business.business_id, customer_id, 4_000, now - timedelta(days=1)
    )
    answer = await calculate(
        terminal_stub,
        business,
        request(line(1, "TV", 1_000_000), phone=phone, points_hundredths=6_000),
    )
    assert [(lot.lot_id, lot.points_hundredths) for lot in answer.receipt.lots_taken] == [
        (sooner, 2_000),
        (later, 3_000),
        (0, 1_000),
    ]
    too_much = await refusal(
        terminal_stub,
        business,
        request(line(1, "TV", 1_000_000), phone=phone, points_hundredths=15_001),
    )
    assert too_much.code() in (
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_a_check_without_a_customer_gets_discounts_but_no_points(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    await set_rules(
        channel,
        business,
        admin.ProgramRules(
            rules=[
                percent_accrual(1, 500),
                admin.Rule(
                    rule_id=2,
                    title="-10%",
                    kind=admin.RULE_KIND_DISCOUNT,
                    scope=admin.RULE_SCOPE_LINE,
                    value_kind=admin.VALUE_KIND_PERCENT,
                    value=1000,
                ),
            ]
        ),
    )
    answer = await calculate(terminal_stub, business, request(line(1, "SOAP", 2000)))
    assert answer.receipt.discount_minor_units == 200
    assert answer.receipt.points_accrued_hundredths == 0
    assert not answer.HasField("membership")


async def test_a_blacklisted_customer_cannot_transact(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    customer = await enrol(channel, business)
    phone = customer.phone
    await blacklist(channel, business, customer.customer_id)
    error = await refusal(terminal_stub, business, request(line(1, "X", 100), phone=phone))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "CUSTOMER_BLACKLISTED"


async def test_another_customers_coupon_is_refused_with_its_field_path(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    business: Tenant,
) -> None:
    holder = (await enrol(channel, business)).customer_id
    series = await new_series(channel, business, name="-5%", value=500)
    code = f"C-{business.business_id}"
    await AdminServiceStub(channel).ApplyCustomerOperation(
        admin.ApplyCustomerOperationRequest(
            customer_id=holder, terminal_id=business.cash_desk.terminal_id, idempotency_key=code,
            issue_coupon=customers_pb2.CouponIssueOperation(series_id=series.series_id, code=code),
        ),
        metadata=bearer(business.administrator_api_key),
    )  # fmt: skip
    error = await refusal(
        terminal_stub,
        business,
        request(line(1, "X", 1000), phone=new_phone(), coupon_codes=[code]),
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "COUPON_NOT_USABLE"
    assert "redemption.coupon_codes[0]" in field_violations(error)


@pytest.mark.parametrize(
    ("lines", "currency", "field"),
    [
        ((), "UAH", "check.lines"),
        ((line(1, "X", 100, 0),), "UAH", "check.lines[0].quantity_thousandths"),
        ((line(1, "X", -100),), "UAH", "check.lines[0].price_minor_units"),
        (
            (
                pb.CheckLine(
                    position=1,
                    product_code="X",
                    price_minor_units=100,
                    quantity_thousandths=1000,
                    amount_minor_units=150,
                ),
            ),
            "UAH",
            "check.lines[0].amount_minor_units",
        ),
        ((line(1, "X", 100),), "XXX", "check.currency"),
        (tuple(line(n, "X", 100) for n in range(1, 1002)), "UAH", "check.lines"),
    ],
)
async def test_bad_checks_are_invalid_argument_with_the_field_path(
    terminal_stub: TerminalServiceAsyncStub,
    business: Tenant,
    lines: tuple[pb.CheckLine, ...],
    currency: str,
    field: str,
) -> None:
    error = await refusal(terminal_stub, business, request(*lines, currency=currency))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(path.startswith(field) for path in field_violations(error)), field_violations(error)


async def test_a_stated_check_sum_must_match_the_lines(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    message = request(line(1, "X", 100), line(2, "Y", 200))
    message.check.sum_minor_units = 301
    error = await refusal(terminal_stub, business, message)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "check.sum_minor_units" in field_violations(error)


async def test_a_check_without_currency_or_amounts_gets_the_business_currency_and_rounded_amounts(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    message = pb.CalculateCheckRequest(
        check=pb.Check(
            lines=[
                pb.CheckLine(
                    position=1, product_code="X", price_minor_units=3333, quantity_thousandths=1500
                )
            ]
        )
    )
    answer = await calculate(terminal_stub, business, message)
    assert answer.receipt.currency == "UAH"
    assert answer.receipt.sum_minor_units == 5000  # 4,999.5 rounded half away from zero


async def test_wrong_program_rules_are_named_by_the_requests_field_names(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    rules = admin.ProgramRules(
        rules=[percent_accrual(1, 0, check_sum_min_minor_units=-1)],
        redemption_check_sum_min_minor_units=-5,
        points_redemption_limit_without_pin_hundredths=-1,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await set_rules(channel, business, rules)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(refused.value)) == {
        "rules.rules[0].value",
        "rules.rules[0].selector.check_sum_min_minor_units",
        "rules.redemption_check_sum_min_minor_units",
        "rules.points_redemption_limit_without_pin_hundredths",
    }
