"""Saved segments: a segment's filter is validated as the customer list's, each wrong part
named under `segment`, and the customer list selects by a segment's own filter and scope,
refusing a request that sets a filter or a scope beside it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from purse.domain.errors import InvalidArgument, NotFound
from purse.domain.segments import (
    Combination,
    Condition,
    CustomerColumn,
    Filter,
    Group,
    Operator,
    Sort,
    days_ago,
    filter_conditions_max,
)
from purse.service.admin.customer_list import CustomerList
from purse.service.admin.segments import SegmentDraft, SegmentSelection, validated
from purse.store.postgres.customer_list import CustomerPage, ListScope, selected_customers_max

now = datetime(2026, 3, 1, tzinfo=UTC)
away = Group(
    Combination.ALL,
    (
        Condition(CustomerColumn.SALES_COUNT, Operator.MORE_THAN, 5),
        Condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, days_ago(30)),
    ),
)
at_the_bakery = ListScope(point_of_sale_id=3)


def refusal(draft: SegmentDraft) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as refused:
        validated(draft)
    return refused.value.violations[0].field, refused.value.reason


def test_a_named_filter_within_a_scope_is_a_valid_segment() -> None:
    assert validated(SegmentDraft("Away regulars", away, at_the_bakery)) == away


@pytest.mark.parametrize(
    ("draft", "path", "reason"),
    [
        (SegmentDraft(" ", away, ListScope()), "segment.name", "INVALID_ARGUMENT"),
        (SegmentDraft("x" * 201, away, ListScope()), "segment.name", "INVALID_ARGUMENT"),
        (SegmentDraft("Everyone", None, ListScope()), "segment.filter", "INVALID_ARGUMENT"),
        (
            SegmentDraft(
                "Many",
                away,
                ListScope(customer_ids=tuple(range(1, selected_customers_max + 2))),
            ),
            "segment.scope.customer_ids",
            "INVALID_ARGUMENT",
        ),
        (
            SegmentDraft(
                "Wrong",
                Group(
                    Combination.ANY,
                    (away, Condition(CustomerColumn.SALES_COUNT, Operator.EQUALS, "five")),
                ),
                ListScope(),
            ),
            "segment.filter.any[1].condition.value",
            "FILTER_INVALID",
        ),
        (
            SegmentDraft(
                "Huge",
                Group(
                    Combination.ANY,
                    tuple(
                        Condition(CustomerColumn.CATEGORY_ID, Operator.EQUALS, number)
                        for number in range(filter_conditions_max + 1)
                    ),
                ),
                ListScope(),
            ),
            f"segment.filter.any[{filter_conditions_max}]",
            "FILTER_TOO_LARGE",
        ),
    ],
)
def test_a_wrong_part_of_a_segment_is_refused_naming_its_path(
    draft: SegmentDraft, path: str, reason: str
) -> None:
    assert refusal(draft) == (path, reason)


class Store:
    """The customer list's store: remembers what it was asked to select."""

    def __init__(self) -> None:
        self.selected: list[tuple[int, ListScope, Filter | None]] = []

    async def page(
        self,
        business_id: int,
        scope: ListScope,
        tree: Filter | None,
        sort: Sort,
        page_size: int,
        token: str,
        now: datetime,
    ) -> CustomerPage:
        self.selected.append((business_id, scope, tree))
        return CustomerPage([], "")

    async def count(
        self, business_id: int, scope: ListScope, tree: Filter | None, now: datetime
    ) -> int:
        self.selected.append((business_id, scope, tree))
        return 0


class Segments:
    """One live segment, number 7 of business 1."""

    async def selection(self, business_id: int, segment_id: int) -> SegmentSelection:
        if (business_id, segment_id) != (1, 7):
            raise NotFound("no such saved segment in this business", reason="SEGMENT_NOT_FOUND")
        return SegmentSelection(away, at_the_bakery)


async def test_the_list_selects_by_a_segment_s_own_filter_and_scope() -> None:
    store = Store()
    customer_list = CustomerList(store, Segments(), lambda: now)

    await customer_list.page(1, ListScope(), None, Sort(), 0, "", segment_id=7)
    await customer_list.count(1, ListScope(), None, segment_id=7)
    await customer_list.count(1, at_the_bakery, away)

    assert store.selected == [(1, at_the_bakery, away)] * 3


@pytest.mark.parametrize(
    ("scope", "tree", "field"),
    [
        (ListScope(), Condition(CustomerColumn.PHONE, Operator.EXISTS), "filter"),
        (ListScope(customer_ids=(5,)), None, "scope"),
    ],
)
async def test_a_filter_or_a_scope_beside_a_segment_is_refused_naming_it(
    scope: ListScope, tree: Filter | None, field: str
) -> None:
    store = Store()
    customer_list = CustomerList(store, Segments(), lambda: now)

    with pytest.raises(InvalidArgument) as refused:
        await customer_list.count(1, scope, tree, segment_id=7)

    assert refused.value.violations[0].field == field
    assert store.selected == []


async def test_another_business_s_segment_is_not_found_and_selects_nothing() -> None:
    store = Store()
    customer_list = CustomerList(store, Segments(), lambda: now)

    with pytest.raises(NotFound) as refused:
        await customer_list.page(2, ListScope(), None, Sort(), 0, "", segment_id=7)

    assert refused.value.reason == "SEGMENT_NOT_FOUND"
    assert store.selected == []
