"""Processing checks: ProcessCheck, one at a time or in groups (ProcessChecks, coalesced
unary calls).

ProcessCheck is idempotent per terminal and check number. The stored transaction for the
key is looked up first: the same request gets the stored answer (a refusal included),
another request under the same key is refused. Otherwise the check is calculated as
CalculateCheck does and handed to the batch writer; the call is answered after its batch
commits. A redemption above a no-PIN limit makes the transaction pending: its debits are
held and a PIN goes to the customer through the outbox (`holds` confirms, resends and
cancels it).

Every PIN sent to a phone counts against one limit per phone and business
(`pin_sends`). When it is used up the sale is still made (the money path never fails for
it) and stays pending, but its PIN is not sent: the terminal asks with ResendCode.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from purse.domain.calculation import new_pockets, sale_effects
from purse.domain.customers import Membership, points_limit, with_points_limit
from purse.domain.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    Unavailable,
    UnexpectedFailure,
)
from purse.domain.moments import check_sale_time
from purse.domain.reasons import ERROR_REASONS
from purse.domain.settlement import Statistics
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import (
    FINAL_REFUSALS,
    Effects,
    SaleReceipt,
    TransactionRecord,
    TransactionStatus,
)
from purse.service.operations import Message, Outcome, Sale
from purse.service.ports import (
    CustomerReads,
    ProgramRules,
    ReceiptCodec,
    TransactionReads,
    Writer,
)
from purse.service.terminal.answers import (
    Answer,
    AnsweredMemberships,
    notice,
    validate_key,
    with_balances,
    with_totals,
)
from purse.service.terminal.calculation import Calculation, CalculationRequest, CheckCalculation
from purse.service.terminal.customer_turns import CustomerTurns
from purse.service.terminal.pins import Pins
from purse.store.failures import DEPENDENCY_FAILURES
from purse.store.postgres.conflicts import CONFLICT_FAILURES, conflict_refusal
from purse.store.postgres.transactions import record_from_row
from purse.store.redis import keys
from purse.store.redis.pins import new_pin

_logger = logging.getLogger(__name__)
_Answered = TypeVar("_Answered", Answer, Answer | None)
# How many times a check is calculated again when a balance it was calculated on changed
# before it could be applied (concurrent checks of one customer).
settlement_attempts_max = 8
settlement_backoff_seconds = 0.001


@dataclass(frozen=True, slots=True)
class ProcessRequest:
    """A check to apply: the POS's check number, the request's digest, the calculation."""

    check_number: str
    request_digest: bytes
    calculation: CalculationRequest


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


class Checkout:
    """ProcessCheck and ProcessChecks: validate, calculate, apply through the writer."""

    def __init__(
        self,
        calculation: CheckCalculation,
        writer: Writer,
        transactions: TransactionReads,
        customers: CustomerReads,
        pins: Pins,
        programs: ProgramRules,
        receipts: ReceiptCodec,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._turns = CustomerTurns()
        self._calculation = calculation
        self._writer = writer
        self._transactions = transactions
        self._customers = customers
        self._memberships = AnsweredMemberships(customers, programs)
        self._pins = pins
        self._receipts = receipts
        self._clock = clock

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
        """Checks of distinct customers, calculated together once their turns are taken.
        Sales that need no PIN go to the writer together and share one wake-up; the rest
        go one by one, and so does a sale sent back to be calculated again."""
        customers = [m.customer_id for m in memberships if isinstance(m, Membership)]
        async with self._turns.taken(terminal.business_id, customers) as shared:
            if shared:
                memberships = await self._reread(terminal, memberships, shared)
            calculations = await self._calculation.calculate_for(
                terminal, [request.calculation for request in requests], memberships
            )
            together = [
                (index, request, calculation)
                for index, (request, calculation) in enumerate(
                    zip(requests, calculations, strict=True)
                )
                if isinstance(calculation, Calculation)
                and not calculation.receipt.confirmation_required
            ]
            applied = await self._apply_together(terminal, [item[1:] for item in together])
            results: list[Answer | DomainError | None] = [None] * len(requests)
            stale: set[int] = set()
            for (index, _, _), answer in zip(together, applied, strict=True):
                results[index] = answer
                if answer is None:
                    stale.add(index)
            alone = [index for index, result in enumerate(results) if result is None]
            answers = await asyncio.gather(
                *(
                    _answer_or_refusal(
                        self._process_one(terminal, requests[i], calculations[i], i in stale)
                    )
                    for i in alone
                )
            )
            for index, answer in zip(alone, answers, strict=True):
                results[index] = answer
            return [result for result in results if result is not None]

    async def _apply_together(
        self,
        terminal: TerminalContext,
        calculated: Sequence[tuple[ProcessRequest, Calculation]],
    ) -> list[Answer | DomainError | None]:
        """The answer or refusal of each calculated sale that needs no PIN, written
        together; None for one whose balances changed meanwhile (to calculate again)."""
        if not calculated:
            return []
        sales = [
            self._sale(terminal, request, calculation, False)[0]
            for request, calculation in calculated
        ]
        outcomes = await self._writer.submit_many(terminal.business_id, sales, None)
        answers: list[Answer | DomainError | None] = []
        for (request, calculation), sale, outcome in zip(calculated, sales, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                answers.append(await _answer_or_refusal(_raise(outcome)))
            else:
                answered = self._answered(terminal, request, calculation, sale, outcome, None)
                answers.append(await _answer_or_refusal(answered))
        return answers

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
        stale: bool = False,
    ) -> Answer:
        """Apply one calculated check. When settlement finds that a balance it was calculated
        on changed meanwhile (a concurrent check of the same customer), it is calculated
        again on what is committed now: such a refusal is never the check's answer.
        `stale`: settlement already found that, so the first attempt calculates again."""
        for attempt in range(int(stale), settlement_attempts_max):
            if attempt:
                # Another process applies checks of this customer too: let it finish first.
                await asyncio.sleep(random.uniform(0, settlement_backoff_seconds * 2**attempt))
                assert isinstance(calculation, Calculation)
                calculation = await self._recalculated(terminal, request, calculation)
            if isinstance(calculation, FailedPrecondition):
                stored = await self._store_refusal(terminal, request, calculation)
                if stored is not None:
                    return stored
            if isinstance(calculation, DomainError):
                raise calculation
            answer = await self._apply(terminal, request, calculation)
            if answer is not None:
                return answer
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
        return await self._answered(terminal, request, calculation, sale, outcome, pin)

    async def _answered(
        self,
        terminal: TerminalContext,
        request: ProcessRequest,
        calculation: Calculation,
        sale: Sale,
        outcome: Outcome,
        pin: str | None,
    ) -> Answer | None:
        """The answer to a sale the writer has settled; None when settlement found a
        balance changed since the calculation read it."""
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
        record = _record(sale, outcome)
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
            reservation = await self._pins.sends.reserve(key)
        except Exception as error:
            # No PIN can be stored without Redis either: the customer asks for one later.
            _logger.warning("could not count a PIN send (%s)", type(error).__name__)
            return None
        return key if reservation.granted else None

    async def _release_pin_send(self, key: str) -> None:
        try:
            await self._pins.sends.release(key)
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
        effects = sale_effects(calculation, pending)
        pin = new_pin() if pending and send_pin else None
        messages: tuple[Message, ...] = ()
        if pin is not None and membership is not None:
            messages = (self._pins.message(membership, pin),)
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
            receipt=self._receipts.encode(_sale_receipt(calculation, request.calculation)),
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
            notice=notice(terminal, membership, receipt) if completed else None,
            new_pockets=new_pockets(membership, effects),
        )
        return sale, pin

    async def _remember_pin(
        self, business_id: int, transaction_id: int, pin: str, lifetime_seconds: int
    ) -> None:
        try:
            await self._pins.codes.remember(business_id, transaction_id, pin, lifetime_seconds)
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
            receipt=None,
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
        return await self._memberships.answer(terminal, record)

    async def _membership_after(
        self, terminal: TerminalContext, calculation: Calculation, outcome: Outcome
    ) -> Membership | None:
        membership = calculation.membership
        if membership is None:
            return None
        known = {pocket.account_type_id for pocket in membership.pockets}
        opened = [
            pocket._replace(pocket_id=outcome.pocket_ids.get(key, 0))
            for pocket in calculation.unopened_pockets
            if (key := (membership.customer_id, pocket.account_type_id)) in outcome.balances
        ]
        known.update(pocket.account_type_id for pocket in opened)
        if any(key[1] not in known for key in outcome.balances):
            fresh = await self._customers.membership(terminal.business_id, membership.customer_id)
            return None if fresh is None else with_points_limit(fresh, points_limit(membership))
        pockets = sorted((*membership.pockets, *opened), key=lambda pocket: pocket.account_type_id)
        membership = membership.with_pockets(tuple(pockets))
        return with_balances(with_totals(membership, outcome), outcome.balances)


async def _answer_or_refusal(answer: Awaitable[_Answered]) -> _Answered | DomainError:
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


async def _raise(failure: BaseException) -> None:
    """What failed a sale's batch, raised where `_answer_or_refusal` maps it."""
    raise failure


def _dependency_unavailable() -> Unavailable:
    return Unavailable(
        "a storage dependency is unavailable; retry later", reason="DEPENDENCY_UNAVAILABLE"
    )


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


def _sale_receipt(calculation: Calculation, request: CalculationRequest) -> SaleReceipt:
    return SaleReceipt(
        calculation.receipt,
        {line.position: line.quantity for line in request.check.lines},
        calculation.coupon_codes,
        calculation.certificate_codes,
    )


def _record(sale: Sale, outcome: Outcome) -> TransactionRecord:
    """The new transaction, its receipt the bytes just stored: the answer parses them."""
    assert outcome.created_at is not None
    return TransactionRecord(
        transaction_id=outcome.transaction_id,
        check_number=sale.check_number,
        terminal_id=sale.terminal_id,
        status=sale.status,
        customer_id=sale.customer_id,
        receipt=sale.receipt,
        request_digest=sale.request_digest,
        created_at=outcome.created_at,
        finished_at=None if sale.status is TransactionStatus.PENDING else outcome.created_at,
        confirmation_deadline=sale.confirmation_deadline,
    )
