"""RefundTransaction, and cancelling a completed sale of today.

A refund names lines of a completed sale (all of what is left when none is named) and
is idempotent per terminal and refund number: a refund number answers with its stored
refund, however many retries race. Cancelling a completed sale reverses it as a whole
refund, when the program allows it and the sale is of today (the point of sale's day).
Both commit through the unit of work, so the balance cache forgets the customer.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from purse.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from purse.domain.refunds import RefundPlan, check_refundable, plan_refund
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import (
    RefundRecord,
    StoredReceipt,
    TransactionRecord,
    TransactionStatus,
)
from purse.service.ports import ProgramRules, ReceiptCodec, RefundWrites, TransactionReads
from purse.service.terminal.answers import validate_key
from purse.service.terminal.history import find_transaction
from purse.service.unit_of_work import UnitOfWork
from purse.store.postgres.refunds import RefundRaced, StoredRefund


class Refunds:
    """Refunds of completed sales, and cancels of sales of today."""

    def __init__(
        self,
        refunds: RefundWrites,
        transactions: TransactionReads,
        programs: ProgramRules,
        changes: UnitOfWork,
        receipts: ReceiptCodec,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._refunds = refunds
        self._transactions = transactions
        self._programs = programs
        self._changes = changes
        self._receipts = receipts
        self._clock = clock

    async def refund(
        self,
        terminal: TerminalContext,
        transaction_id: int,
        refund_number: str,
        lines: Sequence[tuple[int, int]],
        request_digest: bytes,
    ) -> tuple[RefundRecord, TransactionRecord]:
        """Refund lines of a completed sale (all of what is left when none is named). A
        refund number answers with its stored refund, however many retries race."""
        validate_key(refund_number, "refund_number")
        stored = await self._stored_refund(terminal, refund_number)
        if stored is None:
            sale = await find_transaction(self._transactions, terminal, transaction_id)
            async with self._changes.changing(terminal.business_id) as changed:
                try:
                    stored = await self._refunds.refund(
                        terminal.business_id, transaction_id, terminal.terminal_id,
                        refund_number, request_digest,
                        functools.partial(_plan, receipts=self._receipts, lines=lines),
                        cancel=False,
                    )  # fmt: skip
                except RefundRaced:
                    stored = await self._stored_refund(terminal, refund_number)
                if stored is None:
                    raise _transaction_not_found()
                changed.customers([sale.customer_id])
        if stored.request_digest != request_digest:
            raise AlreadyExists(
                "this refund number was already used for a different refund",
                reason="IDEMPOTENCY_KEY_REUSED",
            )
        record = await find_transaction(self._transactions, terminal, transaction_id)
        refund = next(r for r in record.refunds if r.refund_id == stored.refund_id)
        return refund, record

    async def _stored_refund(
        self, terminal: TerminalContext, refund_number: str
    ) -> StoredRefund | None:
        return await self._refunds.stored(terminal.business_id, terminal.terminal_id, refund_number)

    async def cancel_completed(self, terminal: TerminalContext, record: TransactionRecord) -> None:
        """Reverse a sale of today (the point of sale's day) as a whole refund, when the
        program allows it."""
        program = await self._programs.compiled(
            terminal.business_id, terminal.program_id, terminal.currency
        )
        if not program.program.cancel_completed_sales:
            raise FailedPrecondition(
                "this program does not cancel completed sales; refund it instead",
                reason="CANCEL_NOT_ALLOWED",
            )
        zone = ZoneInfo(terminal.time_zone)
        today = datetime.fromtimestamp(self._clock(), zone).date()
        if record.created_at.astimezone(zone).date() != today:
            raise FailedPrecondition(
                "only a sale of today can be cancelled; refund it instead",
                reason="CANCEL_TOO_LATE",
            )
        number = f"~cancel-{record.transaction_id}"
        async with self._changes.changing(terminal.business_id) as changed:
            # A concurrent cancel that stored first has done the same.
            with contextlib.suppress(RefundRaced):
                stored = await self._refunds.refund(
                    terminal.business_id,
                    record.transaction_id,
                    terminal.terminal_id,
                    number,
                    b"cancel",
                    functools.partial(_plan, receipts=self._receipts, lines=()),
                    cancel=True,
                )
                if stored is None:
                    raise _transaction_not_found()
            changed.customers([record.customer_id])


def _transaction_not_found() -> NotFound:
    return NotFound("no such transaction in this business", reason="TRANSACTION_NOT_FOUND")


def _plan(
    status: TransactionStatus,
    stored: StoredReceipt | None,
    refunded: dict[int, int],
    receipts: ReceiptCodec,
    lines: Sequence[tuple[int, int]],
) -> RefundPlan:
    """The refund of `lines` of the sale as locked: refused unless it may be refunded."""
    check_refundable(status, is_sale=stored is not None)
    assert stored is not None
    sale = receipts.decode(stored)
    return plan_refund(sale.receipt, sale.quantities, refunded, lines)
