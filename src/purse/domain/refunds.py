"""Refunds by lines — pure.

A refund takes back a part of each line of a completed sale: the money the customer paid
at the till, the points and account units the line was paid with (returned to the
customer), and the points the line earned (taken back). Each share is worked out on the
*cumulative* refunded quantity — share = round(v × (before + now) / Q) − round(v × before / Q)
— so that however a line is refunded, in one refund or many, the shares add up exactly
to what the sale applied, never more. Rounding is `amounts.divide_rounded`.

Points earned that the customer has spent meanwhile cannot be taken back: the caller
clamps the take-back to what is available and reports the rest as not recovered.
Achievements are reversed the same way: the free units a line was given return to the
account, and the purchases the line counted are taken back (as far as they are left).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from purse.domain.amounts import divide_rounded
from purse.domain.checks import Receipt, SourceKind
from purse.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument
from purse.domain.transactions import TransactionStatus

refund_lines_max = 1_000


@dataclass(frozen=True, slots=True)
class RefundPlan:
    """What one refund gives back and takes back, before clamping to the balance."""

    quantities: dict[int, int]  # position -> quantity refunded now, thousandths
    refunded_minor_units: int
    points_returned: int
    points_to_recover: int
    accounts_returned: dict[int, int]  # account type id -> amount in its unit
    certificates_returned: dict[int, int]  # certificate id -> minor units
    purchases_to_recover: dict[int, int]  # achievements account type id -> whole units
    # With this refund every line of the sale is refunded whole.
    whole_sale_refunded: bool = False


def _share(value: int, before: int, now: int, whole: int) -> int:
    return divide_rounded(value * (before + now), whole) - divide_rounded(value * before, whole)


def _requested(
    requested: Sequence[tuple[int, int]],
    quantities: Mapping[int, int],
    refunded: Mapping[int, int],
) -> dict[int, int]:
    """position -> quantity to refund now; the whole rest when no line is named."""
    if not requested:
        rest = {p: q - refunded.get(p, 0) for p, q in quantities.items()}
        return {p: q for p, q in rest.items() if q > 0}
    if len(requested) > refund_lines_max:
        raise InvalidArgument(
            f"at most {refund_lines_max} lines", violations=(FieldViolation("lines", "too many"),)
        )
    chosen: dict[int, int] = {}
    violations = []
    for index, (position, quantity) in enumerate(requested):
        path = f"lines[{index}]"
        left = quantities.get(position, 0) - refunded.get(position, 0)
        if position not in quantities:
            violations.append(
                FieldViolation(f"{path}.position", f"the sale has no line {position}")
            )
        elif position in chosen:
            violations.append(FieldViolation(f"{path}.position", "named twice"))
        elif quantity < 0:
            violations.append(
                FieldViolation(f"{path}.quantity_thousandths", "must not be negative")
            )
        elif (quantity or left) > left:
            violations.append(
                FieldViolation(
                    f"{path}.quantity_thousandths", f"only {left} thousandths are left to refund"
                )
            )
        else:
            chosen[position] = quantity or left
    if violations:
        raise InvalidArgument(
            f"{violations[0].field}: {violations[0].description}", violations=tuple(violations)
        )
    return {position: quantity for position, quantity in chosen.items() if quantity > 0}


refundable_statuses = frozenset({TransactionStatus.COMPLETED, TransactionStatus.PARTIALLY_REFUNDED})


def check_refundable(status: TransactionStatus, is_sale: bool = True) -> None:
    """A completed sale, or one refunded in part, can be refunded (further); decided on
    the sale as locked, so a concurrent refund or cancel is seen. An administrator's
    operation (no receipt: `is_sale` False) is not a sale: it is undone by the opposite
    operation, which the audit log then shows too."""
    if status is TransactionStatus.REFUNDED:
        raise FailedPrecondition(
            "everything of this sale is refunded already", reason="ALREADY_REFUNDED"
        )
    if status not in refundable_statuses:
        raise FailedPrecondition(
            f"only a completed sale can be refunded; this one is {status.value}",
            reason="TRANSACTION_NOT_COMPLETED",
        )
    if not is_sale:
        raise FailedPrecondition(
            "an administrator's operation is not refunded or cancelled; make the opposite"
            " operation instead",
            reason="TRANSACTION_NOT_A_SALE",
        )


def plan_refund(
    receipt: Receipt,
    quantities: Mapping[int, int],
    refunded: Mapping[int, int],
    requested: Sequence[tuple[int, int]],
) -> RefundPlan:
    """The refund of `requested` (position, quantity; 0 = the rest of the line) after
    `refunded` (position -> quantity refunded before) of a sale of `quantities`."""
    now = _requested(requested, quantities, refunded)
    if not now:
        raise FailedPrecondition(
            "everything of this sale is refunded already", reason="ALREADY_REFUNDED"
        )
    index_of = {line.position: index for index, line in enumerate(receipt.lines)}
    money = returned = recover = 0
    accounts: dict[int, int] = {}
    certificates: dict[int, int] = {}
    purchases: dict[int, int] = {}
    for position, quantity in now.items():
        line, before, whole = (
            receipt.lines[index_of[position]],
            refunded.get(position, 0),
            quantities[position],
        )
        money += _share(line.to_pay, before, quantity, whole)
        returned += _share(line.points_redeemed, before, quantity, whole)
        recover += _share(line.points_accrued, before, quantity, whole)
        for payment in receipt.payments:
            debit = payment.line_debits[index_of[position]]
            if not debit or payment.source_kind is SourceKind.POINTS:
                continue
            share = _share(debit, before, quantity, whole)
            if payment.source_kind is SourceKind.CERTIFICATE:
                certificates[payment.source_id] = certificates.get(payment.source_id, 0) + share
            else:
                accounts[payment.source_id] = accounts.get(payment.source_id, 0) + share
        for progress in receipt.achievements:
            counted = progress.line_purchases[index_of[position]]
            if counted:
                share = _share(counted, before, quantity, whole)
                purchases[progress.account_id] = purchases.get(progress.account_id, 0) + share
    complete = all(refunded.get(p, 0) + now.get(p, 0) >= q for p, q in quantities.items())
    return RefundPlan(now, money, returned, recover, accounts, certificates, purchases, complete)
