"""`purse demo`: a small coffee-shop business to try Purse with, created in one go.

Each run creates a new business (names carry its id), so it can be run any number of
times. Returns the terminal credentials in plain text once; the database keeps only
their hashes.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from purse.domain import credentials
from purse.domain.customers import AccessType, PocketKind
from purse.domain.identifiers import IdentifierKind
from purse.domain.terminals import TerminalKind
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.provisioning import Provisioning

demo_customer_phone = "+380501234567"
demo_customer_card = "DEMO0001"


@dataclass(frozen=True, slots=True)
class DemoBusiness:
    """What a new user needs to talk to the demo business."""

    business_id: int
    business_name: str
    cash_desk_login: str
    cash_desk_password: str
    cash_desk_api_key: str
    steward_login: str
    steward_password: str


async def create_demo(provisioning: Provisioning, customers: CustomerStore) -> DemoBusiness:
    business_id = await provisioning.business(
        "Demo Coffee",
        "UAH",
        2,
        phone_prefix="+380",
        time_zone="Europe/Kyiv",
        default_category_title={"en": "New customers", "uk": "Нові клієнти"},
    )
    program_id = await provisioning.program(business_id, "Demo Coffee Club")
    await provisioning.category(business_id, "Regulars", {"en": "Regulars", "uk": "Постійні"})
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
    cups = await provisioning.account_type(
        business_id,
        PocketKind.PRODUCTS,
        "Coffee cups",
        {"en": "Gift coffee", "uk": "Подарункова кава"},
        product_codes=("ESPRESSO", "CAPPUCCINO", "LATTE"),
        redemption_limit_without_pin=2000,
    )
    await provisioning.account_type(
        business_id,
        PocketKind.MONEY,
        "Wallet",
        {"en": "Wallet", "uk": "Гаманець"},
        redemption_limit_without_pin=50000,
    )
    shop = await provisioning.point_of_sale(
        business_id, program_id, "Demo Coffee, Khreshchatyk 1", time_zone="Europe/Kyiv"
    )
    cash_password, steward_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    cash_hash, steward_hash = await asyncio.gather(
        asyncio.to_thread(credentials.hash_password, cash_password),
        asyncio.to_thread(credentials.hash_password, steward_password),
    )
    cash_login, steward_login = f"demo-{business_id}-cash", f"demo-{business_id}-steward"
    cash_desk = await provisioning.terminal(
        business_id, shop, "Cash desk 1", TerminalKind.CASH_DESK, cash_login, cash_hash
    )
    await provisioning.terminal(
        business_id, shop, "Waiter app", TerminalKind.STEWARD, steward_login, steward_hash
    )
    api_key = credentials.new_api_key()
    await provisioning.api_key(business_id, cash_desk, credentials.api_key_digest(api_key), "demo")
    customer_id, _ = await customers.enrol(business_id, demo_customer_phone, AccessType.FULL)
    await customers.add_identifier(
        business_id, customer_id, IdentifierKind.CARD_NUMBER, demo_customer_card
    )
    await provisioning.adjust_pocket(business_id, customer_id, 0, 25_000)
    await provisioning.adjust_pocket(business_id, customer_id, cups, 3_000)
    return DemoBusiness(
        business_id,
        "Demo Coffee",
        cash_login,
        cash_password,
        api_key,
        steward_login,
        steward_password,
    )
