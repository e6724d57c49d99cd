"""What a transaction call of the terminal contract answers, and the pieces every
terminal transaction use case shares.

An `Answer` is a transaction and the customer's membership as it stands after it, as an
answer shows it: as committed, with the program's no-PIN limit on the points pocket
(`AnsweredMemberships`). Check numbers and refund numbers are 1 to 64 printable
characters (`validate_key`). The rest work out, without I/O, what an operation tells the
customer (`notice`) and the membership right after it (`with_totals`, `with_balances`);
which pockets an operation may open is `purse.domain.calculation.new_pockets`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from purse.domain.checks import Receipt
from purse.domain.customers import Membership, Pocket, with_points_limit
from purse.domain.errors import invalid
from purse.domain.terminals import NoticeChannel, TerminalContext
from purse.domain.transactions import Balance, PocketKey, TransactionRecord
from purse.service.operations import Notice, Outcome
from purse.service.ports import CustomerReads, ProgramRules

check_number_characters_max = 64


@dataclass(frozen=True, slots=True)
class Answer:
    """A transaction and the customer's membership as it stands after it."""

    record: TransactionRecord
    membership: Membership | None


def validate_key(value: str, field: str) -> None:
    """Check numbers and refund numbers: 1 to 64 printable characters."""
    if not 1 <= len(value) <= check_number_characters_max or not value.isprintable():
        raise invalid(field, f"1 to {check_number_characters_max} printable characters")


class AnsweredMemberships:
    """Memberships as answers show them."""

    def __init__(self, customers: CustomerReads, programs: ProgramRules) -> None:
        self._customers = customers
        self._programs = programs

    async def of(self, terminal: TerminalContext, customer_id: int | None) -> Membership | None:
        """The customer's membership as committed now, as an answer shows it: with the
        program's no-PIN limit on the points pocket; None without a customer."""
        if customer_id is None:
            return None
        membership, limit = await asyncio.gather(
            self._customers.membership(terminal.business_id, customer_id),
            self._programs.points_limit(terminal),
        )
        return None if membership is None else with_points_limit(membership, limit)

    async def answer(self, terminal: TerminalContext, record: TransactionRecord) -> Answer:
        """The record, with its customer's membership as committed now."""
        return Answer(record, await self.of(terminal, record.customer_id))


def notice(
    terminal: TerminalContext, membership: Membership | None, receipt: Receipt
) -> Notice | None:
    """What the customer is told of a sale that moved points, on the channel of the
    terminal's program (none when the program tells nothing)."""
    channel = terminal.notice_channel
    if membership is None or channel is NoticeChannel.NONE:
        return None
    if not (receipt.points_accrued or receipt.points_redeemed):
        return None
    return Notice(
        membership.customer_id, channel.value, membership.phone, membership.language,
        receipt.points_accrued, receipt.points_redeemed,
    )  # fmt: skip


def with_totals(membership: Membership, outcome: Outcome) -> Membership:
    """The membership with the statistics as they stood right after the operation."""
    totals = outcome.totals
    if totals is None:
        return membership
    return membership.with_statistics(
        totals.sales_count, totals.sales_sum, totals.last_visit, totals.participation_confirmed
    )


def with_balances(membership: Membership, balances: dict[PocketKey, Balance]) -> Membership:
    """The membership with its pockets' balances as `balances` has them."""
    pockets: list[Pocket] = []
    for pocket in membership.pockets:
        after = balances.get((membership.customer_id, pocket.account_type_id))
        if after is None or (after.balance == pocket.balance and after.held == pocket.held):
            pockets.append(pocket)
        else:
            pockets.append(pocket.with_amounts(after.balance, after.held))
    return membership.with_pockets(tuple(pockets))
