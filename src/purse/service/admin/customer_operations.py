"""Operations on one customer from the control panel: points, accounts, coupons.

`CustomerOperations.apply` makes one `CustomerOperation` (see
`purse.domain.customer_operations`) on one customer as a transaction of a terminal the
administrator chooses, so that it shows in that terminal's transaction log, through the
batch writer and settlement a sale goes through. The caller has checked the
administrator's role (Access.CHANGE); this use case takes the `Actor` the audit log names.

* A malformed key or operation is refused (InvalidArgument) before anything is read.
* The key is the transaction's check number (`~admin:<key>`) on the chosen terminal: a
  key used before answers as it did the first time — the same operation on the same
  customer gets the first result (or the first refusal), and nothing is applied again;
  another operation is refused IDEMPOTENCY_KEY_REUSED.
* The terminal must be one of the actor's business (NotFound), neither archived nor
  disabled (FailedPrecondition); the customer, the account type and the coupon series
  must be of the business (NotFound). Nothing is stored for these: the key stays free.
* A refusal of the operation itself — a blacklisted customer, an archived account type,
  an account kind that is not credited by hand — is stored as the key's answer (a
  rejected transaction), as a till's business refusals are; so are settlement's:
  insufficient points or balance, a balance past its largest, a coupon series exhausted
  or archived, a coupon code taken. A code taken by a coupon committed meanwhile is
  refused ALREADY_EXISTS without being stored.
* An applied operation writes its audit log entry in the same database transaction, and
  the balance cache forgets the customer before this returns (the writer's unit of
  work), so a terminal that identifies the customer next sees the change.

The result is the transaction as stored, the operation as applied (a coupon with the code
it was given) and the customer's membership as committed now.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from purse.domain.administrators import Actor
from purse.domain.customer_operations import (
    AccountCredit,
    AccountDebit,
    CouponIssue,
    CustomerOperation,
    PointsDebit,
    TerminalState,
    check_number_of,
    effects_of_operation,
    generated_coupon_code_alphabet,
    generated_coupon_code_characters,
    operation_document,
    operation_refusal,
    request_digest,
    stored_refusal,
    terminal_refusal,
    validate_operation,
    with_expiry,
)
from purse.domain.customers import Membership
from purse.domain.errors import Aborted, AlreadyExists, FailedPrecondition
from purse.domain.transactions import Effects, TransactionRecord, TransactionStatus
from purse.service.operations import AuditNote, Sale
from purse.service.ports import (
    CustomerOperationReads,
    CustomerReads,
    TransactionReads,
    UniqueConflict,
    Writer,
)
from purse.store.postgres.transactions import record_from_row


@dataclass(frozen=True, slots=True)
class OperationResult:
    """An applied operation: its transaction as stored, the operation as applied (a coupon
    with its code), and the customer's membership as committed now."""

    transaction: TransactionRecord
    operation: CustomerOperation
    membership: Membership | None


def generated_coupon_code() -> str:
    return "".join(
        secrets.choice(generated_coupon_code_alphabet)
        for _ in range(generated_coupon_code_characters)
    )


class CustomerOperations:
    """Credit or debit points and accounts, issue coupons: one customer at a time."""

    def __init__(
        self,
        reads: CustomerOperationReads,
        writer: Writer,
        transactions: TransactionReads,
        customers: CustomerReads,
        clock: Callable[[], float] = time.time,
        new_coupon_code: Callable[[], str] = generated_coupon_code,
    ) -> None:
        self._reads = reads
        self._writer = writer
        self._transactions = transactions
        self._customers = customers
        self._clock = clock
        self._new_coupon_code = new_coupon_code

    async def apply(
        self,
        actor: Actor,
        terminal_id: int,
        idempotency_key: str,
        customer_id: int,
        operation: CustomerOperation,
    ) -> OperationResult:
        """Make `operation` on the customer through the terminal, once per key (see the
        module's docstring for every answer)."""
        check_number = check_number_of(idempotency_key)
        now = datetime.fromtimestamp(self._clock(), UTC)
        validate_operation(operation, now)
        digest = request_digest(customer_id, operation)
        operation = with_expiry(operation, now)
        business_id = actor.business_id
        stored, circumstances = await asyncio.gather(
            self._transactions.by_check_number(business_id, terminal_id, check_number),
            self._reads.circumstances(
                business_id, terminal_id, customer_id, *_named_ids(operation)
            ),
        )
        if stored is not None:
            return await self._answer(business_id, stored, digest)
        refusal = terminal_refusal(circumstances.terminal)
        if refusal is not None:
            raise refusal
        assert circumstances.terminal is not None
        refusal = operation_refusal(operation, circumstances)
        if refusal is not None and not isinstance(refusal, FailedPrecondition):
            raise refusal
        if isinstance(operation, CouponIssue) and operation.code is None:
            operation = replace(operation, code=self._new_coupon_code())
        sale = _sale(
            actor,
            circumstances.terminal,
            terminal_id,
            check_number,
            digest,
            customer_id,
            operation,
            refusal,
        )
        try:
            outcome = await self._writer.submit(business_id, sale, None)
        except UniqueConflict as conflict:
            # A coupon with this code was committed after the batch read the codes taken.
            raise AlreadyExists(
                "a coupon of this business has this code already", reason="CODE_TAKEN"
            ) from conflict
        if outcome.existing:
            if outcome.stored is None:  # claimed by a check that was then released
                raise _concurrent_update()
            return await self._answer(business_id, record_from_row(outcome.stored), digest)
        # Read back as stored: a request that shared its key with another in the same
        # batch answers with what that one stored (its coupon code, say).
        record = await self._transactions.by_id(business_id, outcome.transaction_id)
        if record is None:
            raise _concurrent_update()
        return await self._answer(business_id, record, digest)

    async def _answer(
        self, business_id: int, record: TransactionRecord, digest: bytes
    ) -> OperationResult:
        """What the key's stored transaction answers with: this request's result, its
        refusal, or IDEMPOTENCY_KEY_REUSED for another request (a till's check too)."""
        if record.request_digest != digest or record.operation is None:
            raise AlreadyExists(
                "this idempotency key was already used for a different operation",
                reason="IDEMPOTENCY_KEY_REUSED",
            )
        if record.status is TransactionStatus.REJECTED:
            raise stored_refusal(record.refusal or {})
        membership = None
        if record.customer_id is not None:
            membership = await self._customers.membership(business_id, record.customer_id)
        return OperationResult(record, record.operation, membership)


def _named_ids(operation: CustomerOperation) -> tuple[int | None, int | None]:
    """(account type id, coupon series id) the operation names."""
    if isinstance(operation, AccountCredit | AccountDebit):
        return operation.account_type_id, None
    if isinstance(operation, CouponIssue):
        return None, operation.series_id
    return None, None


def _sale(
    actor: Actor,
    terminal: TerminalState,
    terminal_id: int,
    check_number: str,
    digest: bytes,
    customer_id: int,
    operation: CustomerOperation,
    refusal: FailedPrecondition | None,
) -> Sale:
    """The operation as a transaction of the terminal; with `refusal`, stored as rejected."""
    document = operation_document(operation)
    sale = Sale(
        terminal_id=terminal_id,
        point_of_sale_id=terminal.point_of_sale_id,
        check_number=check_number,
        request_digest=digest,
        customer_id=customer_id,
        status=TransactionStatus.COMPLETED,
        # No receipt: readers show the transaction without one; refunds refuse it.
        receipt=None,
        sum_minor_units=0,
        effects=Effects(),
        operation=document,
    )
    if refusal is not None:
        return replace(
            sale,
            status=TransactionStatus.REJECTED,
            refusal={
                "reason": refusal.reason,
                "message": refusal.message,
                "violations": [[v.field, v.description] for v in refusal.violations],
            },
        )
    return replace(
        sale,
        effects=effects_of_operation(operation, customer_id),
        # A debit never opens a pocket: without one there is nothing to debit.
        new_pockets=() if isinstance(operation, PointsDebit | AccountDebit) else None,
        audit=AuditNote(
            actor,
            operation.kind.value,
            operation.kind.resource,
            str(customer_id),
            {"operation": document, "terminal_id": terminal_id, "check_number": check_number},
        ),
        refusals_final=True,
    )


def _concurrent_update() -> Aborted:
    return Aborted(
        "a concurrent change got in the way; send the operation again",
        reason="CONCURRENT_UPDATE",
    )
