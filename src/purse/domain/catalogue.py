"""What a business configures once and terminals read: customer categories, account
types, goods and their categories.

Goods category codes are exact: a check line's `goods_category_code` must be one of the
business's catalogue, as written there (case included), or the check is refused naming
the line. A code that matched nothing would silently leave the line out of every rule
that selects by category; a refusal tells the till at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from purse.domain.checks import CheckLine, product_code_length_max_characters
from purse.domain.customers import PocketKind
from purse.domain.errors import FieldViolation, InvalidArgument, echoed


@dataclass(frozen=True, slots=True)
class CustomerCategory:
    """A customer category; exactly one per business is the default ("New customers")."""

    category_id: int
    name: str
    title: dict[str, str]
    is_default: bool


@dataclass(frozen=True, slots=True)
class AccountType:
    """A customer account type: money, products or achievements."""

    account_type_id: int
    kind: PocketKind
    name: str
    title: dict[str, str]
    product_codes: tuple[str, ...]
    redemption_limit_without_pin: int | None
    purchases_per_reward: int = 0


@dataclass(frozen=True, slots=True)
class GoodsCategory:
    """A goods category: the code rules and check lines name, and its name."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Goods:
    """A product of the catalogue; price in minor units, category code empty for none."""

    product_code: str
    title: str
    price_minor_units: int
    goods_category_code: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything a terminal reads about its business's setup."""

    customer_categories: tuple[CustomerCategory, ...]
    account_types: tuple[AccountType, ...]


def check_goods_categories(lines: Sequence[CheckLine], known: Collection[str]) -> None:
    """Raise InvalidArgument (GOODS_CATEGORY_UNKNOWN) naming every line, by its index as
    sent, whose goods category code is not in `known` (the business's codes). A code too
    long to be anyone's is left to the engine's check of the lines, which names it so."""
    violations = tuple(
        FieldViolation(
            f"check.lines[{index}].goods_category_code",
            f"{echoed(line.goods_category_code)} is not a goods category of this business",
        )
        for index, line in enumerate(lines)
        if line.goods_category_code
        and len(line.goods_category_code) <= product_code_length_max_characters
        and line.goods_category_code not in known
    )
    if violations:
        raise InvalidArgument(
            message=f"{violations[0].field}: {violations[0].description}",
            reason="GOODS_CATEGORY_UNKNOWN",
            violations=violations,
        )
