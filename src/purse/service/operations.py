"""The operations the batch writer applies, and what it answers for each.

A use case builds a `Sale` (a new transaction) or a `Transition` (a pending one moving
on) with the effects settlement is to apply; the writer answers each with an `Outcome`.
`Message`s and the `Notice` go to the outbox in the same database transaction as the
operation they belong to; `Statistics` are the membership's deltas, applied with it (they
and `MembershipTotals` are settlement's own: `purse.domain.settlement`); an `AuditNote`
(an administrator's operation) goes to the audit log with it, when it applies. The store
(`purse.store.postgres.batches`) only turns these into SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from purse.domain.administrators import Actor
from purse.domain.settlement import MembershipTotals, Statistics
from purse.domain.transactions import Balance, Effects, PocketKey, Refusal, TransactionStatus


@dataclass(frozen=True, slots=True)
class Message:
    """A message to write to the outbox with the operation; `language` is the one the
    sending business's membership records (never another business's)."""

    customer_id: int
    channel: str
    purpose: str
    phone: str
    language: str
    body: str
    sealed_secret: bytes | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """A transaction notification to write once the points balance after is known, in the
    language of the membership of the business that sold, on the program's channel."""

    customer_id: int
    channel: str
    phone: str
    language: str
    points_accrued: int
    points_redeemed: int
    # A bulk action's message: its purpose, and its text from the balance after of the
    # pocket of `account_type_id` (None: the program's notice text, from the points).
    purpose: str = "transaction"
    text: Callable[[int], str] | None = None
    account_type_id: int = 0


# (language, points accrued, points redeemed, balance after) -> text; all points in hundredths
NoticeText = Callable[[str, int, int, int], str]


@dataclass(frozen=True, slots=True)
class AuditNote:
    """The audit log's entry for an administrator's operation, written in the same database
    transaction when the operation applies. The store adds to `after` the transaction's id
    and the balances the operation changed, and makes `before` their balances before."""

    actor: Actor
    action: str
    resource: str
    resource_id: str
    after: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sale:
    """A new transaction. `effects` are applied unless settlement refuses them."""

    terminal_id: int
    point_of_sale_id: int
    check_number: str
    request_digest: bytes
    customer_id: int | None
    status: TransactionStatus
    # The receipt as stored (`ports.ReceiptCodec`); None for a check refused for good and
    # for an administrator's operation.
    receipt: bytes | None
    sum_minor_units: int
    effects: Effects
    confirmation_deadline: datetime | None = None
    sale_time: datetime | None = None
    statistics: Statistics | None = None
    messages: tuple[Message, ...] = ()
    # When the sale applies, tell the customer what it did (text from the balance after).
    notice: Notice | None = None
    # For a sale stored as rejected: the refusal a retry gets back.
    refusal: dict[str, Any] | None = None
    # Pockets the effects reach that the customer may not have yet; None = any of them.
    new_pockets: tuple[PocketKey, ...] | None = None
    # An administrator's operation: recorded in the audit log when it applies; what it
    # did is kept with its transaction (`operation_document`), as a check keeps its receipt.
    audit: AuditNote | None = None
    operation: dict[str, Any] | None = None
    # Settlement's refusals are the answer, stored for the key (FINAL_REFUSALS are for
    # every sale): an operation with nothing calculated has nothing to calculate again.
    refusals_final: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """A pending transaction moving on: confirmed, cancelled, expired or locked."""

    transaction_id: int
    expected: TransactionStatus
    status: TransactionStatus
    effects: Effects
    customer_id: int | None = None
    statistics: Statistics | None = None
    messages: tuple[Message, ...] = ()
    notice: Notice | None = None
    # As for a sale.
    new_pockets: tuple[PocketKey, ...] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one operation.

    Applied: `transaction_id` and `created_at` are set, `refusal` is None. Refused by
    settlement: `refusal` is set (a sale is then stored as rejected). A sale whose key
    was claimed before: `existing` is True and `stored` holds the stored row.
    """

    transaction_id: int = 0
    created_at: datetime | None = None
    refusal: Refusal | str | None = None
    existing: bool = False
    stored: asyncpg.Record | None = None
    balances: dict[PocketKey, Balance] = field(default_factory=dict)
    pocket_ids: dict[PocketKey, int] = field(default_factory=dict)
    # Set for a sale that shared its key with an earlier one in the same batch.
    leader_digest: bytes | None = None
    # The customer's statistics right after this operation (None without a customer).
    totals: MembershipTotals | None = None
