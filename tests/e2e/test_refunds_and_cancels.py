"""Refunds and cancels over gRPC on a real server: retries of a refund number racing each
other, the refunded states and filtering by them, cancelling idempotently and with Redis
gone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import customer_with_points, five_percent_back, set_program
from support import (
    ServerProcess,
    Tenant,
    assert_audit_is_clean,
    bearer,
    error_reason,
    field_violations,
)
from test_transactions import points_of, sale, two_lines

from purse.config import Settings
from purse.store.embedded import EmbeddedRedis
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

concurrent_retries = 8
call_seconds_max = 20.0


async def sold(
    stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    business: Tenant,
    points: int,
    *requests: Callable[[str], pb.ProcessCheckRequest],
) -> tuple[str, list[pb.Transaction]]:
    """A customer with `points` (and 5 % back, no PIN) and the sales `requests` make for
    their phone: (phone, transactions)."""
    await set_program(
        channel, business, rules=(five_percent_back,), points_redemption_limit_without_pin=None
    )
    phone = await customer_with_points(channel, business, points)
    auth = bearer(business.cash_desk.api_key)
    answers = [await stub.ProcessCheck(request(phone), metadata=auth) for request in requests]
    return phone, [answer.transaction for answer in answers]


async def test_identical_refunds_sent_at_once_all_get_the_one_stored_refund(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: Settings,
) -> None:
    phone, [done] = await sold(
        terminal_stub, channel, business, 5_000, lambda phone: sale("RR-1", phone, redeem=2_000)
    )
    auth = bearer(business.cash_desk.api_key)
    request = pb.RefundTransactionRequest(transaction_id=done.transaction_id, refund_number="RR-R")
    answers = await asyncio.gather(
        *(
            terminal_stub.RefundTransaction(request, metadata=auth, timeout=call_seconds_max)
            for _ in range(concurrent_retries)
        )
    )
    assert len({answer.SerializeToString(deterministic=True) for answer in answers}) == 1
    assert answers[0].refund.points_returned_hundredths == 2_000
    refunds = await pool.fetchval(
        "SELECT count(*) FROM refunds WHERE business_id = $1 AND transaction_id = $2",
        business.business_id, done.transaction_id,
    )  # fmt: skip
    moved = await pool.fetchval(
        "SELECT sum(amount) FROM ledger_entries"
        " WHERE business_id = $1 AND transaction_id = $2 AND kind = 'refund'",
        business.business_id, done.transaction_id,
    )  # fmt: skip
    assert (refunds, moved) == (1, 2_000 - done.receipt.points_accrued_hundredths)
    assert await points_of(pool, business, phone) == (5_000, 0)
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)


async def _listed(
    stub: TerminalServiceAsyncStub,
    auth: tuple[tuple[str, str]],
    status: pb.TransactionStatus.ValueType,
) -> list[int]:
    page = await stub.ListTransactions(pb.ListTransactionsRequest(status=status), metadata=auth)
    return [transaction.transaction_id for transaction in page.transactions]


async def test_a_sale_reads_partially_refunded_then_refunded_and_is_listed_so(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    business: Tenant,
) -> None:
    _, [done, kept] = await sold(
        terminal_stub, channel, business, 0,
        lambda phone: two_lines("RS-1", phone), lambda phone: two_lines("RS-2", phone),
    )  # fmt: skip
    auth = bearer(business.cash_desk.api_key)

    async def refund(number: str, *lines: tuple[int, int]) -> pb.Transaction:
        answer = await terminal_stub.RefundTransaction(
            pb.RefundTransactionRequest(
                transaction_id=done.transaction_id, refund_number=number,
                lines=[pb.RefundLine(position=p, quantity_thousandths=q) for p, q in lines],
            ),
            metadata=auth,
        )  # fmt: skip
        read = await terminal_stub.GetTransaction(
            pb.GetTransactionRequest(transaction_id=done.transaction_id), metadata=auth
        )
        assert read.transaction == answer.transaction
        return answer.transaction

    partly = await refund("RS-R1", (1, 1_000))
    assert partly.status == pb.TRANSACTION_STATUS_PARTIALLY_REFUNDED
    assert await _listed(terminal_stub, auth, pb.TRANSACTION_STATUS_PARTIALLY_REFUNDED) == [
        done.transaction_id
    ]
    whole = await refund("RS-R2")
    assert whole.status == pb.TRANSACTION_STATUS_REFUNDED
    assert await _listed(terminal_stub, auth, pb.TRANSACTION_STATUS_REFUNDED) == [
        done.transaction_id
    ]
    assert await _listed(terminal_stub, auth, pb.TRANSACTION_STATUS_PARTIALLY_REFUNDED) == []
    assert await _listed(terminal_stub, auth, pb.TRANSACTION_STATUS_COMPLETED) == [
        kept.transaction_id
    ]
    for again in (
        terminal_stub.RefundTransaction(
            pb.RefundTransactionRequest(transaction_id=done.transaction_id, refund_number="RS-R3"),
            metadata=auth,
        ),
        terminal_stub.CancelTransaction(
            pb.CancelTransactionRequest(transaction_id=done.transaction_id), metadata=auth
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await again
        assert error_reason(refused.value) == "ALREADY_REFUNDED"


async def test_cancelling_a_partially_refunded_sale_of_today_reverses_the_rest(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    phone, [done] = await sold(
        terminal_stub,
        channel,
        business,
        5_000,
        lambda phone: two_lines("PC-1", phone, redeem=1_000),
    )
    auth = bearer(business.cash_desk.api_key)
    await terminal_stub.RefundTransaction(
        pb.RefundTransactionRequest(
            transaction_id=done.transaction_id, refund_number="PC-R",
            lines=[pb.RefundLine(position=2, quantity_thousandths=1_000)],
        ),
        metadata=auth,
    )  # fmt: skip
    cancelled = await terminal_stub.CancelTransaction(
        pb.CancelTransactionRequest(transaction_id=done.transaction_id), metadata=auth
    )
    assert cancelled.transaction.status == pb.TRANSACTION_STATUS_CANCELLED
    assert len(cancelled.transaction.refunds) == 2
    assert await points_of(pool, business, phone) == (5_000, 0)


async def test_an_unknown_status_filter_is_refused_naming_the_field(
    terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ListTransactions(
            pb.ListTransactionsRequest(status=99),  # type: ignore[arg-type]
            metadata=bearer(business.cash_desk.api_key),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(refused.value)) == ["status"]


async def test_a_pending_sale_is_cancelled_with_redis_down_and_a_retry_gets_the_same_answer(
    pool: asyncpg.Pool,
    business: Tenant,
    infrastructure: Settings,
    tmp_path: Path,
    channel: grpc.aio.Channel,
) -> None:
    await set_program(channel, business, points_redemption_limit_without_pin=0)
    phone = await customer_with_points(channel, business, 10_000)
    redis_server = EmbeddedRedis(tmp_path)
    server = ServerProcess(
        {"PURSE_DATABASE_URL": infrastructure.database_url,
         "PURSE_REDIS_URL": redis_server.start(), "PURSE_NOTIFY_ENABLED": "false"},
        tmp_path,
    )  # fmt: skip
    auth = bearer(business.cash_desk.api_key)
    try:
        server.start()
        async with grpc.aio.insecure_channel(server.target) as side:
            stub = TerminalServiceStub(side)
            pending = await stub.ProcessCheck(
                sale("RD-1", phone, redeem=1_000), metadata=auth, timeout=call_seconds_max
            )
            assert pending.transaction.status == pb.TRANSACTION_STATUS_PENDING
            await asyncio.to_thread(redis_server.stop)
            request = pb.CancelTransactionRequest(transaction_id=pending.transaction.transaction_id)
            first = await stub.CancelTransaction(request, metadata=auth, timeout=call_seconds_max)
            again = await stub.CancelTransaction(request, metadata=auth, timeout=call_seconds_max)
    finally:
        server.stop()
        redis_server.stop()
    assert first.transaction.status == pb.TRANSACTION_STATUS_CANCELLED
    assert again == first
    assert await points_of(pool, business, phone) == (10_000, 0)
    await assert_audit_is_clean(infrastructure.database_url, business.business_id)
