"""The customer list of the control panel: filtered, sorted pages of the business's
memberships and the count of a selection.

Always scoped by the administrator's business, whatever the scope names: an id of
another business's program, point of sale, terminal or customer selects no one. A page
size of 0 is `customer_list_page_size_default`. Relative moments of a filter resolve
against this use case's clock on the first page and the token's moment after it.

A saved segment (`segment_id`, 0 for none) selects instead of a filter and a scope: its
own, read when the call is made (NOT_FOUND SEGMENT_NOT_FOUND for another business's or
an archived one). Not combined with the request's: a segment's filter was validated whole
against the limits, and one narrowed further is a new filter the caller sends, so the
request's filter or scope set too is refused naming it. A page token is tied to the
selection it was given for, so one given before the segment changed is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Protocol

from purse.domain.errors import invalid
from purse.domain.segments import Filter, Sort
from purse.service.admin.segments import SegmentSelection
from purse.store.postgres.customer_list import CustomerPage, ListScope

customer_list_page_size_default: Final = 50


class CustomerListReads(Protocol):
    """`purse.store.postgres.customer_list.CustomerListStore`."""

    async def page(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        page_size: int,
        token: str,
        now: datetime,
    ) -> CustomerPage: ...

    async def count(
        self, business_id: int, scope: ListScope, tree: Filter | None, now: datetime
    ) -> int: ...


class SegmentSelections(Protocol):
    """`purse.service.admin.segments.SavedSegments`."""

    async def selection(self, business_id: int, segment_id: int) -> SegmentSelection: ...


def _now() -> datetime:
    return datetime.now(UTC)


class CustomerList:
    def __init__(
        self,
        store: CustomerListReads,
        segments: SegmentSelections,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._segments = segments
        self._clock = clock

    async def page(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        page_size: int,
        token: str,
        segment_id: int = 0,
    ) -> CustomerPage:
        size = page_size or customer_list_page_size_default
        scope, tree = await self._selected(business_id, scope, tree, segment_id)
        return await self._store.page(business_id, scope, tree, sort, size, token, self._clock())

    async def count(
        self, business_id: int, scope: ListScope, tree: Filter | None, segment_id: int = 0
    ) -> int:
        scope, tree = await self._selected(business_id, scope, tree, segment_id)
        return await self._store.count(business_id, scope, tree, self._clock())

    async def _selected(
        self, business_id: int, scope: ListScope, tree: Filter | None, segment_id: int
    ) -> tuple[ListScope, Filter | None]:
        return await selected(self._segments, business_id, scope, tree, segment_id)


async def selected(
    segments: SegmentSelections,
    business_id: int,
    scope: ListScope,
    tree: Filter | None,
    segment_id: int,
) -> tuple[ListScope, Filter | None]:
    """The scope and filter that select: the request's, or the segment's (see the module's
    docstring)."""
    if not segment_id:
        return scope, tree
    if tree is not None:
        raise invalid("filter", "set segment_id or filter, not both: the segment has one")
    if scope != ListScope():
        raise invalid("scope", "set segment_id or scope, not both: the segment has one")
    chosen = await segments.selection(business_id, segment_id)
    return chosen.scope, chosen.filter
