"""Integer amounts: the one rounding rule, exact splits, currencies, formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.domain.amounts import (
    amount_of,
    currency_exponent,
    currency_exponents,
    divide_each_rounded,
    divide_rounded,
    format_money,
    format_points,
    format_quantity,
    share_of,
    split_proportionally,
)
from purse.domain.errors import InvalidArgument


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 7, 0),
        (14, 7, 2),
        (5, 10, 1),  # a half goes up
        (4, 10, 0),
        (6, 10, 1),
        (15, 10, 2),
        (25, 10, 3),  # not to even: 2.5 -> 3
        (-5, 10, -1),  # halves go away from zero on both sides
        (-4, 10, 0),
        (1, 3, 0),
        (2, 3, 1),
    ],
)
def test_rounding_is_half_up_on_the_exact_rational(
    numerator: int, denominator: int, expected: int
) -> None:
    assert divide_rounded(numerator, denominator) == expected


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(1, 10**12))
def test_rounding_is_never_more_than_half_a_unit_away(numerator: int, denominator: int) -> None:
    rounded = divide_rounded(numerator, denominator)
    assert abs(rounded * denominator - numerator) * 2 <= denominator


@given(st.lists(st.integers(0, 10**15), max_size=50), st.integers(1, 10**9))
def test_rounding_many_at_once_is_the_same_rule(numerators: list[int], denominator: int) -> None:
    assert divide_each_rounded(numerators, denominator) == [
        divide_rounded(numerator, denominator) for numerator in numerators
    ]


def test_a_line_amount_is_price_times_quantity_in_thousandths() -> None:
    assert amount_of(4550, 40500) == 184275  # 40.5 l at 45.50
    assert amount_of(12999, 125) == 1625  # 0.125 kg at 129.99 is 16.24875
    assert amount_of(100, 1000) == 100


def test_a_share_is_in_basis_points() -> None:
    assert share_of(10000, 500) == 500  # 5% of 100.00
    assert share_of(999, 1000) == 100  # 10% of 9.99 is 0.999
    assert share_of(5, 1000) == 1  # 0.5 goes up


def test_a_split_gives_leftover_units_to_the_largest_remainders() -> None:
    assert split_proportionally(100, [1, 1, 1]) == [34, 33, 33]
    assert split_proportionally(10, [3, 3, 4]) == [3, 3, 4]
    assert split_proportionally(7, [10, 20, 40]) == [1, 2, 4]
    assert split_proportionally(5, [1, 2, 2]) == [1, 2, 2]
    assert split_proportionally(2, [1, 1, 1, 1]) == [1, 1, 0, 0]  # ties: lowest index


def test_a_split_of_nothing_or_everything_is_exact() -> None:
    assert split_proportionally(0, [5, 0, 7]) == [0, 0, 0]
    assert split_proportionally(12, [5, 0, 7]) == [5, 0, 7]


@given(
    st.lists(st.integers(0, 10**12), min_size=1, max_size=60).filter(lambda ws: sum(ws) > 0),
    st.data(),
)
def test_split_parts_always_sum_to_the_whole_and_never_exceed_their_weight(
    weights: list[int], data: st.DataObject
) -> None:
    total = data.draw(st.integers(0, sum(weights)))
    parts = split_proportionally(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert 0 <= part <= weight
        # each part is its exact share rounded down or up
        assert part * weight_sum <= total * weight + weight_sum
        assert part * weight_sum >= total * weight - weight_sum


@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=30), st.integers(0, 10**9))
def test_split_parts_sum_to_the_whole_even_above_the_weights(
    weights: list[int], total: int
) -> None:
    assert sum(split_proportionally(total, weights)) == total


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("UAH", 2), ("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("CLF", 4)],
)
def test_currencies_know_their_minor_unit(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


def test_an_unknown_currency_is_bad_input_with_its_field_path() -> None:
    with pytest.raises(InvalidArgument) as raised:
        currency_exponent("XYZ", "check.currency")
    assert raised.value.reason == "UNKNOWN_CURRENCY"
    assert raised.value.violations[0].field == "check.currency"
    assert "usd" not in currency_exponents  # codes are upper case, exactly


def test_amounts_are_formatted_with_the_currency_exponent() -> None:
    assert format_money(10000, 2) == "100.00"
    assert format_money(5, 2) == "0.05"
    assert format_money(-150, 2) == "-1.50"
    assert format_money(1500, 0) == "1500"
    assert format_money(1234, 3) == "1.234"
    assert format_points(1250) == "12.50"
    assert format_quantity(40500) == "40.500"
