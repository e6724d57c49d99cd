"""The customer list of the control panel: filtered, sorted pages of the business's
memberships and the count of a selection.

Always scoped by the administrator's business, whatever the scope names: an id of
another business's program, point of sale, terminal or customer selects no one. A page
size of 0 is `customer_list_page_size_default`. Relative moments of a filter resolve
against this use case's clock on the first page and the token's moment after it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Protocol

from purse.domain.segments import Filter, Sort
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


def _now() -> datetime:
    return datetime.now(UTC)


class CustomerList:
    def __init__(self, store: CustomerListReads, clock: Callable[[], datetime] = _now) -> None:
        self._store = store
        self._clock = clock

    async def page(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        page_size: int,
        token: str,
    ) -> CustomerPage:
        size = page_size or customer_list_page_size_default
        return await self._store.page(business_id, scope, tree, sort, size, token, self._clock())

    async def count(self, business_id: int, scope: ListScope, tree: Filter | None) -> int:
        return await self._store.count(business_id, scope, tree, self._clock())
