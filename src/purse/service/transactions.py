"""Processing checks and what follows: PIN confirmation, resending, cancelling, expiry.

ProcessCheck is idempotent per terminal and check number. The stored transaction for the
key is looked up first: the same request gets the stored answer (a refusal included),
another request under the same key is refused. Otherwise the check is calculated as
CalculateCheck does and handed to the batch writer; the call is answered after its batch
commits. A redemption above a no-PIN limit makes the transaction pending: its debits are
held and a PIN goes to the customer through the outbox; ConfirmTransaction posts the
holds and applies the accruals, and cancelling, the deadline or too many wrong PINs void
them.

Every PIN sent to a phone — a new pending sale's and each ResendCode's — counts against
one limit per phone and business (`pin_sends`). When it is used up the sale is still made
(the money path never fails for it) and stays pending, but its PIN is not sent: the
terminal asks with ResendCode, which answers RESOURCE_EXHAUSTED with a RetryInfo until the
limit accepts a send. Wrong PIN attempts belong to the transaction: a resend never resets
them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from purse import sealing
from purse.domain import moments
from purse.domain.checks import Receipt
from purse.domain.customers import Membership, Pocket, points_limit, with_points_limit
from purse.domain.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    Unavailable,
    UnexpectedFailure,
    invalid,
)
from purse.domain.moments import check_sale_time
from purse.domain.pages import page_limit
from purse.domain.reasons import ERROR_REASONS
from purse.domain.refunds import RefundPlan, plan_refund
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import (
    FINAL_REFUSALS,
    Balance,
    Effects,
    PocketKey,
    RefundRecord,
    TransactionRecord,
    TransactionStatus,
    effects_of_confirmation,
    effects_of_release,
    effects_of_sale,
)
from purse.service.calculation import Calculation, CalculationRequest, CheckCalculation
from purse.service.customer_turns import CustomerTurns
from purse.service.operations import Message, Notice, Outcome, Sale, Statistics, Transition
from purse.service.ports import (
    CustomerReads,
    Limit,
    PinCodes,
    ProgramRules,
    RefundWrites,
    Sweeps,
    TransactionMessages,
    TransactionReads,
    Writer,
)
from purse.service.unit_of_work import UnitOfWork
from purse.store.failures import DEPENDENCY_FAILURES
from purse.store.postgres.conflicts import CONFLICT_FAILURES, conflict_refusal
from purse.store.postgres.receipts import receipt_document, receipt_from_document
from purse.store.postgres.refunds import RefundRaced, StoredRefund
from purse.store.postgres.transactions import list_page_size_max, record_from_row
from purse.store.redis import keys
from purse.store.redis.pins import new_pin, pin_digits

_logger = logging.getLogger(__name__)
check_number_characters_max = 64
# Longer page tokens are never ones this server gave.
page_token_characters_max = 128
# The largest id PostgreSQL's bigint holds.
transaction_id_max = 2**63 - 1
# How many times a check is calculated again when a balance it was calculated on changed
# before it could be applied (concurrent checks of one customer).
settlement_attempts_max = 8
settlement_backoff_seconds = 0.001
list_page_size_default = 50
overdue_holds_per_sweep_max = 500
expired_lots_per_sweep_max = 5_000
# A sale of today that cancelling reverses (as a whole refund of what is left of it).
_reversible = frozenset(
    {
        TransactionStatus.COMPLETED,
        TransactionStatus.PARTIALLY_REFUNDED,
        TransactionStatus.REFUNDED,
    }
)

# (language) -> the PIN message template, with the placeholder {pin}
PinText = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class ProcessRequest:
    """A check to apply: the POS's check number, the request's digest, the calculation."""

    check_number: str
    request_digest: bytes
    calculation: CalculationRequest


@dataclass(frozen=True, slots=True)
class Answer:
    """A transaction and the customer's membership as it stands after it."""

    record: TransactionRecord
    membership: Membership | None


@dataclass(frozen=True, slots=True)
class ListFilter:
    customer_id: int | None = None
    terminal_id: int | None = None
    status: TransactionStatus | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None


def validate_key(value: str, field: str) -> None:
    """Check numbers and refund numbers: 1 to 64 printable characters."""
    if not 1 <= len(value) <= check_number_characters_max or not value.isprintable():
        raise invalid(field, f"1 to {check_number_characters_max} printable characters")


def validate_request(request: ProcessRequest, now: datetime) -> None:
    """What ProcessCheck checks before a check may join a group (the mapping has checked
    the fields' own ranges): its key, and a sale time an offline till could have."""
    validate_key(request.check_number, "check_number")
    check_sale_time(request.calculation.sale_time, now, "sale_time")


def _waves(memberships: Sequence[Membership | DomainError | None]) -> list[list[int]]:
    """Positions of `memberships` in waves: the k-th check of each customer in wave k
    (checks without a customer in the first), each wave in the order given."""
    waves: list[list[int]] = []
    seen: dict[int, int] = {}
    for position, membership in enumerate(memberships):
        wave = 0
        if isinstance(membership, Membership):
            wave = seen.get(membership.customer_id, 0)
            seen[membership.customer_id] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(position)
    return waves


class TransactionService:
    """The transaction use cases of the terminal contract."""

    def __init__(
        self,
        calculation: CheckCalculation,
        writer: Writer,
        transactions: TransactionReads,
        messages: TransactionMessages,
        sweeps: Sweeps,
        customers: CustomerReads,
        pins: PinCodes,
        pin_sends: Limit,
        pin_seal_key: bytes,
        pin_text: PinText,
        programs: ProgramRules,
        refunds: RefundWrites,
        clock: Callable[[], float] = time.time,
        changes: UnitOfWork | None = None,
    ) -> None:
        self._turns = CustomerTurns()
        self._calculation = calculation
        self._writer = writer
        self._transactions = transactions
        self._messages = messages
        self._sweeps = sweeps
        self._customers = customers
        self._pins = pins
        self._pin_sends = pin_sends
        self._pin_seal_key = pin_seal_key
        self._pin_text = pin_text
        self._programs = programs
        self._refunds = refunds
        self._clock = clock
        self._changes = changes or UnitOfWork()

    def validate(self, request: ProcessRequest) -> None:
        """InvalidArgument for a request that may not join a group (see `validate_request`)."""
        validate_request(request, datetime.fromtimestamp(self._clock(), UTC))

    async def process_group(
        self, terminal: TerminalContext, requests: Sequence[ProcessRequest]
    ) -> list[Answer | DomainError]:
        """`process_many`, with a failure of the group's shared work kept to its cause: an
        outage fails every member (each would meet it), anything else has the requests
        processed one at a time, in order, so that the one that causes it fails alone."""
        try:
            return await self.process_many(terminal, requests)
        except DomainError as refusal:
            return [refusal] * len(requests)
        except DEPENDENCY_FAILURES:
            raise
        except Exception:
            _logger.exception("a group of %d checks failed", len(requests))
            if len(requests) == 1:
                return [UnexpectedFailure("this check could not be processed")]
        results: list[Answer | DomainError] = []
        for request in requests:
            results += await self.process_group(terminal, [request])
        return results

    async def process_many(
        self, terminal: TerminalContext, requests: Sequence[ProcessRequest]
    ) -> list[Answer | DomainError]:
        """Each request's answer or refusal, as one-by-one calls in the order given would
        get them. Every request is validated before it shares anything; stored answers and
        the inputs of every check are read together, and the writes share batches. Checks
        of one customer go in *waves*: the k-th check of every customer in wave k, each
        wave calculated on what the previous one committed."""
        results: list[Answer | DomainError | None] = [None] * len(requests)
        now = datetime.fromtimestamp(self._clock(), UTC)
        valid: list[int] = []
        for index, request in enumerate(requests):
            try:
                validate_request(request, now)
                valid.append(index)
            except DomainError as refusal:
                results[index] = refusal
        existing = await self._transactions.by_check_numbers(
            terminal.business_id, terminal.terminal_id, [requests[i].check_number for i in valid]
        )
        for index in valid:
            record = existing.get(requests[index].check_number)
            if record is not None:
                results[index] = await _answer_or_refusal(
                    self._stored(terminal, record, requests[index].request_digest)
                )
        fresh = [i for i in valid if requests[i].check_number not in existing]
        memberships = await self._calculation.identify_many(
            terminal, [requests[i].calculation.identifier for i in fresh]
        )
        for number, wave in enumerate(_waves(memberships)):
            indexes = [fresh[position] for position in wave]
            known = [memberships[position] for position in wave]
            if number:
                known = await self._reread(terminal, known)
            answers = await self._process_wave(terminal, [requests[i] for i in indexes], known)
            for index, answer in zip(indexes, answers, strict=True):
                results[index] = answer
        return [result for result in results if result is not None]

    async def _process_wave(
        self,
        terminal: TerminalContext,
        requests: Sequence[ProcessRequest],
        memberships: Sequence[Membership | DomainError | None],
    ) -> list[Answer | DomainError]:
        """Checks of distinct customers, calculated together once their turns are taken."""
        customers = [m.customer_id for m in memberships if isinstance(m, Membership)]
        async with self._turns.taken(terminal.business_id, customers) as shared:
            if shared:
                memberships = await self._reread(terminal, memberships, shared)
            calculations = await self._calculation.calculate_for(
                terminal, [request.calculation for request in requests], memberships
            )
            return list(
                await asyncio.gather(
                    *(
                        _answer_or_refusal(self._process_one(terminal, request, calculation))
                        for request, calculation in zip(requests, calculations, strict=True)
                    )
                )
            )

    async def _reread(
        self,
        terminal: TerminalContext,
        memberships: Sequence[Membership | DomainError | None],
        customer_ids: Collection[int] | None = None,
    ) -> list[Membership | DomainError | None]:
        """The memberships (of `customer_ids`, or all) as committed now: read by id, since
        an identifier such as a steward code is single use."""
        stale = [
            (index, known.customer_id)
            for index, known in enumerate(memberships)
            if isinstance(known, Membership)
            and (customer_ids is None or known.customer_id in customer_ids)
        ]
        fresh = await asyncio.gather(
            *(self._customers.membership(terminal.business_id, each) for _, each in stale)
        )
        reread = list(memberships)
        for (index, _), membership in zip(stale, fresh, strict=True):
            reread[index] = membership
        return reread

    async def _process_one(
        self,
        terminal: TerminalContext,
        request: ProcessRequest,
        calculation: Calculation | DomainError,
    ) -> Answer:
        """Apply one calculated check. When settlement finds that a balance it was calculated
        on changed meanwhile (a concurrent check of the same customer), it is calculated
        again on what is committed now: such a refusal is never the check's answer."""
        for attempt in range(settlement_attempts_max):
            if attempt:
                # Another process applies checks of this customer too: let it finish first.
                await asyncio.sleep(random.uniform(0, settlement_backoff_seconds * 2**attempt))
            if isinstance(calculation, FailedPrecondition):
                stored = await self._store_refusal(terminal, request, calculation)
                if stored is not None:
                    return stored
            if isinstance(calculation, DomainError):
                raise calculation
            answer = await self._apply(terminal, request, calculation)
            if answer is not None:
                return answer
            calculation = await self._recalculated(terminal, request, calculation)
        raise Aborted(
            "the customer's balances kept changing while this check was applied; send it again",
            reason="CONCURRENT_CHANGE",
        )

    async def _recalculated(
        self, terminal: TerminalContext, request: ProcessRequest, calculation: Calculation
    ) -> Calculation | DomainError:
        membership = calculation.membership
        if membership is not None:
            membership = await self._customers.membership(
                terminal.business_id, membership.customer_id
            )
        (again,) = await self._calculation.calculate_for(
            terminal, [request.calculation], [membership]
        )
        return again

    async def _apply(
        self, terminal: TerminalContext, request: ProcessRequest, calculation: Calculation
    ) -> Answer | None:
        """Hand the sale to the writer and answer once its batch has committed; None when
        settlement found a balance changed since the calculation read it."""
        send_key = await self._reserve_pin_send(terminal, calculation)
        sale, pin = self._sale(terminal, request, calculation, send_key is not None)
        outcome = await self._writer.submit(terminal.business_id, sale, None)
        if send_key is not None and (
            outcome.existing or outcome.refusal is not None or outcome.leader_digest is not None
        ):
            await self._release_pin_send(send_key)  # no new transaction, no PIN sent
        if outcome.existing:
            assert outcome.stored is not None
            return await self._stored(
                terminal, record_from_row(outcome.stored), request.request_digest
            )
        if outcome.leader_digest not in (None, request.request_digest):
            raise _key_reused()
        if outcome.refusal in FINAL_REFUSALS:
            raise _settlement_refusal(str(getattr(outcome.refusal, "value", outcome.refusal)))
        if outcome.refusal is not None:
            return None
        if pin is not None and outcome.leader_digest is None:
            await self._remember_pin(
                terminal.business_id, outcome.transaction_id, pin, calculation.hold_seconds
            )
        record = _record(sale, outcome, calculation)
        return Answer(record, await self._membership_after(terminal, calculation, outcome))

    async def _reserve_pin_send(
        self, terminal: TerminalContext, calculation: Calculation
    ) -> str | None:
        """The per-phone send limit's key when a new pending sale may send its PIN; None
        when no PIN is due or the limit is used up (the sale is still made, pending, and
        its PIN waits for a ResendCode the limit accepts) or Redis cannot count it."""
        membership = calculation.membership
        if membership is None or not calculation.receipt.confirmation_required:
            return None
        key = keys.pin_sends(terminal.business_id, membership.phone)
        try:
            reservation = await self._pin_sends.reserve(key)
        except Exception as error:
            # No PIN can be stored without Redis either: the customer asks for one later.
            _logger.warning("could not count a PIN send (%s)", type(error).__name__)
            return None
        return key if reservation.granted else None

    async def _release_pin_send(self, key: str) -> None:
        try:
            await self._pin_sends.release(key)
        except Exception as error:
            _logger.warning("could not give back a PIN send (%s)", type(error).__name__)

    def _sale(
        self,
        terminal: TerminalContext,
        request: ProcessRequest,
        calculation: Calculation,
        send_pin: bool,
    ) -> tuple[Sale, str | None]:
        receipt, membership = calculation.receipt, calculation.membership
        customer_id = None if membership is None else membership.customer_id
        pending = membership is not None and receipt.confirmation_required
        effects = effects_of_sale(receipt, customer_id, list(calculation.coupon_codes), pending)
        if membership is not None:
            effects = replace(effects, expected=_read_balances(calculation, effects))
        pin = new_pin() if pending and send_pin else None
        messages: tuple[Message, ...] = ()
        if pin is not None and membership is not None:
            messages = (self._pin_message(membership, pin),)
        deadline = (
            datetime.fromtimestamp(self._clock() + calculation.hold_seconds, UTC)
            if pending
            else None
        )
        completed = membership is not None and not pending
        sale = Sale(
            terminal_id=terminal.terminal_id,
            point_of_sale_id=terminal.point_of_sale_id,
            check_number=request.check_number,
            request_digest=request.request_digest,
            customer_id=customer_id,
            status=TransactionStatus.PENDING if pending else TransactionStatus.COMPLETED,
            receipt_document=_document(calculation, request.calculation),
            sum_minor_units=receipt.check_sum,
            effects=effects,
            confirmation_deadline=deadline,
            sale_time=request.calculation.sale_time,
            statistics=Statistics(
                customer_id, 1, receipt.check_sum, visit_time=request.calculation.sale_time
            )
            if completed and customer_id is not None
            else None,
            messages=messages,
            notice=_notice(membership, receipt) if completed else None,
            new_pockets=_new_pockets(membership, effects),
        )
        return sale, pin

    def _pin_message(self, membership: Membership, pin: str) -> Message:
        return Message(
            customer_id=membership.customer_id,
            channel="sms",
            purpose="pin",
            phone=membership.phone,
            language=membership.language,
            body=self._pin_text(membership.language),
            sealed_secret=sealing.seal(self._pin_seal_key, pin),
        )

    async def _remember_pin(
        self, business_id: int, transaction_id: int, pin: str, lifetime_seconds: int
    ) -> None:
        try:
            await self._pins.remember(business_id, transaction_id, pin, lifetime_seconds)
        except Exception:
            # Redis holds no money: the transaction stays pending and the PIN can be resent.
            _logger.warning("could not store a PIN; the customer can ask for a new one")

    async def _store_refusal(
        self,
        terminal: TerminalContext,
        request: ProcessRequest,
        refusal: FailedPrecondition,
    ) -> Answer | None:
        """Keep a business refusal as the first answer for its check number; the stored
        answer when the number was taken meanwhile."""
        sale = Sale(
            terminal_id=terminal.terminal_id,
            point_of_sale_id=terminal.point_of_sale_id,
            check_number=request.check_number,
            request_digest=request.request_digest,
            customer_id=None,
            status=TransactionStatus.REJECTED,
            receipt_document={},
            sum_minor_units=sum(line.amount for line in request.calculation.check.lines),
            effects=Effects(),
            refusal={
                "reason": refusal.reason,
                "message": refusal.message,
                "violations": [[v.field, v.description] for v in refusal.violations],
            },
        )
        outcome = await self._writer.submit(terminal.business_id, sale, None)
        if outcome.existing and outcome.stored is not None:
            # The same check, sent concurrently, was stored first: its answer is this one's.
            return await self._stored(
                terminal, record_from_row(outcome.stored), request.request_digest
            )
        return None

    async def _stored(
        self, terminal: TerminalContext, record: TransactionRecord, digest: bytes
    ) -> Answer:
        if record.request_digest != digest:
            raise _key_reused()
        if record.status is TransactionStatus.REJECTED:
            raise _stored_refusal(record.refusal or {})
        return await self._with_membership(terminal, record)

    async def _answered_membership(
        self, terminal: TerminalContext, customer_id: int | None
    ) -> Membership | None:
        """The customer's membership as committed now, as an answer shows it: with the
        program's no-PIN limit on the points pocket; None without a customer."""
        if customer_id is None:
            return None
        membership, limit = await asyncio.gather(
            self._customers.membership(terminal.business_id, customer_id),
            self._programs.points_limit(terminal),
        )
        return None if membership is None else with_points_limit(membership, limit)

    async def _membership_after(
        self, terminal: TerminalContext, calculation: Calculation, outcome: Outcome
    ) -> Membership | None:
        membership = calculation.membership
        if membership is None:
            return None
        known = {pocket.account_type_id for pocket in membership.pockets}
        opened = [
            replace(pocket, pocket_id=outcome.pocket_ids.get(key, 0))
            for pocket in calculation.unopened_pockets
            if (key := (membership.customer_id, pocket.account_type_id)) in outcome.balances
        ]
        known.update(pocket.account_type_id for pocket in opened)
        if any(key[1] not in known for key in outcome.balances):
            fresh = await self._customers.membership(terminal.business_id, membership.customer_id)
            return None if fresh is None else with_points_limit(fresh, points_limit(membership))
        pockets = sorted((*membership.pockets, *opened), key=lambda pocket: pocket.account_type_id)
        membership = replace(membership, pockets=tuple(pockets))
        return _with_balances(_with_totals(membership, outcome), outcome.balances)

    async def confirm(
        self, terminal: TerminalContext, transaction_id: int, pin: str, queue_seconds: float | None
    ) -> Answer:
        if len(pin) != pin_digits or not pin.isdigit():
            raise invalid("pin", f"a PIN has {pin_digits} digits")
        record = await self._pending(terminal, transaction_id)
        state, attempts_left = await self._pins.check(terminal.business_id, transaction_id, pin)
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
        record = await self.get(terminal, transaction_id)
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
        coupon_ids = list(record.coupon_codes)
        confirmed = status is TransactionStatus.COMPLETED
        membership = await self._answered_membership(terminal, record.customer_id)
        transition = Transition(
            transaction_id=record.transaction_id,
            expected=TransactionStatus.PENDING,
            status=status,
            effects=(effects_of_confirmation if confirmed else effects_of_release)(
                record.receipt, record.customer_id, coupon_ids, record.lot_reservations
            ),
            customer_id=record.customer_id,
            statistics=Statistics(record.customer_id, 1, record.receipt.check_sum, confirmed=True)
            if confirmed and record.customer_id is not None
            else None,
            notice=_notice(membership, record.receipt) if confirmed else None,
        )
        if membership is not None:
            transition = replace(
                transition, new_pockets=_new_pockets(membership, transition.effects)
            )
        outcome = await self._writer.submit(terminal.business_id, transition, queue_seconds)
        if outcome.refusal is not None:
            raise FailedPrecondition(
                "the transaction changed meanwhile",
                reason=str(getattr(outcome.refusal, "value", outcome.refusal)),
            )
        now = datetime.fromtimestamp(self._clock(), UTC)
        finished = replace(record, status=status, finished_at=now)
        membership_after = (
            None
            if membership is None
            else _with_balances(_with_totals(membership, outcome), outcome.balances)
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
        reservation = await self._pin_sends.take(
            limit_key,
            "too many codes sent to this phone; try again later",
            "PIN_RESEND_RATE_LIMITED",
        )
        pin = new_pin()
        now = self._clock()
        deadline = record.confirmation_deadline or datetime.fromtimestamp(now, UTC)
        lifetime = int(deadline.timestamp() - now)
        await self._pins.remember(terminal.business_id, transaction_id, pin, lifetime)
        await self._messages.add_message(
            terminal.business_id, transaction_id, self._pin_message(membership, pin)
        )
        if self._pin_sends.exhausted_by(reservation):
            now += reservation.window_left_seconds
        return datetime.fromtimestamp(now, UTC)

    async def cancel(
        self, terminal: TerminalContext, transaction_id: int, queue_seconds: float | None
    ) -> Answer:
        """Release a pending transaction's holds, or reverse a sale of today. Idempotent: a
        transaction cancelled already (by this call's first try, or by a concurrent one) is
        answered as it stands, as the first cancel was."""
        record = await self.get(terminal, transaction_id)
        if record.status is not TransactionStatus.CANCELLED:
            try:
                await self._cancel_once(terminal, record, queue_seconds)
            except FailedPrecondition:
                record = await self.get(terminal, transaction_id)
                if record.status is not TransactionStatus.CANCELLED:
                    raise
        return await self._with_membership(terminal, await self.get(terminal, transaction_id))

    async def _cancel_once(
        self, terminal: TerminalContext, record: TransactionRecord, queue_seconds: float | None
    ) -> None:
        if record.status in _reversible:
            await self._cancel_completed(terminal, record)
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
            await self._pins.forget(business_id, transaction_id)
        except Exception as error:
            # A PIN left behind confirms nothing (the transaction is no longer pending),
            # and its TTL removes it.
            _logger.warning(
                "could not forget the PIN of cancelled transaction %d (%s)",
                transaction_id,
                type(error).__name__,
            )

    async def write_off_expired_lots(self) -> int:
        """Expired special points leave the balance, with an `expire` ledger entry."""
        written, changed = await self._sweeps.write_off_expired_lots(expired_lots_per_sweep_max)
        by_business: dict[int, list[int]] = {}
        for business_id, customer_id in changed:
            by_business.setdefault(business_id, []).append(customer_id)
        for business_id, customer_ids in by_business.items():
            await self._changes.committed(business_id, customer_ids)
        return written

    async def expire_overdue(self) -> int:
        """Void the holds of pending transactions past their deadline; returns how many.

        The overdue transactions of a business are read in one query and their releases
        handed to the writer together, so they share batches."""
        overdue = await self._sweeps.overdue_holds(overdue_holds_per_sweep_max)
        by_business: dict[int, list[int]] = {}
        for business_id, transaction_id in overdue:
            by_business.setdefault(business_id, []).append(transaction_id)
        submissions = []
        for business_id, transaction_ids in by_business.items():
            records = await self._transactions.by_ids(business_id, transaction_ids)
            submissions += [
                self._writer.submit(business_id, _expiry(record), None)
                for record in records
                if record.receipt is not None
            ]
        outcomes = await asyncio.gather(*submissions)
        return sum(outcome.refusal is None for outcome in outcomes)

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
            sale = await self.get(terminal, transaction_id)
            async with self._changes.changing(terminal.business_id) as changed:
                try:
                    stored = await self._refunds.refund(
                        terminal.business_id, transaction_id, terminal.terminal_id,
                        refund_number, request_digest,
                        lambda document, refunded: _plan(document, refunded, lines),
                        cancel=False,
                    )  # fmt: skip
                except RefundRaced:
                    stored = await self._stored_refund(terminal, refund_number)
                    assert stored is not None
                changed.customers([sale.customer_id])
        if stored.request_digest != request_digest:
            raise AlreadyExists(
                "this refund number was already used for a different refund",
                reason="IDEMPOTENCY_KEY_REUSED",
            )
        record = await self.get(terminal, transaction_id)
        refund = next(r for r in record.refunds if r.refund_id == stored.refund_id)
        return refund, record

    async def _stored_refund(
        self, terminal: TerminalContext, refund_number: str
    ) -> StoredRefund | None:
        return await self._refunds.stored(terminal.business_id, terminal.terminal_id, refund_number)

    async def _cancel_completed(self, terminal: TerminalContext, record: TransactionRecord) -> None:
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
                await self._refunds.refund(
                    terminal.business_id,
                    record.transaction_id,
                    terminal.terminal_id,
                    number,
                    b"cancel",
                    lambda document, refunded: _plan(document, refunded, ()),
                    cancel=True,
                )
            changed.customers([record.customer_id])

    async def _with_membership(
        self, terminal: TerminalContext, record: TransactionRecord
    ) -> Answer:
        return Answer(record, await self._answered_membership(terminal, record.customer_id))

    async def get(self, terminal: TerminalContext, transaction_id: int) -> TransactionRecord:
        record = await self._transactions.by_id(terminal.business_id, transaction_id)
        if record is None:
            raise NotFound("no such transaction in this business", reason="TRANSACTION_NOT_FOUND")
        return record

    async def get_by_check_number(
        self, terminal: TerminalContext, check_number: str
    ) -> TransactionRecord:
        validate_key(check_number, "check_number")
        record = await self._transactions.by_check_number(
            terminal.business_id, terminal.terminal_id, check_number
        )
        if record is None:
            raise NotFound("no transaction with this check number", reason="TRANSACTION_NOT_FOUND")
        return record

    async def page(
        self, terminal: TerminalContext, page_size: int, page_token: str, filters: ListFilter
    ) -> tuple[list[TransactionRecord], str]:
        limit = page_limit(page_size, list_page_size_default, list_page_size_max)
        records = await self._transactions.page(
            terminal.business_id, limit, _after(page_token), filters.customer_id,
            filters.terminal_id, filters.status, filters.created_from, filters.created_before,
        )  # fmt: skip
        next_token = _token(records[-1]) if len(records) == limit else ""
        return records, next_token


def _plan(
    document: dict[str, Any], refunded: dict[int, int], lines: Sequence[tuple[int, int]]
) -> RefundPlan:
    quantities = {int(position): quantity for position, quantity in document["quantities"].items()}
    return plan_refund(receipt_from_document(document["receipt"]), quantities, refunded, lines)


def _expiry(record: TransactionRecord) -> Transition:
    assert record.receipt is not None
    return Transition(
        transaction_id=record.transaction_id,
        expected=TransactionStatus.PENDING,
        status=TransactionStatus.EXPIRED,
        effects=effects_of_release(
            record.receipt, record.customer_id, list(record.coupon_codes), record.lot_reservations
        ),
        customer_id=record.customer_id,
    )


async def _answer_or_refusal(answer: Awaitable[Answer]) -> Answer | DomainError:
    """The answer, or the refusal of this one member of a group: whatever fails for one
    check fails it alone."""
    try:
        return await answer
    except DomainError as refusal:
        return refusal
    except DEPENDENCY_FAILURES as failure:
        _logger.warning("dependency failure: %s: %s", type(failure).__name__, failure)
        return _dependency_unavailable()
    except CONFLICT_FAILURES:
        return conflict_refusal()
    except Exception:
        _logger.exception("one check of a group failed unexpectedly")
        return UnexpectedFailure("this check could not be processed; the server log has why")


def _dependency_unavailable() -> Unavailable:
    return Unavailable(
        "a storage dependency is unavailable; retry later", reason="DEPENDENCY_UNAVAILABLE"
    )


def _token(record: TransactionRecord) -> str:
    text = f"{record.created_at.isoformat()}|{record.transaction_id}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def _after(token: str) -> tuple[datetime, int] | None:
    """Where a page starts; a token this server did not give (or one out of any range a
    transaction can have) is refused naming `page_token`."""
    if not token:
        return None
    refusal = invalid("page_token", "not a token this server gave")
    if len(token) > page_token_characters_max:
        raise refusal
    try:
        moment_text, id_text = base64.urlsafe_b64decode(token).decode().split("|")
        moment, transaction_id = datetime.fromisoformat(moment_text), int(id_text)
    except ValueError as error:
        raise refusal from error
    if moment.tzinfo is None or moments.moment_seconds_violation(int(moment.timestamp()), 0):
        raise refusal
    if not 0 < transaction_id <= transaction_id_max:
        raise refusal
    return moment, transaction_id


def _key_reused() -> AlreadyExists:
    return AlreadyExists(
        "this check number was already used for a different check",
        reason="IDEMPOTENCY_KEY_REUSED",
    )


def _settlement_refusal(reason: str) -> FailedPrecondition:
    return FailedPrecondition(
        "a balance changed before the check was applied; calculate it again", reason=reason
    )


def _stored_refusal(refusal: dict[str, Any]) -> FailedPrecondition:
    violations = tuple(FieldViolation(field, text) for field, text in refusal.get("violations", ()))
    if "message" not in refusal:
        reason = refusal.get("reason", "")
        return _settlement_refusal(reason if reason in ERROR_REASONS else "FAILED_PRECONDITION")
    return FailedPrecondition(refusal["message"], reason=refusal["reason"], violations=violations)


def _document(calculation: Calculation, request: CalculationRequest) -> dict[str, Any]:
    return {
        "receipt": receipt_document(calculation.receipt),
        "coupons": {str(key): code for key, code in calculation.coupon_codes.items()},
        "certificates": {str(key): code for key, code in calculation.certificate_codes.items()},
        "quantities": {str(line.position): line.quantity for line in request.check.lines},
    }


def _notice(membership: Membership | None, receipt: Receipt) -> Notice | None:
    if membership is None or not (receipt.points_accrued or receipt.points_redeemed):
        return None
    return Notice(
        membership.customer_id, membership.phone, membership.language,
        receipt.points_accrued, receipt.points_redeemed,
    )  # fmt: skip


def _record(sale: Sale, outcome: Outcome, calculation: Calculation) -> TransactionRecord:
    assert outcome.created_at is not None
    return TransactionRecord(
        transaction_id=outcome.transaction_id,
        check_number=sale.check_number,
        terminal_id=sale.terminal_id,
        status=sale.status,
        customer_id=sale.customer_id,
        receipt=calculation.receipt,
        coupon_codes=calculation.coupon_codes,
        certificate_codes=calculation.certificate_codes,
        request_digest=sale.request_digest,
        created_at=outcome.created_at,
        finished_at=None if sale.status is TransactionStatus.PENDING else outcome.created_at,
        confirmation_deadline=sale.confirmation_deadline,
    )


def _new_pockets(membership: Membership | None, effects: Effects) -> tuple[PocketKey, ...]:
    """The pockets `effects` reach that the membership, as read, does not have."""
    if membership is None:
        return ()
    customer_id = membership.customer_id
    known = {(customer_id, pocket.account_type_id) for pocket in membership.pockets}
    return tuple(sorted({change.pocket for change in effects.pockets} - known))


def _read_balances(
    calculation: Calculation, effects: Effects
) -> tuple[tuple[PocketKey, int, int], ...]:
    """(pocket, balance, held) as the calculation read them, for every pocket `effects`
    change: settlement refuses the sale if any of them is different by then."""
    membership = calculation.membership
    assert membership is not None
    read = {
        (membership.customer_id, pocket.account_type_id): (pocket.balance, pocket.held)
        for pocket in (*membership.pockets, *calculation.unopened_pockets)
    }
    touched = sorted({change.pocket for change in effects.pockets})
    return tuple((key, *read.get(key, (0, 0))) for key in touched)


def _with_totals(membership: Membership, outcome: Outcome) -> Membership:
    """The membership with the statistics as they stood right after the operation."""
    totals = outcome.totals
    if totals is None:
        return membership
    return replace(
        membership,
        sales_count=totals.sales_count,
        sales_sum_minor_units=totals.sales_sum,
        last_visit=totals.last_visit,
        participation_confirmed=totals.participation_confirmed,
    )


def _with_balances(membership: Membership, balances: dict[PocketKey, Balance]) -> Membership:
    pockets: list[Pocket] = []
    for pocket in membership.pockets:
        after = balances.get((membership.customer_id, pocket.account_type_id))
        if after is None or (after.balance, after.held) == (pocket.balance, pocket.held):
            pockets.append(pocket)
            continue
        pockets.append(
            Pocket(
                pocket.pocket_id,
                pocket.kind,
                pocket.account_type_id,
                pocket.title,
                after.balance,
                after.held,
                pocket.redemption_limit_without_pin,
                pocket.expiring,
                pocket.next_expiry,
            )
        )
    return replace(membership, pockets=tuple(pockets))
