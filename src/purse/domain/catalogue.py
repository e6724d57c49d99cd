"""What a business configures once and terminals read: customer categories, account types."""

from __future__ import annotations

from dataclasses import dataclass

from purse.domain.customers import PocketKind


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
class Catalogue:
    """Everything a terminal reads about its business's setup."""

    customer_categories: tuple[CustomerCategory, ...]
    account_types: tuple[AccountType, ...]
