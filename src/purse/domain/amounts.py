"""Integer amounts, the one rounding rule, exact proportional splits, and currencies.

Contract:

* Money is an integer count of the currency's minor units (kopecks, cents; yen have none).
  Points are integer hundredths of a point. Quantities are integer thousandths of a unit
  (0.125 kg = 125, 40.5 l = 40500). Shares are integer basis points (5% = 500).
* There is exactly one rounding rule, `divide_rounded`: the exact rational
  numerator / denominator rounded to the nearest integer, halves away from zero
  (for the non-negative amounts the engine deals in: half-up). It uses integers only.
  Every other function here that has to round calls it; nothing else in the domain rounds.
* `split_proportionally` spreads a whole over weighted parts so that the parts sum exactly
  to the whole: every part gets the floor of its exact share, and the units left over go
  one each to the largest fractional remainders, ties to the lowest index. Callers pass
  lines sorted by position, so "lowest index" means "lowest line position".
* `currency_exponent` knows the ISO 4217 minor-unit exponent of every active currency;
  an unknown code is bad input (InvalidArgument, reason UNKNOWN_CURRENCY).
* No floats anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from purse.domain.errors import echoed, invalid

quantity_thousandths_per_unit: Final = 1000
point_hundredths_per_point: Final = 100
basis_points_per_whole: Final = 10_000

# ISO 4217 active codes by the number of digits of their minor unit.
_codes_by_exponent: Final = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
        "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
        "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR "
        "KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV "
        "MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR "
        "SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH "
        "USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}

currency_exponents: Final[Mapping[str, int]] = MappingProxyType(
    {code: exponent for exponent, codes in _codes_by_exponent.items() for code in codes.split()}
)


def currency_exponent(code: str, field_path: str = "currency") -> int:
    """The minor-unit exponent of an ISO 4217 currency (UAH 2, JPY 0, KWD 3)."""
    exponent = currency_exponents.get(code)
    if exponent is None:
        raise invalid(field_path, f"unknown currency {echoed(code)}", reason="UNKNOWN_CURRENCY")
    return exponent


def divide_rounded(numerator: int, denominator: int) -> int:
    """THE rounding rule: numerator / denominator to the nearest integer, halves away from 0."""
    assert denominator > 0, "denominators are positive by construction"
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def divide_each_rounded(numerators: Iterable[int], denominator: int) -> list[int]:
    """`divide_rounded` over many non-negative numerators at once (the same rule, inlined
    because the engine applies it to every line of a check)."""
    assert denominator > 0, "denominators are positive by construction"
    twice = 2 * denominator
    return [(2 * numerator + denominator) // twice for numerator in numerators]


def amount_of(price: int, quantity: int) -> int:
    """Money for `quantity` thousandths of a unit at `price` minor units per unit."""
    return divide_rounded(price * quantity, quantity_thousandths_per_unit)


def share_of(amount: int, basis_points: int) -> int:
    """`basis_points` of `amount` (500 basis points of 10.00 is 0.50), rounded once."""
    return divide_rounded(amount * basis_points, basis_points_per_whole)


def split_proportionally(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over `weights` so the parts sum exactly to `total`.

    Each part is the floor of its exact share; the leftover units go one each to the
    largest remainders, ties to the lowest index. When 0 <= total <= sum(weights) no part
    exceeds its weight, so a split discount never takes a line below zero.
    """
    return split_list_proportionally(total, list(weights))


def split_list_proportionally(total: int, weights: list[int]) -> list[int]:
    """`split_proportionally` of a list (compiled, a list is read much faster than any
    sequence: the engine, which splits lists only, calls this directly). A new list."""
    weight_sum = sum(weights)
    count = len(weights)
    assert total >= 0, "only non-negative totals are split"
    assert weight_sum > 0 or total == 0, "a positive total needs a positive weight"
    if total == 0:
        return [0] * count
    if total == weight_sum:
        return list(weights)
    products = [total * weight for weight in weights]
    parts = [product // weight_sum for product in products]
    leftover = total - sum(parts)
    if not leftover:
        return parts
    remainders = [product % weight_sum for product in products]
    # The `leftover` largest remainders get one unit each: every remainder above the
    # threshold (the leftover-th largest), then as many of those equal to it as are still
    # due (`ties`), lowest index first. An ascending sort: compiled, a keyword is slower.
    by_size = sorted(remainders)
    threshold = by_size[count - leftover]
    last = count - 1
    while by_size[last] != threshold:
        last -= 1
    ties = leftover - (count - 1 - last)  # minus those above the threshold
    for index, remainder in enumerate(remainders):
        if remainder > threshold:
            parts[index] += 1
        elif remainder == threshold and ties:
            parts[index] += 1
            ties -= 1
    return parts


def format_money(amount: int, exponent: int) -> str:
    """Minor units as a decimal string for people: 10000 with exponent 2 is "100.00"."""
    return _format_scaled(amount, 10**exponent, exponent)


def format_points(points: int) -> str:
    """Hundredths of a point as a decimal string: 1250 is "12.50"."""
    return _format_scaled(points, point_hundredths_per_point, 2)


def format_quantity(quantity: int) -> str:
    """Thousandths of a unit as a decimal string: 40500 is "40.500"."""
    return _format_scaled(quantity, quantity_thousandths_per_unit, 3)


def _format_scaled(value: int, scale: int, digits: int) -> str:
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), scale)
    if digits == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{digits}d}"
