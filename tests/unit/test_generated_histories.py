"""The members `purse generate` makes up: the same seed makes the same members, and every
row agrees with the others as the server's own writes would (statistics with sales,
pockets with their ledger, lots within their pockets, ids in their reserved blocks)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from purse.generation import histories

now = datetime(2026, 6, 1, 12, tzinfo=UTC)
business = histories.Business(
    business_id=7,
    phone_prefix="+38096",
    tills=((10, 100), (11, 101), (12, 102)),
    till_weights=(0.5, 0.3, 0.2),
    default_category_id=1,
    regulars_category_id=2,
    tiers=((25, 4), (10, 3)),
)
first_ids = histories.RowCounts(1000, 2000, 3000, 4000, 5000)


def planned(count: int = 2000, seed: int = 13) -> list[histories.MemberPlan]:
    return histories.plan_members(
        random.Random(seed), 0, count, histories.Shape(), business.till_weights, now
    )


def rows(plans: list[histories.MemberPlan]) -> dict[str, list[dict[str, object]]]:
    """Each table's rows as dicts by column."""
    made = histories.chunk_rows(plans, business, first_ids).tables
    return {
        table: [dict(zip(histories.columns[table], row, strict=True)) for row in made[table]]
        for table in made
    }


def test_the_same_seed_makes_the_same_members_and_another_seed_others() -> None:
    assert planned(seed=13) == planned(seed=13)
    assert planned(seed=13) != planned(seed=14)


def test_every_pocket_holds_the_sum_of_its_ledger_entries_and_its_lots_no_more() -> None:
    tables = rows(planned())
    ledger: dict[object, int] = defaultdict(int)
    for entry in tables["ledger_entries"]:
        ledger[entry["pocket_id"]] += int(str(entry["amount"]))
    lots: dict[object, int] = defaultdict(int)
    for lot in tables["points_lots"]:
        lots[lot["pocket_id"]] += int(str(lot["remaining"]))
    assert tables["points_lots"], "some members hold special points"
    for pocket in tables["pockets"]:
        balance = int(str(pocket["balance"]))
        assert balance == ledger[pocket["pocket_id"]]
        assert 0 <= lots[pocket["pocket_id"]] <= balance


def test_a_membership_counts_the_sales_of_its_transactions_and_their_times() -> None:
    tables = rows(planned())
    sales: dict[object, list[dict[str, object]]] = defaultdict(list)
    for transaction in tables["transactions"]:
        if transaction["operation"] is None:
            sales[transaction["customer_id"]].append(transaction)
    for membership in tables["memberships"]:
        own = sales[membership["customer_id"]]
        assert membership["sales_count"] == len(own)
        assert membership["sales_sum_minor_units"] == sum(
            int(str(t["sum_minor_units"])) for t in own
        )
        moments = [t["created_at"] for t in own]
        assert membership["first_visit_at"] == (min(moments) if moments else None)  # type: ignore[type-var]
        assert membership["last_visit_at"] == (max(moments) if moments else None)  # type: ignore[type-var]


def test_sales_happen_at_the_business_tills_between_joining_and_now() -> None:
    plans = planned()
    for plan in plans:
        for sale in plan.sales:
            assert plan.created_at <= sale.moment <= now
            assert 0 <= sale.till < len(business.tills)
    tables = rows(plans)
    assert {(t["point_of_sale_id"], t["terminal_id"]) for t in tables["transactions"]} == set(
        business.tills
    )


def test_the_statistics_are_skewed_as_a_real_business_has_them() -> None:
    plans = planned(5000)
    counts = [len(plan.sales) for plan in plans]
    assert 0.05 < sum(count == 0 for count in counts) / len(counts) < 0.15
    assert 0.08 < sum(count > 5 for count in counts) / len(counts) < 0.25
    assert max(counts) > 50
    assert 0.02 < sum(plan.credit is not None for plan in plans) / len(plans) < 0.08


def test_special_points_are_credited_after_the_last_sale_and_still_live() -> None:
    credited = [plan for plan in planned() if plan.credit is not None]
    for plan in credited:
        assert plan.credit is not None
        if plan.sales:
            assert plan.credit.moment >= plan.sales[-1].moment
        assert plan.credit.moment + timedelta(days=plan.credit.valid_days) > now


def test_a_member_with_more_sales_than_a_tier_asks_is_in_that_tier() -> None:
    tables = rows(planned())
    for membership in tables["memberships"]:
        sales = int(str(membership["sales_count"]))
        if sales >= 25:
            assert membership["category_id"] == 4
        elif sales >= 10:
            assert membership["category_id"] == 3
        else:
            assert membership["category_id"] in (1, 2)


def test_ids_fill_the_reserved_blocks_exactly_as_counted() -> None:
    plans = planned()
    counted = histories.counts(plans)
    tables = rows(plans)
    for table, column, first, count in (
        ("customers", "customer_id", first_ids.customers, counted.customers),
        ("pockets", "pocket_id", first_ids.pockets, counted.pockets),
        ("transactions", "transaction_id", first_ids.transactions, counted.transactions),
        ("ledger_entries", "entry_id", first_ids.ledger_entries, counted.ledger_entries),
        ("points_lots", "lot_id", first_ids.points_lots, counted.points_lots),
    ):
        assert [row[column] for row in tables[table]] == list(range(first, first + count))


def test_phones_are_distinct_well_formed_and_not_in_member_order() -> None:
    phones = [histories.phone("+38096", index) for index in range(10_000)]
    assert len(set(phones)) == len(phones)
    assert all(len(phone) == 13 and phone[1:].isdigit() for phone in phones)
    assert phones != sorted(phones)


@pytest.mark.parametrize("index", [0, 1, histories.members_max - 1])
def test_a_phone_keeps_its_prefix(index: int) -> None:
    assert histories.phone("+38097", index).startswith("+38097")


def test_the_points_of_sale_statistics_add_up_to_the_membership_s() -> None:
    tables = rows(planned())
    by_customer: dict[object, list[dict[str, object]]] = defaultdict(list)
    for statistics in tables["point_of_sale_statistics"]:
        by_customer[statistics["customer_id"]].append(statistics)
    assert any(len(points) > 1 for points in by_customer.values()), "some buy at several"
    for membership in tables["memberships"]:
        points = by_customer[membership["customer_id"]]
        assert membership["sales_count"] == sum(int(str(p["sales_count"])) for p in points)
        assert membership["sales_sum_minor_units"] == sum(
            int(str(p["sales_sum_minor_units"])) for p in points
        )
        assert {p["point_of_sale_id"] for p in points} <= {till[0] for till in business.tills}
