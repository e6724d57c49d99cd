"""Operations on one customer from the control panel, each through a terminal, once per
key, and what a terminal sees of the customer right after."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from support import Tenant, bearer, error_reason, field_violations, found_business, new_phone

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import catalogue_pb2, customers_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> AdminServiceAsyncStub:
    return AdminServiceStub(channel)


async def member(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant, phone: str
) -> common_pb2.Membership:
    answer = await terminal_stub.IdentifyCustomer(
        pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
        metadata=bearer(business.cash_desk.api_key),
    )
    return answer.membership


def operation(
    business: Tenant, customer_id: int, key: str, **kind: object
) -> admin.ApplyCustomerOperationRequest:
    return admin.ApplyCustomerOperationRequest(
        customer_id=customer_id,
        terminal_id=business.cash_desk.terminal_id,
        idempotency_key=key,
        **kind,  # type: ignore[arg-type]
    )


async def test_points_credited_show_at_the_till_at_once_and_a_retry_credits_nothing_more(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    customer = await member(terminal_stub, business, phone)
    key = bearer(business.administrator_api_key)
    credit = operation(
        business, customer.customer_id, "welcome-1",
        credit_points=customers_pb2.PointsCreditOperation(points_hundredths=12_500),
    )  # fmt: skip
    first = await stub.ApplyCustomerOperation(credit, metadata=key)
    assert first.transaction.check_number == "~admin:welcome-1"
    assert first.transaction.terminal_id == business.cash_desk.terminal_id
    assert (await member(terminal_stub, business, phone)).pockets[0].balance == 12_500
    again = await stub.ApplyCustomerOperation(credit, metadata=key)
    assert again.transaction.transaction_id == first.transaction.transaction_id
    assert (await member(terminal_stub, business, phone)).pockets[0].balance == 12_500
    other = operation(
        business, customer.customer_id, "welcome-1",
        debit_points=customers_pb2.PointsDebitOperation(points_hundredths=1),
    )  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await stub.ApplyCustomerOperation(other, metadata=key)
    assert error_reason(reused.value) == "IDEMPOTENCY_KEY_REUSED"
    debit = operation(
        business, customer.customer_id, "correction-1",
        debit_points=customers_pb2.PointsDebitOperation(points_hundredths=2_500),
    )  # fmt: skip
    await stub.ApplyCustomerOperation(debit, metadata=key)
    assert (await member(terminal_stub, business, phone)).pockets[0].balance == 10_000
    listed = await stub.ListCustomerTransactions(
        admin.ListCustomerTransactionsRequest(customer_id=customer.customer_id), metadata=key
    )
    assert [each.check_number for each in listed.transactions] == [
        "~admin:correction-1",
        "~admin:welcome-1",
    ]


async def test_special_points_expire_after_their_period_and_show_as_a_lot(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    customer = await member(terminal_stub, business, phone)
    key = bearer(business.administrator_api_key)
    answer = await stub.ApplyCustomerOperation(
        operation(
            business, customer.customer_id, "birthday",
            credit_points=customers_pb2.PointsCreditOperation(
                points_hundredths=3_000, valid_days=30
            ),
        ),
        metadata=key,
    )  # fmt: skip
    assert answer.HasField("expire_time")
    seen = (await member(terminal_stub, business, phone)).pockets[0]
    assert (seen.balance, seen.expiring) == (3_000, 3_000)
    card = await stub.GetCustomer(
        admin.GetCustomerRequest(customer_id=customer.customer_id), metadata=key
    )
    (lot,) = card.card.points_lots
    assert lot.remaining_hundredths == 3_000
    assert lot.expire_time == answer.expire_time


async def test_a_debit_beyond_what_is_available_is_refused_and_stays_the_key_s_answer(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    customer = await member(terminal_stub, business, phone)
    key = bearer(business.administrator_api_key)
    debit = operation(
        business, customer.customer_id, "too-much",
        debit_points=customers_pb2.PointsDebitOperation(points_hundredths=100),
    )  # fmt: skip
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ApplyCustomerOperation(debit, metadata=key)
        assert error_reason(refused.value) == "INSUFFICIENT_POINTS"
    assert (await member(terminal_stub, business, phone)).pockets[0].balance == 0


async def test_an_account_replenished_and_debited_moves_at_the_till(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    phone = new_phone()
    customer = await member(terminal_stub, business, phone)
    key = bearer(business.administrator_api_key)
    wallet = business.money_account_type_id
    await stub.ApplyCustomerOperation(
        operation(
            business, customer.customer_id, "top-up",
            credit_account=customers_pb2.AccountCreditOperation(
                account_type_id=wallet, amount=50_000
            ),
        ),
        metadata=key,
    )  # fmt: skip
    await stub.ApplyCustomerOperation(
        operation(
            business, customer.customer_id, "fee",
            debit_account=customers_pb2.AccountDebitOperation(
                account_type_id=wallet, amount=1_000
            ),
        ),
        metadata=key,
    )  # fmt: skip
    pockets = {
        p.account_type_id: p.balance for p in (await member(terminal_stub, business, phone)).pockets
    }
    assert pockets[wallet] == 49_000


async def test_coupons_are_issued_until_the_series_cap_and_land_in_the_wallet(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    customer = await member(terminal_stub, business, new_phone())
    key = bearer(business.administrator_api_key)
    series = await stub.CreateCouponSeries(
        catalogue_pb2.CreateCouponSeriesRequest(
            coupon_series=catalogue_pb2.CouponSeries(
                name="Free cake", kind=catalogue_pb2.COUPON_KIND_FIXED, value=5_000,
                coupons_max=1, coupon_lifetime_days=10,
            )
        ),
        metadata=key,
    )  # fmt: skip
    issued = await stub.ApplyCustomerOperation(
        operation(
            business, customer.customer_id, "cake-1",
            issue_coupon=customers_pb2.CouponIssueOperation(
                series_id=series.coupon_series.series_id
            ),
        ),
        metadata=key,
    )  # fmt: skip
    assert len(issued.coupon_code) == 12
    card = await stub.GetCustomer(
        admin.GetCustomerRequest(customer_id=customer.customer_id), metadata=key
    )
    (coupon,) = card.card.coupons
    assert coupon.code == issued.coupon_code and coupon.HasField("expire_time")
    # The till takes it at once: 50.00 off the check.
    calculated = await terminal_stub.CalculateCheck(
        pb.CalculateCheckRequest(
            check=pb.Check(
                currency="UAH",
                lines=[
                    pb.CheckLine(
                        position=1, product_code="CAKE", price_minor_units=9_000,
                        quantity_thousandths=1000, amount_minor_units=9_000,
                    )
                ],
            ),
            identifier=common_pb2.CustomerIdentifier(phone=customer.phone),
            redemption=pb.Redemption(coupon_codes=[issued.coupon_code]),
        ),
        metadata=bearer(business.cash_desk.api_key),
    )  # fmt: skip
    assert calculated.receipt.to_pay_minor_units == 4_000
    with pytest.raises(grpc.aio.AioRpcError) as exhausted:
        await stub.ApplyCustomerOperation(
            operation(
                business, customer.customer_id, "cake-2",
                issue_coupon=customers_pb2.CouponIssueOperation(
                series_id=series.coupon_series.series_id
            ),
            ),
            metadata=key,
        )  # fmt: skip
    assert error_reason(exhausted.value) == "COUPON_SERIES_EXHAUSTED"


async def test_bad_operations_name_the_field_inside_the_request(
    stub: AdminServiceAsyncStub, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    customer = await member(terminal_stub, business, new_phone())
    key = bearer(business.administrator_api_key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyCustomerOperation(
            operation(business, customer.customer_id, "none"), metadata=key
        )
    assert "operation" in field_violations(refused.value)
    bad = customers_pb2.PointsCreditOperation(points_hundredths=-5, valid_days=9_999)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyCustomerOperation(
            operation(business, customer.customer_id, "bad key!", credit_points=bad), metadata=key
        )
    assert set(field_violations(refused.value)) == {"idempotency_key"}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyCustomerOperation(
            operation(business, customer.customer_id, "bad", credit_points=bad), metadata=key
        )
    assert set(field_violations(refused.value)) == {
        "credit_points.points_hundredths",
        "credit_points.valid_days",
    }


async def test_another_business_s_terminal_or_customer_is_not_found(
    stub: AdminServiceAsyncStub,
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    customer = await member(terminal_stub, business, new_phone())
    other = bearer((await found_business(channel, pool)).owner_api_key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyCustomerOperation(
            operation(
                business, customer.customer_id, "stranger",
                credit_points=customers_pb2.PointsCreditOperation(points_hundredths=100),
            ),
            metadata=other,
        )  # fmt: skip
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
