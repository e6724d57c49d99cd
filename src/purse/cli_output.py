"""How `purse terminal` prints an answer: lines a person reads, amounts in their units.

`render(fields, currency, exponent)` takes an answer as `MessageToDict` gives it with
proto field names (int64 values arrive as strings) and returns indented `name: value`
lines. The unit of an amount comes from the contract's naming: `*_minor_units` is money
(shown with the currency's decimals and code), `*_hundredths` points, `*_thousandths`
product units; a pocket's `balance`, `held`, `available`, `expiring` and
`redemption_limit_without_pin` are in the pocket's `unit`, and an adjustment's
`pocket_amount` (and a confirmation reason's `amount` and `limit`) in points for the
points kinds. Enum values lose their type prefix
(`TRANSACTION_STATUS_PENDING` reads `pending`). Nothing here talks to a server.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_suffix_decimals = {"_minor_units": -1, "_hundredths": 2, "_thousandths": 3}
_pocket_amounts = frozenset(
    {"balance", "held", "available", "expiring", "redemption_limit_without_pin"}
)
# Amounts named without a unit that are points inside a points adjustment or reason.
_points_amounts = frozenset({"pocket_amount", "amount", "limit"})
_unit_decimals = {
    "POCKET_UNIT_POINT_HUNDREDTHS": 2,
    "POCKET_UNIT_MINOR_UNITS": -1,
    "POCKET_UNIT_THOUSANDTHS": 3,
}
_indent = "  "


def amount(raw: Any, decimals: int, exponent: int, currency: str) -> str:
    """`25000` in hundredths -> `250.00`; in minor units with exponent 2 -> `250.00 UAH`."""
    if decimals < 0:
        return f"{Decimal(int(raw)).scaleb(-exponent):.{exponent}f} {currency}".strip()
    value = Decimal(int(raw)).scaleb(-decimals)
    if decimals == 3:  # product units: whole cups read as 3, not 3.000
        return f"{value.normalize():f}"
    return f"{value:.{decimals}f}"


def render(fields: dict[str, Any], currency: str, exponent: int) -> list[str]:
    """The lines for one answer."""
    return _lines(fields, currency, exponent, 0, points_kind=False)


def _lines(
    fields: dict[str, Any], currency: str, exponent: int, depth: int, points_kind: bool
) -> list[str]:
    """`points_kind`: inside an adjustment of a points kind (its lines inherit it)."""
    pad = _indent * depth
    unit_decimals = _unit_decimals.get(str(fields.get("unit", "")))
    points_kind = points_kind or any(
        "POINTS" in str(fields.get(key, "")) for key in ("kind", "source_kind")
    )
    lines: list[str] = []
    for key, value in fields.items():
        if key == "unit":
            continue
        name, text = _named(key, value, currency, exponent)
        if unit_decimals is not None and key in _pocket_amounts:
            text = amount(value, unit_decimals, exponent, currency)
        elif key in _points_amounts and points_kind:
            text = amount(value, 2, exponent, currency)
        if isinstance(value, dict):
            lines.append(f"{pad}{name}:")
            lines.extend(_lines(value, currency, exponent, depth + 1, points_kind))
        elif isinstance(value, list):
            lines.append(f"{pad}{name}:")
            lines.extend(_items(value, currency, exponent, depth + 1, points_kind))
        else:
            lines.append(f"{pad}{name}: {text}")
    return lines


def _items(
    values: list[Any], currency: str, exponent: int, depth: int, points_kind: bool
) -> list[str]:
    pad = _indent * depth
    lines: list[str] = []
    for value in values:
        if isinstance(value, dict):
            inner = _lines(value, currency, exponent, depth + 1, points_kind)
            lines.append(f"{pad}- {inner[0].strip()}" if inner else f"{pad}-")
            lines.extend(inner[1:])
        else:
            lines.append(f"{pad}- {value}")
    return lines


def _named(key: str, value: Any, currency: str, exponent: int) -> tuple[str, str]:
    """The printed name of a field and its value as text (amounts by their suffix)."""
    for suffix, decimals in _suffix_decimals.items():
        if key.endswith(suffix) and isinstance(value, str | int):
            return key.removesuffix(suffix).replace("_", " "), amount(
                value, decimals, exponent, currency
            )
    text = str(value)
    if isinstance(value, str) and value.isupper():
        # The enum's name ends with the field's name or its last words (`default_access_type`
        # holds ACCESS_TYPE_FULL; `kind` holds ACCOUNT_KIND_MONEY).
        words = key.upper().split("_")
        for start in range(len(words)):
            prefix = "_".join(words[start:]) + "_"
            if text.startswith(prefix) or f"_{prefix}" in text:
                text = text.split(prefix, 1)[1].lower().replace("_", " ")
                break
    if isinstance(value, bool):
        text = "yes" if value else "no"
    return key.replace("_", " "), text
