"""Pending sales: ConfirmTransaction, ResendCode and CancelTransaction.

A redemption above a no-PIN limit made the sale pending, its debits held. Confirming
with the right PIN posts the holds and applies the accruals; cancelling, the deadline
(`purse.service.maintenance`) or too many wrong PINs void them. Cancelling a completed
sale of today reverses it as a whole refund (`refunds`).

Every PIN sent to a phone — a new pending sale's and each ResendCode's — counts against
one limit per phone and business (`pin_sends`). When it is used up, ResendCode answers
RESOURCE_EXHAUSTED with a RetryInfo until the limit accepts a send. Wrong PIN attempts
belong to the transaction: a resend never resets them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from purse.domain.calculation import new_pockets
from purse.domain.errors import FailedPrecondition, invalid
from purse.domain.settlement import Statistics
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import (
    TransactionRecord,
    TransactionStatus,
    effects_of_confirmation,
    effects_of_release,
)
from purse.service.operations import Transition
from purse.service.ports import (
    CustomerReads,
    ProgramRules,
    ReceiptCodec,
    SaleReversals,
    TransactionMessages,
    TransactionReads,
    Writer,
)
from purse.service.terminal.answers import (
    Answer,
    AnsweredMemberships,
    notice,
    with_balances,
    with_totals,
)
from purse.service.terminal.history import find_transaction
from purse.service.terminal.pins import Pins
from purse.store.redis import keys
from purse.store.redis.pins import new_pin, pin_digits

_logger = logging.getLogger(__name__)
# A sale of today that cancelling reverses (as a whole refund of what is left of it).
_reversible = frozenset(
    {
        TransactionStatus.COMPLETED,
        TransactionStatus.PARTIALLY_REFUNDED,
        TransactionStatus.REFUNDED,
    }
)


class Holds:
    """Confirming, resending the PIN of, and cancelling a transaction."""

    def __init__(
        self,
        writer: Writer,
        transactions: TransactionReads,
        messages: TransactionMessages,
        customers: CustomerReads,
        pins: Pins,
        programs: ProgramRules,
        reversals: SaleReversals,
        receipts: ReceiptCodec,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._writer = writer
        self._transactions = transactions
        self._messages = messages
        self._customers = customers
        self._memberships = AnsweredMemberships(customers, programs)
        self._pins = pins
        self._reversals = reversals
        self._receipts = receipts
        self._clock = clock

    async def confirm(
        self, terminal: TerminalContext, transaction_id: int, pin: str, queue_seconds: float | None
    ) -> Answer:
        if len(pin) != pin_digits or not pin.isdigit():
            raise invalid("pin", f"a PIN has {pin_digits} digits")
        record = await self._pending(terminal, transaction_id)
        state, attempts_left = await self._pins.codes.check(
            terminal.business_id, transaction_id, pin
        )
        if state == "missing":
            raise FailedPrecondition(
                "no PIN is waiting for this transaction; ask for a new one (ResendCode)",
                reason="PIN_EXPIRED",
            )
        if state == "locked" or (state == "wrong" and attempts_left == 0):
            # Concurrent calls may each find the attempts used up: one of them locks it.
            with contextlib.suppress(FailedPrecondition):
                await self._finish(terminal, record, TransactionStatus.LOCKED, queue_seconds)
            raise FailedPrecondition(
                "too many wrong PINs: the transaction is locked and its holds released",
                reason="TRANSACTION_LOCKED",
            )
        if state == "wrong":
            raise FailedPrecondition(
                f"wrong PIN; {attempts_left} attempts left",
                reason="PIN_WRONG",
                metadata={"attempts_left": str(attempts_left)},
            )
        return await self._finish(terminal, record, TransactionStatus.COMPLETED, queue_seconds)

    async def _pending(self, terminal: TerminalContext, transaction_id: int) -> TransactionRecord:
        record = await find_transaction(self._transactions, terminal, transaction_id)
        if record.status is not TransactionStatus.PENDING:
            raise FailedPrecondition(
                f"the transaction is {record.status.value}, not pending",
                reason="TRANSACTION_NOT_PENDING",
            )
        return record

    async def _finish(
        self,
        terminal: TerminalContext,
        record: TransactionRecord,
        status: TransactionStatus,
        queue_seconds: float | None,
    ) -> Answer:
        """Move a pending transaction on: COMPLETED posts its holds, anything else voids them."""
        assert record.receipt is not None
        sale = self._receipts.decode(record.receipt)
        coupon_ids = list(sale.coupon_codes)
        confirmed = status is TransactionStatus.COMPLETED
        membership = await self._memberships.of(terminal, record.customer_id)
        transition = Transition(
            transaction_id=record.transaction_id,
            expected=TransactionStatus.PENDING,
            status=status,
            effects=(effects_of_confirmation if confirmed else effects_of_release)(
                sale.receipt, record.customer_id, coupon_ids, record.lot_reservations
            ),
            customer_id=record.customer_id,
            statistics=Statistics(record.customer_id, 1, sale.receipt.check_sum, confirmed=True)
            if confirmed and record.customer_id is not None
            else None,
            notice=notice(terminal, membership, sale.receipt) if confirmed else None,
        )
        if membership is not None:
            transition = replace(
                transition, new_pockets=new_pockets(membership, transition.effects)
            )
        outcome = await self._writer.submit(terminal.business_id, transition, queue_seconds)
        if outcome.refusal is not None:
            raise FailedPrecondition(
                "the transaction changed meanwhile",
                reason=str(getattr(outcome.refusal, "value", outcome.refusal)),
            )
        now = datetime.fromtimestamp(self._clock(), UTC)
        finished = record._replace(status=status, finished_at=now)
        membership_after = (
            None
            if membership is None
            else with_balances(with_totals(membership, outcome), outcome.balances)
        )
        return Answer(finished, membership_after)

    async def resend(self, terminal: TerminalContext, transaction_id: int) -> datetime:
        """Send a new PIN; returns when the next resend will be accepted. Every PIN sent
        to the phone counts (new pending sales too); the transaction's wrong attempts are
        kept, not reset."""
        record = await self._pending(terminal, transaction_id)
        assert record.customer_id is not None
        membership = await self._customers.membership(terminal.business_id, record.customer_id)
        assert membership is not None
        limit_key = keys.pin_sends(terminal.business_id, membership.phone)
        reservation = await self._pins.sends.take(
            limit_key,
            "too many codes sent to this phone; try again later",
            "PIN_RESEND_RATE_LIMITED",
        )
        pin = new_pin()
        now = self._clock()
        deadline = record.confirmation_deadline or datetime.fromtimestamp(now, UTC)
        lifetime = int(deadline.timestamp() - now)
        await self._pins.codes.remember(terminal.business_id, transaction_id, pin, lifetime)
        await self._messages.add_message(
            terminal.business_id, transaction_id, self._pins.message(membership, pin)
        )
        if self._pins.sends.exhausted_by(reservation):
            now += reservation.window_left_seconds
        return datetime.fromtimestamp(now, UTC)

    async def cancel(
        self, terminal: TerminalContext, transaction_id: int, queue_seconds: float | None
    ) -> Answer:
        """Release a pending transaction's holds, or reverse a sale of today. Idempotent: a
        transaction cancelled already (by this call's first try, or by a concurrent one) is
        answered as it stands, as the first cancel was."""
        record = await find_transaction(self._transactions, terminal, transaction_id)
        if record.status is not TransactionStatus.CANCELLED:
            try:
                await self._cancel_once(terminal, record, queue_seconds)
            except FailedPrecondition:
                record = await find_transaction(self._transactions, terminal, transaction_id)
                if record.status is not TransactionStatus.CANCELLED:
                    raise
        return await self._memberships.answer(
            terminal, await find_transaction(self._transactions, terminal, transaction_id)
        )

    async def _cancel_once(
        self, terminal: TerminalContext, record: TransactionRecord, queue_seconds: float | None
    ) -> None:
        if record.status in _reversible:
            await self._reversals.cancel_completed(terminal, record)
            return
        if record.status is not TransactionStatus.PENDING:
            raise FailedPrecondition(
                f"a {record.status.value} transaction cannot be cancelled",
                reason="TRANSACTION_NOT_CANCELLABLE",
            )
        await self._finish(terminal, record, TransactionStatus.CANCELLED, queue_seconds)
        await self._forget_pin(terminal.business_id, record.transaction_id)

    async def _forget_pin(self, business_id: int, transaction_id: int) -> None:
        """Best effort, after the commit: the call must answer what is committed."""
        try:
            await self._pins.codes.forget(business_id, transaction_id)
        except Exception as error:
            # A PIN left behind confirms nothing (the transaction is no longer pending),
            # and its TTL removes it.
            _logger.warning(
                "could not forget the PIN of cancelled transaction %d (%s)",
                transaction_id,
                type(error).__name__,
            )
