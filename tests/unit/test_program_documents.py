"""The stored form of a program is an exact inverse of the domain form."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from purse.domain.program import (
    AccrualBase,
    Program,
    Rule,
    RuleKind,
    RuleScope,
    Selector,
    TimeWindow,
    ValueKind,
)
from purse.store.postgres.programs import program_document, program_from_document

codes = st.lists(st.text("ABC123", min_size=1, max_size=5), max_size=3, unique=True).map(tuple)
selectors = st.builds(
    Selector,
    customer_category_ids=st.lists(st.integers(1, 99), max_size=3, unique=True).map(tuple),
    point_of_sale_ids=st.lists(st.integers(1, 99), max_size=3, unique=True).map(tuple),
    product_codes=codes,
    goods_category_codes=codes,
    product_codes_excluded=codes,
    check_sum_min=st.integers(0, 10**6),
    days_of_week=st.lists(st.integers(0, 6), max_size=7, unique=True).map(tuple),
    time_windows=st.lists(
        st.builds(TimeWindow, st.integers(0, 1439), st.integers(0, 1440)), max_size=2
    ).map(tuple),
)
rules = st.builds(
    Rule,
    rule_id=st.integers(1, 10**6),
    title=st.text(max_size=20),
    kind=st.sampled_from(RuleKind),
    scope=st.sampled_from(RuleScope),
    value_kind=st.sampled_from(ValueKind),
    value=st.integers(1, 10**6),
    selector=selectors,
)
programs = st.builds(
    Program,
    currency=st.just("UAH"),
    rules=st.lists(rules, max_size=4).map(tuple),
    accrual_base=st.sampled_from(AccrualBase),
    point_value_minor_units_per_point=st.integers(1, 10**4),
    redemption_share_max_basis_points=st.integers(0, 10_000),
    redemption_check_sum_min=st.integers(0, 10**6),
    points_redemption_limit_without_pin=st.none() | st.integers(0, 10**6),
    hold_seconds=st.integers(1, 86_400),
    cancel_completed_sales=st.booleans(),
)


@given(programs)
def test_a_program_survives_storage_unchanged(program: Program) -> None:
    assert program_from_document(program_document(program), "UAH") == program


def test_an_empty_document_is_the_default_program() -> None:
    assert program_from_document({}, "EUR") == Program(currency="EUR")
