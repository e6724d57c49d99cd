"""Bulk actions from the control panel: dry run, start, watch, cancel.

* `dry_run` validates the action (InvalidArgument naming `action....` or `terminal_id`),
  checks what it names exists in the business — the terminal credits and coupons go
  through (TERMINAL_NOT_FOUND, ARCHIVED, OPERATION_TERMINAL_DISABLED), the account type,
  the coupon series, the category, the news item — then freezes the selection (a
  filter and a scope, ids among them, as the customer list selects: an id of another
  business selects no one) as a draft operation, counts what the action would do
  (`purse.domain.bulk_actions.estimate`, each member's message rendered as it would be
  sent), and answers the draft with a token. A selection larger than
  `bulk_customers_max` is refused SELECTION_TOO_LARGE; a coupon issue the series' cap
  cannot hold is refused COUPON_SERIES_EXHAUSTED, both before anything runs.
* `start` runs a draft when given its token (compared by digest, in constant time) before
  the draft expires: NOT_FOUND BULK_OPERATION_NOT_FOUND for an operation of another
  business, FAILED_PRECONDITION BULK_TOKEN_INVALID for a wrong token,
  BULK_OPERATION_NOT_DRAFT when it started, finished or expired already. The runner
  (`purse.service.bulk_runner`) does the work; this returns at once.
* `cancel` stops a draft or a running operation: members not reached stay untouched.
* Start, cancel and the finish are recorded in the audit log; so is every member's
  credit, coupon or change, as a single operation of the control panel is.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from purse.domain.administrators import Actor
from purse.domain.bulk_actions import (
    BulkAction,
    CategoryChange,
    Estimate,
    NewsNotice,
    OperationState,
    Recipient,
    action_document,
    added,
    bulk_customers_max,
    draft_seconds_max,
    estimate,
    estimate_document,
    token_digest,
    validate_action,
)
from purse.domain.checks import AccessType
from purse.domain.customer_operations import (
    AccountCredit,
    CouponIssue,
    PointsCredit,
    operation_refusal,
    terminal_refusal,
)
from purse.domain.errors import FailedPrecondition, NotFound, invalid
from purse.domain.pages import page_limit, page_start, page_token
from purse.domain.segments import CompiledSql, Filter
from purse.notify.texts import check_bulk_template
from purse.service.admin.bulk_texts import member_text
from purse.service.admin.news import NewsItem
from purse.service.admin.segments import SegmentSelection
from purse.service.ports import CustomerOperationReads
from purse.store.postgres.bulk_actions import Draft, MemberFacts, OperationRow
from purse.store.postgres.customer_list import ListScope

operations_page_size_default: Final = 20
operations_page_size_max: Final = 200


class Selections(Protocol):
    """The customer list's selection as a statement of customer ids
    (`purse.store.postgres.customer_list.selection_sql`)."""

    def __call__(
        self, business_id: int, scope: ListScope, tree: Filter | None, now: datetime
    ) -> CompiledSql: ...


class BulkStore(Protocol):
    """`purse.store.postgres.bulk_actions.BulkActionStore`."""

    async def create_draft(self, draft: Draft, members: CompiledSql) -> tuple[int, int]: ...

    def members(
        self, business_id: int, operation_id: int, pending_only: bool
    ) -> AsyncIterator[list[MemberFacts]]: ...

    async def set_estimate(
        self, business_id: int, operation_id: int, estimate: dict[str, int]
    ) -> OperationRow: ...

    async def operation(self, business_id: int, operation_id: int) -> OperationRow | None: ...

    async def page(self, business_id: int, before_id: int, limit: int) -> list[OperationRow]: ...

    async def start(
        self, business_id: int, operation_id: int, now: datetime, audit: dict[str, Any],
        actor: Actor,
    ) -> OperationRow | None: ...  # fmt: skip

    async def cancel(
        self, business_id: int, operation_id: int, now: datetime, actor: Actor
    ) -> OperationRow | None: ...

    async def category_live(self, business_id: int, category_id: int) -> bool: ...

    async def coupons_left(self, business_id: int, series_id: int) -> int | None: ...


class NewsReads(Protocol):
    """`purse.service.admin.news.NewsItems`: the item, or NotFound NEWS_ITEM_NOT_FOUND
    unless it is the business's, live and published at `now`."""

    async def published(self, business_id: int, news_item_id: int, now: datetime) -> NewsItem: ...


class SegmentReads(Protocol):
    """`purse.service.admin.segments.SavedSegments`: a live segment's filter and scope,
    or NotFound SEGMENT_NOT_FOUND."""

    async def selection(self, business_id: int, segment_id: int) -> SegmentSelection: ...


@dataclass(frozen=True, slots=True)
class Selection:
    """Whom a bulk action is for: the customer list's filter within its scope, or a saved
    segment's (`segment_id`, then without filter and scope)."""

    scope: ListScope
    tree: Filter | None
    # The selection as given, kept with the operation to show it again.
    document: dict[str, Any]
    segment_id: int = 0


@dataclass(frozen=True, slots=True)
class DryRun:
    operation: OperationRow
    token: str


def _now() -> datetime:
    return datetime.now(UTC)


class BulkActions:
    def __init__(
        self,
        store: BulkStore,
        selections: Selections,
        references: CustomerOperationReads,
        news: NewsReads | None,
        segments: SegmentReads | None,
        segment_price_minor_units: int,
        wake_runner: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._selections = selections
        self._references = references
        self._news = news
        self._segments = segments
        self._segment_price = segment_price_minor_units
        self._wake_runner = wake_runner
        self._clock = clock

    async def dry_run(
        self, actor: Actor, action: BulkAction, selection: Selection, terminal_id: int
    ) -> DryRun:
        now = self._clock()
        validate_action(action, now)
        if action.message is not None:
            check_bulk_template(action.message.template, "action.message.template")
        if action.kind.through_ledger and terminal_id <= 0:
            raise invalid("terminal_id", "the terminal credits and coupons go through")
        await self._check_references(actor.business_id, action, terminal_id, now)
        scope, tree = selection.scope, selection.tree
        if selection.segment_id:
            if self._segments is None:
                raise NotFound("this server keeps no saved segments", reason="SEGMENT_NOT_FOUND")
            saved = await self._segments.selection(actor.business_id, selection.segment_id)
            scope, tree = saved.scope, saved.filter
        members = self._selections(actor.business_id, scope, tree, now)
        token = secrets.token_urlsafe(24)
        draft = Draft(
            business_id=actor.business_id,
            actor=actor,
            action=action_document(action),
            selection=selection.document,
            terminal_id=terminal_id if action.kind.through_ledger else None,
            token_digest=token_digest(token),
            draft_expires_at=now + timedelta(seconds=draft_seconds_max),
        )
        operation_id, total = await self._store.create_draft(draft, members)
        if total > bulk_customers_max:
            await self._store.cancel(actor.business_id, operation_id, now, actor)
            raise FailedPrecondition(
                f"the selection holds {total} customers, more than {bulk_customers_max}: narrow it",
                reason="SELECTION_TOO_LARGE",
            )
        figures = await self._estimate(actor, operation_id, action)
        if isinstance(action.change, CouponIssue):
            left = await self._store.coupons_left(actor.business_id, action.change.series_id)
            if left is not None and left < figures.changed:
                await self._store.cancel(actor.business_id, operation_id, now, actor)
                raise FailedPrecondition(
                    f"the series allows {left} more coupons; the selection needs {figures.changed}",
                    reason="COUPON_SERIES_EXHAUSTED",
                )
        row = await self._store.set_estimate(
            actor.business_id, operation_id, estimate_document(figures)
        )
        return DryRun(row, token)

    async def _estimate(self, actor: Actor, operation_id: int, action: BulkAction) -> Estimate:
        """The dry run's figures over the frozen members, a batch at a time (a selection
        of millions is never in memory at once)."""
        figures = Estimate()
        async for batch in self._store.members(actor.business_id, operation_id, False):
            recipients = [_recipient(action, member) for member in batch]
            figures = added(figures, estimate(action, recipients, self._segment_price))
        return figures

    async def _check_references(
        self, business_id: int, action: BulkAction, terminal_id: int, now: datetime
    ) -> None:
        """NotFound or FailedPrecondition for what the action names and the business has
        not (or has archived, or disabled)."""
        change = action.change
        if isinstance(change, PointsCredit | AccountCredit | CouponIssue):
            account = change.account_type_id if isinstance(change, AccountCredit) else None
            series = change.series_id if isinstance(change, CouponIssue) else None
            found = await self._references.circumstances(
                business_id, terminal_id, 0, account, series
            )
            # Whether the terminal carries operations, and the account type or series
            # takes them, whatever the customer (each member's own is the runner's).
            refusal = terminal_refusal(found.terminal) or operation_refusal(
                change, replace(found, access_type=AccessType.FULL)
            )
            if refusal is not None:
                raise refusal
        elif isinstance(change, CategoryChange):
            if not await self._store.category_live(business_id, change.category_id):
                raise NotFound(
                    "no such customer category in this business",
                    reason="CUSTOMER_CATEGORY_NOT_FOUND",
                )
        elif isinstance(change, NewsNotice):
            if self._news is None:
                raise NotFound("this server keeps no news items", reason="NEWS_ITEM_NOT_FOUND")
            await self._news.published(business_id, change.news_item_id, now)

    async def start(self, actor: Actor, operation_id: int, token: str) -> OperationRow:
        row = await self.get(actor.business_id, operation_id)
        if not hmac.compare_digest(row.token_digest, token_digest(token)):
            raise FailedPrecondition("this is not the dry run's token", reason="BULK_TOKEN_INVALID")
        now = self._clock()
        audit = {
            "action": row.action,
            "selection": row.selection,
            "total": row.total,
            "terminal_id": row.terminal_id,
        }
        started = await self._store.start(actor.business_id, operation_id, now, audit, actor)
        if started is None:
            raise _not_draft(row, now)
        self._wake_runner()
        return started

    async def cancel(self, actor: Actor, operation_id: int) -> OperationRow:
        row = await self.get(actor.business_id, operation_id)
        cancelled = await self._store.cancel(actor.business_id, operation_id, self._clock(), actor)
        return row if cancelled is None else cancelled

    async def get(self, business_id: int, operation_id: int) -> OperationRow:
        row = await self._store.operation(business_id, operation_id)
        if row is None:
            raise NotFound(
                "no such bulk operation in this business", reason="BULK_OPERATION_NOT_FOUND"
            )
        return row

    async def page(
        self, business_id: int, page_size: int, token: str
    ) -> tuple[list[OperationRow], str]:
        limit = page_limit(page_size, operations_page_size_default, operations_page_size_max)
        query: list[str | int] = ["bulk_operations", business_id]
        start = page_start(token, query)
        rows = await self._store.page(business_id, int(start or 0), limit + 1)
        if len(rows) <= limit:
            return rows, ""
        return rows[:limit], page_token(query, str(rows[limit - 1].operation_id))


def _recipient(action: BulkAction, member: MemberFacts) -> Recipient:
    return Recipient(
        customer_id=member.customer_id,
        access_type=AccessType(member.access_type),
        participation_confirmed=member.participation_confirmed,
        has_device=member.has_device,
        text="" if action.sent is None else member_text(action, member, None, None),
    )


def _not_draft(row: OperationRow, now: datetime) -> FailedPrecondition:
    if row.state is OperationState.DRAFT and row.draft_expires_at <= now:
        message = "the dry run expired: run it again"
    else:
        message = f"the operation is {row.state.value}, not a draft"
    return FailedPrecondition(message, reason="BULK_OPERATION_NOT_DRAFT")
