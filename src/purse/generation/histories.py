"""Members of a business and their history, made up: the rows `purse generate` writes.

Contract:

* `plan_members(source, first_index, count, shape, till_weights, now)` makes `count`
  members up from the random `source` (the same seed, the same members), numbered from
  `first_index`, each with a usual till chosen in the proportions of `till_weights`;
  a member's number picks its phone (`phone`), so numbers must not repeat within one
  phone prefix. `Shape` holds every proportion, each under a name.
* `counts(plans)` says how many rows of each table with an identity the plans make, and
  `chunk_rows(plans, business, first_ids)` makes them, ids counted up from `first_ids`
  (one block per table, reserved by the caller).
* The rows are what the server would have written for that history:
  - a member who bought joined at the first sale (one who never did, at some moment of
    the last `span_days`); sales fall between the first and the last visit, each a
    completed transaction at the cash desk of one of the business's points of sale (the
    member's usual one, mostly); the membership's statistics and those of each point of
    sale (`point_of_sale_statistics`) are the sums of those sales;
  - each sale accrues `accrual_basis_points` of what was paid as points, and some redeem
    points first (never more than the balance): ledger entries of the sale's transaction
    on the member's points pocket, whose balance is their sum, so `purse audit` holds;
  - some members were credited special points lately by an administrator's operation,
    stored as apply-customer-operation stores one (a transaction with an `~admin:` check
    number and the operation's document, an `adjust` entry with the expiry), and a live
    lot holding all of them: credited after the last sale, none of them is spent.
  Generated sales carry no receipt (their lines are not made up): readers show them
  without one, and refunds refuse them, as they do an administrator's operation.
* Pure: no I/O, no clock (`now` is given).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from purse.domain.customer_operations import (
    PointsCredit,
    check_number_prefix,
    operation_document,
    request_digest,
)
from purse.domain.customers import POINTS_ACCOUNT_TYPE_ID

# A phone is a prefix of six characters (+380 and an operator's code) and seven digits.
phone_prefix_characters: Final = 6
phone_digits: Final = 7
members_max: Final = 10**phone_digits
# Coprime with 10**7: consecutive members get phones spread over the whole range, so that
# phone order is not customer id order.
_phone_step: Final = 6_180_339
_basis_points: Final = 10_000
_request_digest_bytes: Final = 32
_seconds_per_day: Final = 86_400

_given_names: Final = (
    "Olena", "Andrii", "Iryna", "Oleksandr", "Nataliia", "Dmytro", "Kateryna", "Serhii",
    "Yuliia", "Mykola", "Oksana", "Taras", "Sofiia", "Bohdan", "Anna", "Maksym",
)  # fmt: skip
_family_names: Final = (
    "Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Kravchenko", "Melnyk",
    "Boiko", "Koval", "Oliinyk", "Lysenko", "Marchenko", "Savchenko", "Rudenko", "Moroz",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Shape:
    """The proportions of a generated business. Shares are of all members unless said."""

    span_days: int = 730
    buyers_share: float = 0.9
    # Kinds of buyers: (share of buyers, mean sales); sales are geometric from 1.
    buyer_kinds: tuple[tuple[float, float], ...] = ((0.75, 1.8), (0.23, 9.0), (0.02, 40.0))
    sales_count_max: int = 5000
    # A member's usual check: log-normal around the median; each sale within
    # `check_variation` of it either way.
    check_median_minor_units: int = 18_000
    check_spread: float = 0.5
    check_variation: float = 0.3
    check_minor_units_min: int = 100
    usual_point_of_sale_share: float = 0.8
    accrual_basis_points: int = 500
    # Of sales: how many pay with points first, and at most what share of the check.
    redemption_share: float = 0.12
    redemption_check_share: float = 0.5
    special_points_share: float = 0.05
    special_points_hundredths: tuple[int, ...] = (50_00, 100_00, 200_00)
    special_points_valid_days: tuple[int, ...] = (7, 14, 30, 60)
    special_points_credited_days_max: int = 20
    consent_share: float = 0.55
    # Of members without consent: how many gave their names anyway.
    names_without_consent_share: float = 0.2
    participation_share: float = 0.7
    access_types: tuple[tuple[str, float], ...] = (
        ("full", 0.97), ("limited", 0.02), ("none", 0.005), ("blacklisted", 0.005),
    )  # fmt: skip
    languages: tuple[tuple[str, float], ...] = (("uk", 0.7), ("en", 0.1), ("", 0.2))
    # Of members below every tier: how many an administrator moved to the regulars.
    regulars_share: float = 0.05


@dataclass(frozen=True, slots=True)
class Business:
    """Where the members are made up: the business's points of sale and categories."""

    business_id: int
    phone_prefix: str
    # (point of sale id, its cash desk's terminal id), the busiest first, and how much
    # of the business each has (members choose a usual one in these proportions).
    tills: tuple[tuple[int, int], ...]
    till_weights: tuple[float, ...]
    default_category_id: int
    regulars_category_id: int
    # (sales at least, category id), the highest first: a member's category by sales.
    tiers: tuple[tuple[int, int], ...]


class PlannedSale(NamedTuple):
    moment: datetime
    till: int  # an index into `Business.tills`
    check_minor_units: int
    redeemed_hundredths: int
    accrued_hundredths: int


class PlannedCredit(NamedTuple):
    """Special points an administrator credited."""

    moment: datetime
    points_hundredths: int
    valid_days: int


@dataclass(frozen=True, slots=True)
class MemberPlan:
    index: int
    created_at: datetime
    access_type: str
    personal_data_consent: bool
    participation_confirmed: bool
    given_name: str
    family_name: str
    language: str
    regular: bool
    sales: tuple[PlannedSale, ...]
    credit: PlannedCredit | None
    points_balance: int


def phone(prefix: str, index: int) -> str:
    """The phone of member `index` (0 to `members_max` - 1) under `prefix`."""
    return f"{prefix}{index * _phone_step % members_max:0{phone_digits}d}"


def _weighted(source: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    pick = source.random() * sum(weight for _, weight in choices)
    for value, weight in choices:
        pick -= weight
        if pick < 0:
            return value
    return choices[-1][0]


def _sales_count(source: random.Random, shape: Shape) -> int:
    if source.random() >= shape.buyers_share:
        return 0
    mean: float = _weighted(source, [(mean, share) for share, mean in shape.buyer_kinds])
    if mean <= 1:
        return 1
    # Geometric from 1 with this mean: 1 + the failures before a success of 1 / mean.
    failures = int(math.log(1.0 - source.random()) / math.log(1.0 - 1.0 / mean))
    return min(1 + failures, shape.sales_count_max)


def plan_members(
    source: random.Random,
    first_index: int,
    count: int,
    shape: Shape,
    till_weights: Sequence[float],
    now: datetime,
) -> list[MemberPlan]:
    """`count` members made up from `source`, numbered from `first_index`."""
    tills = [(till, weight) for till, weight in enumerate(till_weights)]
    return [_member(source, first_index + offset, shape, tills, now) for offset in range(count)]


def _member(
    source: random.Random,
    index: int,
    shape: Shape,
    tills: Sequence[tuple[int, float]],
    now: datetime,
) -> MemberPlan:
    span_seconds = shape.span_days * _seconds_per_day
    created_at = now - timedelta(seconds=source.random() * span_seconds)
    sales = _sales(source, shape, tills, created_at, _sales_count(source, shape), now)
    balance = 0
    for sale in sales:
        balance += sale.accrued_hundredths - sale.redeemed_hundredths
    credit = None
    if source.random() < shape.special_points_share:
        credit = _credit(source, shape, sales[-1].moment if sales else created_at, now)
        balance += credit.points_hundredths
    consent = source.random() < shape.consent_share
    named = consent or source.random() < shape.names_without_consent_share
    return MemberPlan(
        index=index,
        created_at=created_at,
        access_type=_weighted(source, shape.access_types),
        personal_data_consent=consent,
        participation_confirmed=source.random() < shape.participation_share,
        given_name=source.choice(_given_names) if named else "",
        family_name=source.choice(_family_names) if named else "",
        language=_weighted(source, shape.languages),
        regular=source.random() < shape.regulars_share,
        sales=sales,
        credit=credit,
        points_balance=balance,
    )


def _sales(
    source: random.Random,
    shape: Shape,
    tills: Sequence[tuple[int, float]],
    first: datetime,
    count: int,
    now: datetime,
) -> tuple[PlannedSale, ...]:
    """`count` sales from `first` on, the last some time before `now` (members drift
    away: the later the last visit, the likelier)."""
    if count == 0:
        return ()
    active_seconds = (now - first).total_seconds() * math.sqrt(source.random())
    between = sorted(source.random() * active_seconds for _ in range(count - 2))
    offsets = [0.0, *between, active_seconds] if count > 1 else [0.0]
    usual_check = shape.check_median_minor_units * math.exp(source.gauss(0.0, shape.check_spread))
    usual_till: int = _weighted(source, tills)
    others = [till for till, _ in tills if till != usual_till] or [usual_till]
    variation = shape.check_variation
    balance = 0
    sales = []
    for offset in offsets:
        check = max(
            shape.check_minor_units_min,
            round(usual_check * (1.0 - variation + 2 * variation * source.random())),
        )
        redeemed = 0
        if balance > 0 and source.random() < shape.redemption_share:
            # A hundredth of a point is worth a minor unit (the demo program's rate).
            redeemed = min(balance, int(check * shape.redemption_check_share))
        accrued = (check - redeemed) * shape.accrual_basis_points // _basis_points
        balance += accrued - redeemed
        till = usual_till
        if source.random() >= shape.usual_point_of_sale_share:
            till = source.choice(others)
        sales.append(PlannedSale(first + timedelta(seconds=offset), till, check, redeemed, accrued))
    return tuple(sales)


def _credit(source: random.Random, shape: Shape, after: datetime, now: datetime) -> PlannedCredit:
    """Special points credited after `after` and within the last days, still live."""
    window = min(
        (now - after).total_seconds(), shape.special_points_credited_days_max * _seconds_per_day
    )
    moment = now - timedelta(seconds=source.random() * window)
    age_days = (now - moment).total_seconds() / _seconds_per_day
    live = [days for days in shape.special_points_valid_days if days > age_days + 1]
    valid_days = source.choice(live or [max(shape.special_points_valid_days)])
    return PlannedCredit(moment, source.choice(shape.special_points_hundredths), valid_days)


class RowCounts(NamedTuple):
    """Rows of each table with an identity column that a chunk of members makes."""

    customers: int
    pockets: int
    transactions: int
    ledger_entries: int
    points_lots: int


def _entries_of(sale: PlannedSale) -> int:
    return (sale.redeemed_hundredths > 0) + (sale.accrued_hundredths > 0)


def counts(plans: Sequence[MemberPlan]) -> RowCounts:
    credits = sum(plan.credit is not None for plan in plans)
    return RowCounts(
        customers=len(plans),
        pockets=len(plans),
        transactions=sum(len(plan.sales) for plan in plans) + credits,
        ledger_entries=sum(_entries_of(sale) for plan in plans for sale in plan.sales) + credits,
        points_lots=credits,
    )


# The columns each table is written with, in the order of `ChunkRows`' tuples.
columns: Final[dict[str, tuple[str, ...]]] = {
    "customers": ("customer_id", "phone", "created_at"),
    "memberships": (
        "business_id", "customer_id", "category_id", "access_type", "participation_confirmed",
        "personal_data_consent", "sales_count", "sales_sum_minor_units", "first_visit_at",
        "last_visit_at", "created_at", "given_name", "family_name", "language",
    ),
    "pockets": (
        "business_id", "pocket_id", "customer_id", "account_type_id", "balance", "updated_at",
    ),
    "transactions": (
        "business_id", "transaction_id", "terminal_id", "point_of_sale_id", "check_number",
        "request_digest", "customer_id", "status", "sum_minor_units", "created_at",
        "finished_at", "operation",
    ),
    "ledger_entries": (
        "business_id", "entry_id", "pocket_id", "transaction_id", "kind", "amount",
        "expires_at", "created_at",
    ),
    "points_lots": ("business_id", "lot_id", "pocket_id", "remaining", "expires_at", "created_at"),
    "point_of_sale_statistics": (
        "business_id", "point_of_sale_id", "customer_id", "sales_count",
        "sales_sum_minor_units", "first_visit_at", "last_visit_at",
    ),
}  # fmt: skip


@dataclass(slots=True)
class ChunkRows:
    """The rows of a chunk of members, by table (`columns` names each tuple's values)."""

    tables: dict[str, list[tuple[Any, ...]]]


class _Counters:
    """The next id of each table."""

    __slots__ = ("entry", "lot", "transaction")

    def __init__(self, first: RowCounts) -> None:
        self.transaction = first.transactions
        self.entry = first.ledger_entries
        self.lot = first.points_lots


def chunk_rows(plans: Sequence[MemberPlan], business: Business, first: RowCounts) -> ChunkRows:
    """The rows of `plans`, the ids of each table counted up from `first`'s."""
    tables: dict[str, list[tuple[Any, ...]]] = {table: [] for table in columns}
    counters = _Counters(first)
    for offset, plan in enumerate(plans):
        customer_id, pocket_id = first.customers + offset, first.pockets + offset
        tables["customers"].append(
            (customer_id, phone(business.phone_prefix, plan.index), plan.created_at)
        )
        _sale_rows(tables, business, plan, customer_id, pocket_id, counters)
        updated_at = plan.sales[-1].moment if plan.sales else plan.created_at
        if plan.credit is not None:
            _credit_rows(tables, business, plan.credit, customer_id, pocket_id, counters)
            updated_at = plan.credit.moment
        tables["pockets"].append(
            (
                business.business_id, pocket_id, customer_id, POINTS_ACCOUNT_TYPE_ID,
                plan.points_balance, updated_at,
            )
        )  # fmt: skip
        tables["memberships"].append(_membership_row(business, plan, customer_id))
        tables["point_of_sale_statistics"] += _point_of_sale_rows(business, plan, customer_id)
    return ChunkRows(tables)


def _point_of_sale_rows(
    business: Business, plan: MemberPlan, customer_id: int
) -> list[tuple[Any, ...]]:
    """The member's sales added up by point of sale, as the sale path keeps them."""
    by_till: dict[int, list[PlannedSale]] = {}
    for sale in plan.sales:
        by_till.setdefault(sale.till, []).append(sale)
    return [
        (
            business.business_id,
            business.tills[till][0],
            customer_id,
            len(sales),
            sum(sale.check_minor_units for sale in sales),
            sales[0].moment,
            sales[-1].moment,
        )
        for till, sales in sorted(by_till.items())
    ]


def _membership_row(business: Business, plan: MemberPlan, customer_id: int) -> tuple[Any, ...]:
    sales = plan.sales
    category_id = business.default_category_id
    for least, tier_category_id in business.tiers:
        if len(sales) >= least:
            category_id = tier_category_id
            break
    else:
        if plan.regular:
            category_id = business.regulars_category_id
    return (
        business.business_id, customer_id, category_id, plan.access_type,
        plan.participation_confirmed, plan.personal_data_consent, len(sales),
        sum(sale.check_minor_units for sale in sales),
        sales[0].moment if sales else None, sales[-1].moment if sales else None,
        plan.created_at, plan.given_name, plan.family_name, plan.language,
    )  # fmt: skip


def _sale_rows(
    tables: dict[str, list[tuple[Any, ...]]],
    business: Business,
    plan: MemberPlan,
    customer_id: int,
    pocket_id: int,
    counters: _Counters,
) -> None:
    business_id = business.business_id
    transactions, entries = tables["transactions"], tables["ledger_entries"]
    for sale in plan.sales:
        transaction_id = counters.transaction
        counters.transaction += 1
        point_of_sale_id, terminal_id = business.tills[sale.till]
        check_number = f"G{transaction_id}"
        digest = hashlib.blake2b(check_number.encode(), digest_size=_request_digest_bytes).digest()
        transactions.append(
            (
                business_id, transaction_id, terminal_id, point_of_sale_id, check_number,
                digest, customer_id, "completed", sale.check_minor_units, sale.moment,
                sale.moment, None,
            )
        )  # fmt: skip
        for kind, amount in (
            ("redeem", -sale.redeemed_hundredths),
            ("accrue", sale.accrued_hundredths),
        ):
            if amount:
                entries.append(
                    (
                        business_id, counters.entry, pocket_id, transaction_id, kind, amount,
                        None, sale.moment,
                    )
                )  # fmt: skip
                counters.entry += 1


def _credit_rows(
    tables: dict[str, list[tuple[Any, ...]]],
    business: Business,
    credit: PlannedCredit,
    customer_id: int,
    pocket_id: int,
    counters: _Counters,
) -> None:
    """An administrator's credit of special points, as apply-customer-operation stores
    it on the business's busiest till (no audit log entry is made up)."""
    business_id = business.business_id
    point_of_sale_id, terminal_id = business.tills[0]
    expires_at = credit.moment + timedelta(days=credit.valid_days)
    requested = PointsCredit(credit.points_hundredths, valid_days=credit.valid_days)
    applied = PointsCredit(credit.points_hundredths, expires_at)
    transaction_id = counters.transaction
    counters.transaction += 1
    tables["transactions"].append(
        (
            business_id, transaction_id, terminal_id, point_of_sale_id,
            f"{check_number_prefix}generated-{customer_id}",
            request_digest(customer_id, requested), customer_id, "completed", 0, credit.moment,
            credit.moment, json.dumps(operation_document(applied)),
        )
    )  # fmt: skip
    tables["ledger_entries"].append(
        (
            business_id, counters.entry, pocket_id, transaction_id, "adjust",
            credit.points_hundredths, expires_at, credit.moment,
        )
    )  # fmt: skip
    counters.entry += 1
    tables["points_lots"].append(
        (business_id, counters.lot, pocket_id, credit.points_hundredths, expires_at, credit.moment)
    )
    counters.lot += 1
