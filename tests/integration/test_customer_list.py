"""The customer list on the real tables: memberships with sales written by the batch
store, selected by the issue's example filter, paged in both directions, counted, scoped
to the business, a point of sale and a manual selection; the first visit the sale path
keeps; and the statistics it keeps per point of sale, which the list scoped by one shows."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import Tenant, make_business, make_terminal, new_phone

from purse.domain.amounts import divide_rounded
from purse.domain.customers import AccessType
from purse.domain.segments import (
    Combination,
    Condition,
    CustomerColumn,
    Direction,
    Filter,
    Group,
    Operator,
    Sort,
    days_ago,
)
from purse.domain.settlement import Statistics
from purse.domain.terminals import TerminalKind
from purse.domain.transactions import Effects, LedgerKind, PocketChange, TransactionStatus
from purse.service.operations import Sale, Transition
from purse.store.postgres.batches import BatchStore
from purse.store.postgres.customer_list import CustomerListStore, CustomerRow, ListScope
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.provisioning import Provisioning

now = datetime.now(UTC)
check_numbers = itertools.count(1)

# "Customers with more than 5 sales, no visit in the last 30 days, and more than 100 points."
issue_example: Filter = Group(
    Combination.ALL,
    (
        Condition(CustomerColumn.SALES_COUNT, Operator.MORE_THAN, 5),
        Condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, days_ago(30)),
        Condition(CustomerColumn.POINTS_BALANCE, Operator.MORE_THAN, 100_00),
    ),
)


@dataclass(frozen=True)
class Member:
    """A membership to make: its sales a day apart, the last `days_since_visit` ago."""

    sales: int
    days_since_visit: int
    points: int  # hundredths

    def holds_for_the_example(self) -> bool:
        return self.sales > 5 and self.days_since_visit > 30 and self.points > 100_00


members = [
    Member(sales, days, points)
    for sales in (0, 5, 6, 8)
    for days in (3, 29, 31, 90)
    for points in (100_00, 100_01, 250_00)
]


def text(language: str, accrued: int, redeemed: int, balance: int) -> str:
    return f"{accrued} {redeemed} {balance}"


def sale(
    terminal_id: int,
    point_of_sale_id: int,
    customer_id: int,
    *,
    sum_minor_units: int,
    visit: datetime | None,
    points: int = 0,
    status: TransactionStatus = TransactionStatus.COMPLETED,
) -> Sale:
    """A completed check with `points` accrued; a sale counted at `visit` (None: only the
    points, as an administrator's credit would be, no sale); a pending one counts nothing
    until it is confirmed."""
    number = f"L-{next(check_numbers)}"
    return Sale(
        terminal_id=terminal_id,
        point_of_sale_id=point_of_sale_id,
        check_number=number,
        request_digest=number.encode(),
        customer_id=customer_id,
        status=status,
        receipt=None,
        sum_minor_units=sum_minor_units,
        effects=Effects(pockets=(PocketChange((customer_id, 0), LedgerKind.ACCRUE, points),))
        if points
        else Effects(),
        sale_time=visit,
        statistics=None
        if visit is None or status is not TransactionStatus.COMPLETED
        else Statistics(customer_id, 1, sum_minor_units, visit_time=visit),
        operation={"credit": points} if visit is None else None,
    )


async def make_members(
    pool: asyncpg.Pool,
    business: Tenant,
    wanted: list[Member],
    till: tuple[int, int] | None = None,
) -> dict[int, Member]:
    """The members by customer id, their sales and points written in one batch, at `till`
    (terminal id, its point of sale id; the business's cash desk by default)."""
    customers = CustomerStore(pool)
    made: dict[int, Member] = {}
    sales: list[Sale] = []
    terminal, shop = till or (business.cash_desk.terminal_id, business.point_of_sale_id)
    for member in wanted:
        customer_id, _ = await customers.enrol(business.business_id, new_phone(), AccessType.FULL)
        made[customer_id] = member
        last_visit = now - timedelta(days=member.days_since_visit)
        sales += [
            sale(
                terminal,
                shop,
                customer_id,
                sum_minor_units=1_000 + number,
                visit=last_visit - timedelta(days=number),
            )
            for number in range(member.sales)
        ]
        sales.append(
            sale(
                terminal,
                shop,
                customer_id,
                sum_minor_units=0,
                visit=None,
                points=member.points,
            )
        )
    outcomes, _ = await BatchStore(pool, text).apply(business.business_id, sales, [])
    assert all(outcome.refusal is None for outcome in outcomes)
    return made


async def every_page(
    store: CustomerListStore,
    business_id: int,
    sort: Sort,
    tree: Filter | None = None,
    scope: ListScope | None = None,
) -> list[CustomerRow]:
    rows: list[CustomerRow] = []
    token = ""
    while True:
        page = await store.page(business_id, scope or ListScope(), tree, sort, 5, token, now)
        rows += page.rows
        if not page.next_page_token:
            return rows
        token = page.next_page_token


async def test_the_issue_example_selects_exactly_the_members_it_describes_and_counts_them(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    made = await make_members(pool, business, members)
    other = await make_business(pool)
    await make_members(pool, other, members)
    store = CustomerListStore(pool)

    rows = await every_page(store, business.business_id, Sort(), issue_example)
    counted = await store.count(business.business_id, ListScope(), issue_example, now)

    expected = sorted(id for id, member in made.items() if member.holds_for_the_example())
    assert [row.customer_id for row in rows] == expected
    assert counted == len(expected) == 8


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize(
    "column",
    [
        CustomerColumn.SALES_COUNT,
        CustomerColumn.AVERAGE_CHECK,
        CustomerColumn.LAST_VISIT,
        CustomerColumn.FIRST_VISIT,
        CustomerColumn.POINTS_BALANCE,
        CustomerColumn.CREATED_AT,
    ],
)
async def test_pages_in_either_direction_hold_every_member_of_the_business_once_in_order(
    pool: asyncpg.Pool, business: Tenant, column: CustomerColumn, direction: Direction
) -> None:
    made = await make_members(pool, business, members[::3])
    other = await make_business(pool)
    await make_members(pool, other, members[:4])
    store = CustomerListStore(pool)

    rows = await every_page(store, business.business_id, Sort(column, direction))

    assert sorted(row.customer_id for row in rows) == sorted(made)
    assert len(rows) == await store.count(business.business_id, ListScope(), None, now)
    present = [getattr(row, column.value) for row in rows if getattr(row, column.value) is not None]
    absent_at = len(present)
    assert all(getattr(row, column.value) is None for row in rows[absent_at:])
    assert present == sorted(present, reverse=direction is Direction.DESCENDING)


async def test_a_row_holds_the_statistics_the_sales_left_and_the_points_balance(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    made = await make_members(pool, business, [Member(3, 40, 123_45), Member(0, 1, 0)])
    store = CustomerListStore(pool)

    rows = (await store.page(business.business_id, ListScope(), None, Sort(), 10, "", now)).rows

    buyer, newcomer = rows
    assert [buyer.customer_id, newcomer.customer_id] == sorted(made)
    last_visit = now - timedelta(days=40)
    assert (buyer.sales_count, buyer.sales_sum, buyer.points_balance) == (3, 3_003, 123_45)
    assert buyer.average_check == divide_rounded(3_003, 3) == 1_001
    assert (buyer.first_visit, buyer.last_visit) == (last_visit - timedelta(days=2), last_visit)
    assert buyer.access_type == "full" and buyer.points_expiring_at is None
    assert (newcomer.sales_count, newcomer.average_check, newcomer.first_visit) == (0, None, None)


async def test_the_stored_average_check_rounds_halves_away_from_zero_as_the_domain_does(
    pool: asyncpg.Pool,
) -> None:
    cases = [(5, 2), (7, 2), (1, 3), (2, 3), (-5, 2), (-7, 2), (1_000_001, 2), (0, 1)]
    async with pool.acquire() as connection:
        rounded = await connection.fetch(
            "SELECT CASE WHEN c > 0 THEN round(s::numeric / c)::bigint END AS average"
            " FROM unnest($1::bigint[], $2::bigint[]) AS d(s, c)",
            [total for total, _ in cases],
            [count for _, count in cases],
        )
    assert [row["average"] for row in rounded] == [divide_rounded(*case) for case in cases]


async def test_a_point_of_sale_and_a_manual_selection_narrow_the_list(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    provisioning = Provisioning(pool)
    second_shop = await provisioning.point_of_sale(
        business.business_id, business.program_id, "Second shop", "UTC"
    )
    till = await make_terminal(
        provisioning, business.business_id, second_shop, TerminalKind.CASH_DESK
    )
    at_first = await make_members(pool, business, members[:24])
    at_second = await make_members(pool, business, members[24:], (till.terminal_id, second_shop))
    store = CustomerListStore(pool)
    buyers_at_second = sorted(id for id, member in at_second.items() if member.sales)
    chosen = sorted(at_first)[::2] + sorted(at_second)[::2]
    selection = ListScope(customer_ids=tuple(chosen))

    by_shop = await every_page(
        store, business.business_id, Sort(), None, ListScope(point_of_sale_id=second_shop)
    )
    by_program = await store.count(
        business.business_id, ListScope(program_id=business.program_id), None, now
    )
    chosen_rows = await every_page(store, business.business_id, Sort(), issue_example, selection)

    assert [row.customer_id for row in by_shop] == buyers_at_second
    assert by_program == sum(1 for member in members if member.sales)
    assert [row.customer_id for row in chosen_rows] == sorted(
        id for id in chosen if {**at_first, **at_second}[id].holds_for_the_example()
    )


async def test_the_first_visit_is_set_by_the_first_sale_and_stays_there(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, new_phone(), AccessType.FULL
    )
    batches = BatchStore(pool, text)
    first, later = now - timedelta(days=10), now - timedelta(days=2)
    terminal, shop = business.cash_desk.terminal_id, business.point_of_sale_id

    async def first_and_last() -> tuple[datetime | None, datetime | None]:
        row = await pool.fetchrow(
            "SELECT first_visit_at, last_visit_at FROM memberships"
            " WHERE business_id = $1 AND customer_id = $2",
            business.business_id,
            customer_id,
        )
        assert row is not None
        return row["first_visit_at"], row["last_visit_at"]

    before = await first_and_last()
    await batches.apply(
        business.business_id,
        [sale(terminal, shop, customer_id, sum_minor_units=500, visit=first)],
        [],
    )
    after_first = await first_and_last()
    await batches.apply(
        business.business_id,
        [sale(terminal, shop, customer_id, sum_minor_units=700, visit=later)],
        [],
    )
    after_second = await first_and_last()

    assert before == (None, None)
    assert after_first == (first, first)
    assert after_second == (first, later)


@pytest.mark.parametrize("direction", list(Direction))
async def test_sorted_by_the_soonest_lot_or_the_phone_every_member_comes_once_in_order(
    pool: asyncpg.Pool, business: Tenant, direction: Direction
) -> None:
    made = await make_members(pool, business, [Member(1, 5, 300_00)] * 6)
    provisioning = Provisioning(pool)
    expiring = {}
    for days, customer_id in enumerate(sorted(made)[:4], start=1):
        await provisioning.points_lot(
            business.business_id, customer_id, days * 10_00, now + timedelta(days=days)
        )
        # A later lot of the same member never shows: the soonest does.
        await provisioning.points_lot(
            business.business_id, customer_id, 1_00, now + timedelta(days=30)
        )
        expiring[customer_id] = (days * 10_00, now + timedelta(days=days))
    store = CustomerListStore(pool)
    by_lot = Sort(CustomerColumn.POINTS_EXPIRING_AT, direction)
    soon = Condition(CustomerColumn.POINTS_EXPIRING_AMOUNT, Operator.MORE_THAN, 15_00)

    rows = await every_page(store, business.business_id, by_lot)
    chosen = await every_page(store, business.business_id, by_lot, soon)
    by_phone = await every_page(store, business.business_id, Sort(CustomerColumn.PHONE, direction))

    with_lots = sorted(expiring, key=lambda id: expiring[id][1])
    if direction is Direction.DESCENDING:
        with_lots.reverse()
    without = sorted(set(made) - set(expiring), reverse=direction is Direction.DESCENDING)
    assert [row.customer_id for row in rows] == with_lots + without
    assert {row.customer_id: (row.points_expiring_amount, row.points_expiring_at)
            for row in rows if row.customer_id in expiring} == expiring  # fmt: skip
    assert [row.customer_id for row in chosen] == [
        id for id in with_lots if expiring[id][0] > 15_00
    ]
    assert await store.count(business.business_id, ListScope(), soon, now) == 3
    phones = [row.phone for row in by_phone]
    assert phones == sorted(phones, reverse=direction is Direction.DESCENDING)
    assert sorted(row.customer_id for row in by_phone) == sorted(made)


async def second_till(pool: asyncpg.Pool, business: Tenant) -> tuple[int, int]:
    """(terminal id, point of sale id) of a cash desk at a new point of sale."""
    provisioning = Provisioning(pool)
    shop = await provisioning.point_of_sale(
        business.business_id, business.program_id, f"Shop {next(check_numbers)}", "UTC"
    )
    till = await make_terminal(provisioning, business.business_id, shop, TerminalKind.CASH_DESK)
    return till.terminal_id, shop


async def test_scoped_by_a_point_of_sale_a_customer_shows_the_figures_of_that_point_of_sale(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    customers = CustomerStore(pool)
    both, second_only = [
        (await customers.enrol(business.business_id, new_phone(), AccessType.FULL))[0]
        for _ in range(2)
    ]
    first = (business.cash_desk.terminal_id, business.point_of_sale_id)
    second = await second_till(pool, business)
    day = timedelta(days=1)
    sales = [
        sale(*first, both, sum_minor_units=1_000, visit=now - 10 * day),
        sale(*first, both, sum_minor_units=3_001, visit=now - 8 * day),
        sale(*second, both, sum_minor_units=500, visit=now - 3 * day),
        sale(*second, second_only, sum_minor_units=9_000, visit=now - 40 * day),
        sale(*second, second_only, sum_minor_units=7_000, visit=now - 35 * day),
    ]
    # Two batches: the second adds to the rows the first wrote.
    await BatchStore(pool, text).apply(business.business_id, sales[:3], [])
    await BatchStore(pool, text).apply(business.business_id, sales[3:], [])
    store = CustomerListStore(pool)

    async def listed(shop: int | None, tree: Filter | None = None) -> list[CustomerRow]:
        scope = ListScope(point_of_sale_id=shop)
        return await every_page(store, business.business_id, Sort(), tree, scope)

    at_first, at_second, everywhere = (
        await listed(first[1]),
        await listed(second[1]),
        await listed(None),
    )

    figures = [
        (row.customer_id, row.sales_count, row.sales_sum, row.average_check)
        for row in at_first + at_second + everywhere
    ]
    assert figures == [
        (both, 2, 4_001, 2_001),
        (both, 1, 500, 500),
        (second_only, 2, 16_000, 8_000),
        (both, 3, 4_501, 1_500),
        (second_only, 2, 16_000, 8_000),
    ]
    assert (at_first[0].first_visit, at_first[0].last_visit) == (now - 10 * day, now - 8 * day)
    assert (at_second[0].first_visit, at_second[0].last_visit) == (now - 3 * day, now - 3 * day)
    assert at_second[0].points_balance == everywhere[0].points_balance
    # Filters and sorts read the point of sale's figures too.
    two_sales = Condition(CustomerColumn.SALES_COUNT, Operator.MORE_THAN, 1)
    away = Condition(CustomerColumn.LAST_VISIT, Operator.LESS_THAN, days_ago(30))
    assert [row.customer_id for row in await listed(second[1], two_sales)] == [second_only]
    assert [row.customer_id for row in await listed(first[1], two_sales)] == [both]
    assert [row.customer_id for row in await listed(None, away)] == [second_only]
    by_sum = Sort(CustomerColumn.SALES_SUM, Direction.ASCENDING)
    page = await store.page(
        business.business_id, ListScope(point_of_sale_id=second[1]), None, by_sum, 1, "", now
    )
    assert [row.customer_id for row in page.rows] == [both]
    after = await store.page(
        business.business_id,
        ListScope(point_of_sale_id=second[1]),
        None,
        by_sum,
        1,
        page.next_page_token,
        now,
    )
    assert [row.customer_id for row in after.rows] == [second_only]
    counted = await store.count(
        business.business_id, ListScope(point_of_sale_id=second[1]), two_sales, now
    )
    assert counted == 1


async def test_a_confirmed_pending_sale_counts_at_the_point_of_sale_it_was_made_at(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, new_phone(), AccessType.FULL
    )
    terminal, shop = await second_till(pool, business)
    pending = sale(
        terminal, shop, customer_id, sum_minor_units=2_500, visit=now,
        status=TransactionStatus.PENDING,
    )  # fmt: skip
    batches = BatchStore(pool, text)
    outcomes, _ = await batches.apply(business.business_id, [pending], [])
    confirmed = Transition(
        transaction_id=outcomes[0].transaction_id,
        expected=TransactionStatus.PENDING,
        status=TransactionStatus.COMPLETED,
        effects=Effects(),
        customer_id=customer_id,
        statistics=Statistics(customer_id, 1, 2_500, confirmed=True),
    )
    store = CustomerListStore(pool)
    scope = ListScope(point_of_sale_id=shop)
    before = await store.count(business.business_id, scope, None, now)

    _, transition_outcomes = await batches.apply(business.business_id, [], [confirmed])

    assert transition_outcomes[0].refusal is None
    rows = await every_page(store, business.business_id, Sort(), None, scope)
    assert before == 0
    assert [(row.customer_id, row.sales_count, row.sales_sum) for row in rows] == [
        (customer_id, 1, 2_500)
    ]
