"""A processed check's stored answer, over gRPC on a real server: a retry, a stream and
the history all give the receipt of the first answer byte for byte, also for a check
stored as a document before receipts were stored as bytes (migration 0013)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
import grpc
from admin_support import customer_with_points, five_percent_back, new_series, set_program
from support import Tenant, assert_audit_is_clean, bearer, legacy_document
from test_transactions import two_lines

from purse.api.grpc.terminal.stored_receipts import decode, encode
from purse.config import Settings
from purse.store.postgres import database
from purse.store.postgres.provisioning import Provisioning
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def check_with_a_coupon(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant, number: str
) -> pb.ProcessCheckRequest:
    """Two lines, one of three units; points redeemed, 5 % back, a coupon of 10 % off."""
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, 10_000)
    series = await new_series(channel, business, name="-10%", value=1000)
    code = f"{number}-{business.business_id}"
    await Provisioning(pool).coupon(business.business_id, series.series_id, code, None)
    request = two_lines(number, phone, redeem=2_000)
    request.redemption.coupon_codes.append(code)
    return request


async def streamed(
    channel: grpc.aio.Channel, business: Tenant, check: pb.ProcessCheckRequest
) -> pb.ProcessCheckResponse:
    async def messages() -> AsyncIterator[pb.ProcessChecksRequest]:
        yield pb.ProcessChecksRequest(checks=[check])

    answers = [
        answer
        async for answer in TerminalServiceStub(channel).ProcessChecks(
            messages(), metadata=bearer(business.cash_desk.api_key)
        )
    ]
    result = answers[0].results[0]
    assert result.WhichOneof("outcome") == "processed", result
    return result.processed


async def test_a_retried_check_gets_its_first_answer_byte_for_byte(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    check = await check_with_a_coupon(channel, pool, business, "B-1")
    auth = bearer(business.cash_desk.api_key)
    first = await terminal_stub.ProcessCheck(check, metadata=auth)
    kinds = {adjustment.kind for adjustment in first.transaction.receipt.adjustments}
    assert kinds == {
        pb.ADJUSTMENT_KIND_COUPON,
        pb.ADJUSTMENT_KIND_POINTS_PAYMENT,
        pb.ADJUSTMENT_KIND_POINTS_ACCRUAL,
    }
    again = await terminal_stub.ProcessCheck(check, metadata=auth)
    assert again.SerializeToString() == first.SerializeToString()
    by_stream = await streamed(channel, business, check)
    assert by_stream.SerializeToString() == first.SerializeToString()
    read = await terminal_stub.GetTransaction(
        pb.GetTransactionRequest(check_number="B-1"), metadata=auth
    )
    assert read.transaction.SerializeToString() == first.transaction.SerializeToString()


async def test_a_check_stored_as_a_document_is_answered_refunded_and_converted_as_before(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: Settings,
) -> None:
    check = await check_with_a_coupon(channel, pool, business, "D-1")
    auth = bearer(business.cash_desk.api_key)
    first = await terminal_stub.ProcessCheck(check, metadata=auth)
    transaction_id = first.transaction.transaction_id
    stored = await pool.fetchval(
        "SELECT receipt FROM transactions WHERE business_id = $1 AND transaction_id = $2",
        business.business_id,
        transaction_id,
    )
    await pool.execute(  # as sales were stored before migration 0013
        "UPDATE transactions SET receipt = NULL, receipt_document = $3"
        " WHERE business_id = $1 AND transaction_id = $2",
        business.business_id,
        transaction_id,
        legacy_document(decode(stored)),
    )
    again = await terminal_stub.ProcessCheck(check, metadata=auth)
    assert again.SerializeToString() == first.SerializeToString()
    refund = pb.RefundTransactionRequest(
        transaction_id=transaction_id,
        refund_number="RF-1",
        lines=[pb.RefundLine(position=1, quantity_thousandths=1_000)],
    )
    refunded = await terminal_stub.RefundTransaction(refund, metadata=auth)
    assert refunded.transaction.status == pb.TRANSACTION_STATUS_PARTIALLY_REFUNDED

    await database.migrate(infrastructure.database_url, encode_receipt=encode)
    row = await pool.fetchrow(
        "SELECT receipt, receipt_document FROM transactions"
        " WHERE business_id = $1 AND transaction_id = $2",
        business.business_id,
        transaction_id,
    )
    assert row is not None and row["receipt_document"] is None
    assert decode(row["receipt"]) == decode(stored)
    after = await terminal_stub.ProcessCheck(check, metadata=auth)
    assert after.transaction.receipt.SerializeToString() == (
        first.transaction.receipt.SerializeToString()
    )
    rest = await terminal_stub.RefundTransaction(
        pb.RefundTransactionRequest(transaction_id=transaction_id, refund_number="RF-2"),
        metadata=auth,
    )
    assert rest.transaction.status == pb.TRANSACTION_STATUS_REFUNDED
    assert sum(r.refunded_minor_units for r in rest.transaction.refunds) == (
        first.transaction.receipt.to_pay_minor_units
    )
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)
