"""`purse demo`: a small coffee-shop business to try Purse with, created in one go.

Each run creates a new business (names carry its id), so it can be run any number of
times. Returns the credentials in plain text once; the database keeps only their hashes.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from purse.domain import credentials
from purse.domain.administrators import operator_actor
from purse.domain.customers import POINTS_ACCOUNT_TYPE_ID, AccessType, PocketKind
from purse.domain.identifiers import IdentifierKind
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
from purse.domain.terminals import TerminalKind
from purse.service.admin.programs import Programs
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.provisioning import Provisioning

demo_customer_phone = "+380501234567"
demo_customer_card = "DEMO0001"
_coffee = ("ESPRESSO", "CAPPUCCINO", "LATTE")


@dataclass(frozen=True, slots=True)
class DemoBusiness:
    """What a new user needs to talk to the demo business."""

    business_id: int
    business_name: str
    program_id: int
    cash_desk_login: str
    cash_desk_password: str
    cash_desk_api_key: str
    steward_login: str
    steward_password: str
    administrator_api_key: str
    coupon_code: str
    certificate_code: str


def demo_program(currency: str) -> Program:
    """Demo Coffee Club: points back, a bakery discount, morning coffee, a big-check bonus."""
    return Program(
        currency=currency,
        rules=(
            Rule(1, "5% back in points", RuleKind.ACCRUAL, RuleScope.LINE, ValueKind.PERCENT, 500),
            Rule(
                2, "Bakery -10%", RuleKind.DISCOUNT, RuleScope.LINE, ValueKind.PERCENT, 1000,
                Selector(goods_category_codes=("bakery",)),
            ),
            Rule(
                3, "Morning coffee -15%", RuleKind.DISCOUNT, RuleScope.LINE, ValueKind.PERCENT,
                1500,
                Selector(
                    goods_category_codes=("coffee",),
                    days_of_week=(0, 1, 2, 3, 4),
                    time_windows=(TimeWindow(7 * 60, 10 * 60),),
                ),
            ),
            Rule(
                4, "10 bonus points for checks from 200.00", RuleKind.ACCRUAL, RuleScope.CHECK,
                ValueKind.FIXED, 1000, Selector(check_sum_min=20_000),
            ),
        ),
        accrual_base=AccrualBase.PAID,
        point_value_minor_units_per_point=100,
        redemption_share_max_basis_points=5000,
        points_redemption_limit_without_pin=10_000,
    )  # fmt: skip


async def create_demo(
    provisioning: Provisioning, customers: CustomerStore, programs: Programs
) -> DemoBusiness:
    business_id = await provisioning.business(
        "Demo Coffee", "UAH", 2, phone_prefix="+380", time_zone="Europe/Kyiv",
        default_category_title={"en": "New customers", "uk": "Нові клієнти"},
    )  # fmt: skip
    program_id = await provisioning.program(business_id, "Demo Coffee Club")
    await programs.replace(operator_actor(business_id), program_id, demo_program("UAH"))
    await provisioning.category(business_id, "Regulars", {"en": "Regulars", "uk": "Постійні"})
    await _goods(provisioning, business_id)
    cups = await _accounts(provisioning, business_id)
    shop = await provisioning.point_of_sale(
        business_id, program_id, "Demo Coffee, Khreshchatyk 1", time_zone="Europe/Kyiv"
    )
    cash_login, cash_password, cash_key = await _terminal(
        provisioning, business_id, shop, TerminalKind.CASH_DESK
    )
    steward_login, steward_password, _ = await _terminal(
        provisioning, business_id, shop, TerminalKind.STEWARD
    )
    coupon_code, certificate_code = await _customer(provisioning, customers, business_id, cups)
    administrator_key = credentials.new_api_key()
    await provisioning.admin_api_key(
        business_id, credentials.api_key_digest(administrator_key), "demo"
    )
    return DemoBusiness(
        business_id, "Demo Coffee", program_id, cash_login, cash_password, cash_key,
        steward_login, steward_password, administrator_key, coupon_code, certificate_code,
    )  # fmt: skip


async def _goods(provisioning: Provisioning, business_id: int) -> None:
    coffee = await provisioning.goods_category(business_id, "coffee", "Coffee")
    bakery = await provisioning.goods_category(business_id, "bakery", "Bakery")
    await provisioning.goods(
        business_id,
        [
            ("ESPRESSO", "Espresso", 4500, coffee),
            ("CAPPUCCINO", "Cappuccino", 6500, coffee),
            ("LATTE", "Latte", 7000, coffee),
            ("CROISSANT", "Croissant", 5500, bakery),
        ],
    )


async def _accounts(provisioning: Provisioning, business_id: int) -> int:
    """Gift cups (returned), a wallet, and every 7th coffee free."""
    cups = await provisioning.account_type(
        business_id, PocketKind.PRODUCTS, "Coffee cups",
        {"en": "Gift coffee", "uk": "Подарункова кава"},
        product_codes=_coffee, redemption_limit_without_pin=2000,
    )  # fmt: skip
    await provisioning.account_type(
        business_id, PocketKind.MONEY, "Wallet", {"en": "Wallet", "uk": "Гаманець"},
        redemption_limit_without_pin=50_000,
    )  # fmt: skip
    await provisioning.account_type(
        business_id, PocketKind.ACHIEVEMENTS, "Every 7th coffee",
        {"en": "Every 7th coffee free", "uk": "Кожна 7-ма кава безкоштовно"},
        product_codes=_coffee, purchases_per_reward=7,
    )  # fmt: skip
    return cups


async def _terminal(
    provisioning: Provisioning, business_id: int, shop: int, kind: TerminalKind
) -> tuple[str, str, str]:
    """(login, password, API key) of a new terminal."""
    login = f"demo-{business_id}-{'cash' if kind is TerminalKind.CASH_DESK else kind.value}"
    password = secrets.token_urlsafe(12)
    password_hash = await asyncio.to_thread(credentials.hash_password, password)
    name = "Cash desk 1" if kind is TerminalKind.CASH_DESK else "Waiter app"
    terminal_id = await provisioning.terminal(business_id, shop, name, kind, login, password_hash)
    api_key = credentials.new_api_key()
    await provisioning.api_key(
        business_id, terminal_id, credentials.api_key_digest(api_key), "demo"
    )
    return login, password, api_key


async def _customer(
    provisioning: Provisioning, customers: CustomerStore, business_id: int, cups: int
) -> tuple[str, str]:
    """The demo customer with points, gift cups and a coupon; a certificate to pay with."""
    customer_id, _ = await customers.enrol(business_id, demo_customer_phone, AccessType.FULL)
    await customers.add_identifier(
        business_id, customer_id, IdentifierKind.CARD_NUMBER, demo_customer_card
    )
    await provisioning.adjust_pocket(business_id, customer_id, POINTS_ACCOUNT_TYPE_ID, 25_000)
    await provisioning.adjust_pocket(business_id, customer_id, cups, 3_000)
    series = await provisioning.coupon_series(
        business_id, "Free espresso", "free_product", 1000, product_codes=("ESPRESSO",),
        coupons_max=1000,
    )  # fmt: skip
    coupon_code, certificate_code = f"ESPRESSO-{business_id}", f"GIFT-{business_id}"
    await provisioning.coupon(business_id, series, coupon_code, customer_id)
    await provisioning.certificate(business_id, certificate_code, 50_000)
    return coupon_code, certificate_code
