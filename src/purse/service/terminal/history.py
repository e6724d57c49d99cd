"""Reading transactions at a terminal: by id, by check number, a page at a time.

Everything is scoped to the terminal's business. A page token is opaque to the caller
(the last record's creation time and id); a token this server did not give, or one out
of any range a transaction can have, is refused naming `page_token`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from purse.domain import moments
from purse.domain.errors import NotFound, invalid
from purse.domain.pages import page_limit
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import TransactionRecord, TransactionStatus
from purse.service.ports import TransactionReads
from purse.service.terminal.answers import validate_key
from purse.store.postgres.transactions import list_page_size_max

# Longer page tokens are never ones this server gave.
page_token_characters_max = 128
# The largest id PostgreSQL's bigint holds.
transaction_id_max = 2**63 - 1
list_page_size_default = 50


@dataclass(frozen=True, slots=True)
class ListFilter:
    customer_id: int | None = None
    terminal_id: int | None = None
    status: TransactionStatus | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None


async def find_transaction(
    transactions: TransactionReads, terminal: TerminalContext, transaction_id: int
) -> TransactionRecord:
    """The transaction of the terminal's business; NotFound when there is none."""
    record = await transactions.by_id(terminal.business_id, transaction_id)
    if record is None:
        raise NotFound("no such transaction in this business", reason="TRANSACTION_NOT_FOUND")
    return record


class History:
    """The terminal's reads of stored transactions."""

    def __init__(self, transactions: TransactionReads) -> None:
        self._transactions = transactions

    async def get(self, terminal: TerminalContext, transaction_id: int) -> TransactionRecord:
        return await find_transaction(self._transactions, terminal, transaction_id)

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
        self, business_id: int, page_size: int, page_token: str, filters: ListFilter
    ) -> tuple[list[TransactionRecord], str]:
        """A page of the business's transactions (terminals and the control panel)."""
        limit = page_limit(page_size, list_page_size_default, list_page_size_max)
        records = await self._transactions.page(
            business_id, limit, _after(page_token), filters.customer_id,
            filters.terminal_id, filters.status, filters.created_from, filters.created_before,
        )  # fmt: skip
        next_token = _token(records[-1]) if len(records) == limit else ""
        return records, next_token


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
