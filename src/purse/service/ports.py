"""What the use cases need from the stores, as small structural interfaces.

Use cases take these Protocols, never the concrete stores, so that they can be run
in-process against fakes. The PostgreSQL and Redis stores satisfy them structurally
(nothing inherits from them); the composition root (`purse.bootstrap`) hands the
concrete stores over, and mypy checks there that each one fits. A Protocol names only
what its use cases call: adding a method a use case needs is a change here first.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from purse.domain.administrators import Actor, AdministratorContext
from purse.domain.calculation import CalculationInputs
from purse.domain.catalogue import Goods, GoodsCategory
from purse.domain.customer_operations import Circumstances
from purse.domain.customers import AccessType, CustomerMatch, Membership, Questionnaire
from purse.domain.identifiers import IdentifierKind
from purse.domain.program import CompiledProgram
from purse.domain.terminals import TerminalContext
from purse.domain.transactions import (
    SaleReceipt,
    StoredReceipt,
    TransactionRecord,
    TransactionStatus,
)
from purse.service.operations import Message, Outcome, Sale, Transition
from purse.store.postgres.refunds import Planner, StoredRefund
from purse.store.redis.balance_cache import Lookup, Ticket
from purse.store.redis.rate_limits import Reservation


class TransactionReads(Protocol):
    """Stored transactions of a business, as records."""

    async def by_id(self, business_id: int, transaction_id: int) -> TransactionRecord | None: ...

    async def by_ids(
        self, business_id: int, transaction_ids: Sequence[int]
    ) -> list[TransactionRecord]: ...

    async def by_check_number(
        self, business_id: int, terminal_id: int, check_number: str
    ) -> TransactionRecord | None: ...

    async def by_check_numbers(
        self, business_id: int, terminal_id: int, check_numbers: Sequence[str]
    ) -> dict[str, TransactionRecord]: ...

    async def page(
        self,
        business_id: int,
        limit: int,
        after: tuple[datetime, int] | None,
        customer_id: int | None,
        terminal_id: int | None,
        status: TransactionStatus | None,
        created_from: datetime | None,
        created_before: datetime | None,
    ) -> list[TransactionRecord]: ...


class TransactionMessages(Protocol):
    """A message (a resent PIN) written to the outbox for a stored transaction."""

    async def add_message(
        self, business_id: int, transaction_id: int, message: Message
    ) -> None: ...


class Sweeps(Protocol):
    """What the periodic sweeps find: overdue holds, special points past their expiry."""

    async def overdue_holds(self, limit: int) -> list[tuple[int, int]]: ...

    # Retried on a deadlock by a decorator: an awaitable, not declared a coroutine.
    def write_off_expired_lots(
        self, limit: int
    ) -> Awaitable[tuple[int, list[tuple[int, int]]]]: ...


class RefundWrites(Protocol):
    """Refunds, each under its refund number, planned against the locked sale."""

    async def stored(
        self, business_id: int, terminal_id: int, refund_number: str
    ) -> StoredRefund | None: ...

    # Retried on a deadlock by a decorator: an awaitable, not declared a coroutine.
    def refund(
        self,
        business_id: int,
        transaction_id: int,
        terminal_id: int,
        refund_number: str,
        request_digest: bytes,
        planner: Planner,
        cancel: bool,
    ) -> Awaitable[StoredRefund | None]: ...


class CustomerReads(Protocol):
    """A customer's membership in a business, as committed now."""

    async def membership(self, business_id: int, customer_id: int) -> Membership | None: ...


class Customers(CustomerReads, Protocol):
    """What identification and registration need: lookups, enrolment, identifiers."""

    async def membership_by_phone(self, business_id: int, phone: str) -> Membership | None: ...

    async def memberships_by_phones(
        self, business_id: int, phones: Sequence[str]
    ) -> dict[str, Membership]: ...

    async def membership_by_identifier(
        self, business_id: int, kind: IdentifierKind, value: str
    ) -> Membership | None: ...

    async def enrol(
        self,
        business_id: int,
        phone: str,
        access_type: AccessType,
        questionnaire: Questionnaire | None = None,
    ) -> tuple[int, bool]: ...

    async def add_identifier(
        self, business_id: int, customer_id: int, kind: IdentifierKind, value: str
    ) -> int | None: ...

    async def remove_identifier(
        self, business_id: int, customer_id: int, kind: IdentifierKind, value: str
    ) -> bool: ...

    async def search_by_phone_prefix(
        self, business_id: int, phone_prefix: str, limit: int
    ) -> list[CustomerMatch]: ...

    async def match(self, business_id: int, membership: Membership) -> CustomerMatch: ...

    async def customer_phone(self, customer_id: int) -> str | None: ...


class MembershipCache(Protocol):
    """Cached memberships: a lookup, and a fill after a miss (forgetting is the unit of
    work's)."""

    async def lookup(self, business_id: int, by: str | int) -> Lookup: ...

    async def remember(
        self, business_id: int, membership: Membership, by: str | int, ticket: Ticket | None
    ) -> bool: ...


class PinCodes(Protocol):
    """PINs of pending transactions, with their wrong attempts."""

    async def remember(
        self, business_id: int, transaction_id: int, pin: str, lifetime_seconds: int
    ) -> None: ...

    async def check(self, business_id: int, transaction_id: int, pin: str) -> tuple[str, int]: ...

    async def forget(self, business_id: int, transaction_id: int) -> None: ...


class Limit(Protocol):
    """A counted limit per key and window (PIN sends, steward code guesses)."""

    async def reserve(self, key: str) -> Reservation: ...

    async def take(self, key: str, message: str, reason: str) -> Reservation: ...

    async def release(self, key: str) -> None: ...

    def exhausted_by(self, reservation: Reservation) -> bool: ...


class StewardCodeIssuer(Protocol):
    """Single-use steward codes naming a customer."""

    async def issue(self, business_id: int, customer_id: int) -> tuple[str, float]: ...

    async def redeem(self, business_id: int, code: str) -> tuple[str, int]: ...


class CalculationInputReads(Protocol):
    """What a group of checks is calculated on, read together."""

    async def inputs(
        self,
        business_id: int,
        program_id: int,
        customer_ids: Sequence[int],
        coupon_codes: Sequence[str],
        certificate_codes: Sequence[str],
        uncategorised_product_codes: Sequence[str],
        goods_category_codes: Sequence[str] = (),
    ) -> CalculationInputs: ...


class ProgramRules(Protocol):
    """The terminal's program, compiled, and its points pocket's no-PIN limit."""

    async def compiled(
        self, business_id: int, program_id: int, currency: str, version: int | None = None
    ) -> CompiledProgram: ...

    async def points_limit(self, terminal: TerminalContext) -> int | None: ...


class Writer(Protocol):
    """Group commit: an operation in, its outcome out once its batch has committed."""

    async def submit(
        self, business_id: int, operation: Sale | Transition, timeout_seconds: float | None
    ) -> Outcome: ...

    async def submit_many(
        self,
        business_id: int,
        operations: Sequence[Sale | Transition],
        timeout_seconds: float | None,
    ) -> list[Outcome | BaseException]:
        """Each operation's outcome, or what failed its batch, in the order given."""
        ...


class BackgroundWriter(Protocol):
    """The batch writer's background lane: a bulk action's chunk, behind the tills."""

    async def submit_background(
        self, business_id: int, operations: Sequence[Sale | Transition]
    ) -> list[Outcome | BaseException]: ...


class ReceiptCodec(Protocol):
    """A sale's receipt as stored (`TransactionRecord.receipt`), which the use cases never
    look into. The API layer implements it: the stored bytes hold the receipt as the
    terminal is answered with it, built once before the sale is written."""

    def encode(self, sale: SaleReceipt) -> bytes: ...

    def decode(self, stored: StoredReceipt) -> SaleReceipt: ...


class SaleReversals(Protocol):
    """Cancelling a completed sale of today, as a whole refund (the refunds use case)."""

    async def cancel_completed(
        self, terminal: TerminalContext, record: TransactionRecord
    ) -> None: ...


class BatchApply(Protocol):
    """One business's operations in one database transaction: outcomes aligned with
    `sales` and with `transitions`."""

    async def apply(
        self, business_id: int, sales: Sequence[Sale], transitions: Sequence[Transition]
    ) -> tuple[list[Outcome], list[Outcome]]: ...


class BalanceForgets(Protocol):
    """The balance cache, told after a commit (only the unit of work tells it)."""

    async def forget(
        self, business_id: int, customer_ids: Collection[int], hints: Collection[str] = ()
    ) -> None: ...


class TerminalReads(Protocol):
    """Terminals, by login (with the password hash), by id, by API key digest."""

    async def for_sign_in(self, login: str) -> tuple[TerminalContext, str] | None: ...

    async def by_id(self, business_id: int, terminal_id: int) -> TerminalContext | None: ...

    async def by_api_key(self, key_digest: bytes) -> TerminalContext | None: ...


class AdministratorReads(Protocol):
    """Administrators, by API key digest."""

    async def by_api_key(self, key_digest: bytes) -> AdministratorContext | None: ...

    async def by_id(
        self, business_id: int, administrator_id: int
    ) -> AdministratorContext | None: ...

    async def for_sign_in(self, login: str) -> tuple[AdministratorContext, str] | None: ...


class ProgramDocuments(Protocol):
    """A program's stored rules document and its version; replaced in a back-office
    writing (with its audit entry)."""

    def writing(self, actor: Actor) -> AbstractAsyncContextManager[Writing]: ...

    async def rules(
        self, business_id: int, program_id: int
    ) -> tuple[int, dict[str, Any]] | None: ...

    async def version(self, business_id: int, program_id: int) -> int | None: ...

    async def replace_rules(
        self, writing: Writing, program_id: int, document: dict[str, Any]
    ) -> Row: ...

    async def live_goods_categories(self, writing: Writing, codes: Collection[str]) -> set[str]: ...


class GoodsReads(Protocol):
    """Pages of a business's goods and goods categories, by code."""

    async def goods_page(
        self, business_id: int, after: str | None, limit: int, goods_category_code: str | None
    ) -> list[Goods]: ...

    async def goods_categories_page(
        self, business_id: int, after: str | None, limit: int
    ) -> list[GoodsCategory]: ...


class CustomerOperationReads(Protocol):
    """What an administrator's operation on one customer is decided on, read together."""

    async def circumstances(
        self,
        business_id: int,
        terminal_id: int,
        customer_id: int,
        account_type_id: int | None,
        series_id: int | None,
    ) -> Circumstances: ...


class UniqueConflict(Exception):
    """Raised by a store when a write breaks a unique constraint (the name says which);
    the use case says which field that was and refuses the request."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


_identifier = re.compile(r"[a-z_]{1,63}")


@dataclass(frozen=True, slots=True)
class Table:
    """A table the back office writes: its name, its key after business_id, the columns
    that never reach the audit log, and the column that is set once a row is no longer
    offered (archived; revoked, for keys). Names come from constants, never input."""

    name: str
    key: str
    secret_columns: frozenset[str] = frozenset()
    archived_column: str = "archived_at"

    def __post_init__(self) -> None:
        assert all(
            _identifier.fullmatch(name) for name in (self.name, self.key, self.archived_column)
        )


# A row the back office reads or writes, by column name.
Row = Mapping[str, Any]


class Writing(Protocol):
    """One open back-office transaction (`purse.store.postgres.back_office.Writing`)."""

    actor: Actor

    async def locked(self, table: Table, key: object) -> Row | None: ...

    async def inserted(self, table: Table, values: Mapping[str, object]) -> Row: ...

    async def updated(self, table: Table, key: object, values: Mapping[str, object]) -> Row: ...

    async def archived(self, table: Table, key: object) -> Row: ...

    async def record(
        self, action: str, table: Table, resource_id: object, before: Row | None, after: Row | None
    ) -> None: ...


class BackOfficeWriting(Protocol):
    """Opens back-office transactions: the change and its audit entry commit together."""

    def writing(self, actor: Actor) -> AbstractAsyncContextManager[Writing]: ...

    def founding(self, values: Mapping[str, object]) -> AbstractAsyncContextManager[Writing]: ...


class BackOfficeReads(Protocol):
    """Reads rows of one business by key, and keyset pages of them."""

    async def row(self, table: Table, business_id: int, key: object) -> Row | None: ...

    async def page(
        self,
        table: Table,
        business_id: int,
        after_key: int | str,
        limit: int,
        show_archived: bool,
        equal: Mapping[str, object] | None = None,
    ) -> Sequence[Row]: ...
