"""`purse demo`: a small coffee-shop business, set up through the public API alone.

It proves the API is enough to start a business from nothing: the operator founds the
business (PlatformService), its owner sets it up (AdminService: program and rules,
categories, goods, accounts, point of sale, terminals and their keys, a coupon series,
a certificate), a till enrols the demo customer (TerminalService), and the owner gives
the customer points, gift cups, a card and a coupon from the customer's card. Nothing
here reads or writes the database. Each run founds a new business; the credentials are
returned once, in plain text (the server keeps only hashes).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.admin.v1 import customers_pb2 as customers
from purse.admin.v1 import setup_pb2 as setup
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.platform.v1 import platform_service_pb2 as platform
from purse.platform.v1.platform_service_pb2_grpc import PlatformServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as terminal
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.admin.v1.admin_service_pb2_grpc import AdminServiceAsyncStub

demo_customer_phone = "+380501234567"
demo_customer_card = "DEMO0001"
demo_business_name = "Demo Coffee"
_coffee = ["ESPRESSO", "CAPPUCCINO", "LATTE"]
Metadata = tuple[tuple[str, str]]


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
    owner_login: str
    owner_password: str
    coupon_code: str
    certificate_code: str


def bearer(credential: str) -> Metadata:
    return (("authorization", f"Bearer {credential}"),)


def demo_rules() -> admin.ProgramRules:
    """Demo Coffee Club: points back, a bakery discount, morning coffee, a big-check bonus."""
    return admin.ProgramRules(
        rules=[
            admin.Rule(
                rule_id=1, title="5% back in points", kind=admin.RULE_KIND_ACCRUAL,
                scope=admin.RULE_SCOPE_LINE, value_kind=admin.VALUE_KIND_PERCENT, value=500,
            ),
            admin.Rule(
                rule_id=2, title="Bakery -10%", kind=admin.RULE_KIND_DISCOUNT,
                scope=admin.RULE_SCOPE_LINE, value_kind=admin.VALUE_KIND_PERCENT, value=1000,
                selector=admin.Selector(goods_category_codes=["bakery"]),
            ),
            admin.Rule(
                rule_id=3, title="Morning coffee -15%", kind=admin.RULE_KIND_DISCOUNT,
                scope=admin.RULE_SCOPE_LINE, value_kind=admin.VALUE_KIND_PERCENT, value=1500,
                selector=admin.Selector(
                    goods_category_codes=["coffee"], days_of_week=[0, 1, 2, 3, 4],
                    time_windows=[admin.TimeWindow(start_minute=7 * 60, end_minute=10 * 60)],
                ),
            ),
            admin.Rule(
                rule_id=4, title="10 bonus points for checks from 200.00",
                kind=admin.RULE_KIND_ACCRUAL, scope=admin.RULE_SCOPE_CHECK,
                value_kind=admin.VALUE_KIND_FIXED, value=1000,
                selector=admin.Selector(check_sum_min_minor_units=20_000),
            ),
        ],
        accrual_base=admin.ACCRUAL_BASE_PAID,
        point_value_minor_units_per_point=100,
        redemption_share_max_basis_points=5000,
        points_redemption_limit_without_pin_hundredths=10_000,
    )  # fmt: skip


async def create_demo(
    channel: grpc.aio.Channel, operator_key: str, name: str = demo_business_name
) -> DemoBusiness:
    """Found and set up the demo business, called `name`, through the API at `channel`."""
    owner_login, owner_password = f"demo-owner-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    founded = await PlatformServiceStub(channel).CreateBusiness(
        platform.CreateBusinessRequest(
            name=name, currency="UAH", languages=["en", "uk"], time_zone="Europe/Kyiv",
            phone_prefix="+380", owner_login=owner_login, owner_password=owner_password,
            owner_name="Demo owner",
        ),
        metadata=bearer(operator_key),
    )  # fmt: skip
    owner = bearer(founded.owner_api_key)
    stub: AdminServiceAsyncStub = AdminServiceStub(channel)
    await _goods(stub, owner)  # the rules name its goods categories
    program_id = await _program(stub, owner)
    await stub.CreateCustomerCategory(
        admin.CreateCustomerCategoryRequest(
            category=admin.CustomerCategory(
                name="Regulars", title={"en": "Regulars", "uk": "Постійні"}
            )
        ),
        metadata=owner,
    )
    cups = await _accounts(stub, owner)
    shop = await stub.CreatePointOfSale(
        setup.CreatePointOfSaleRequest(
            point_of_sale=setup.PointOfSale(
                program_id=program_id, name="Demo Coffee, Khreshchatyk 1",
                time_zone="Europe/Kyiv", title={"en": "Demo Coffee", "uk": "Демо Кава"},
                address={"en": "Khreshchatyk 1, Kyiv", "uk": "Хрещатик 1, Київ"}, published=True,
            )
        ),
        metadata=owner,
    )  # fmt: skip
    business_id, shop_id = founded.business_id, shop.point_of_sale.point_of_sale_id
    cash = await create_terminal(
        stub, owner, shop_id, terminal.TERMINAL_KIND_CASH_DESK, f"demo-{business_id}-cash"
    )
    steward = await create_terminal(
        stub, owner, shop_id, terminal.TERMINAL_KIND_STEWARD, f"demo-{business_id}-steward"
    )
    coupon_code, certificate_code = await _customer(channel, stub, owner, business_id, cash, cups)
    return DemoBusiness(
        business_id, name, program_id, cash[1], cash[2], cash[3], steward[1],
        steward[2], founded.owner_api_key, owner_login, owner_password, coupon_code,
        certificate_code,
    )  # fmt: skip


async def _program(stub: AdminServiceAsyncStub, owner: Metadata) -> int:
    created = await stub.CreateProgram(
        setup.CreateProgramRequest(
            program=setup.Program(
                name="Demo Coffee Club", enrols_unknown_phones=True,
                default_access_type=common_pb2.ACCESS_TYPE_FULL,
                notice_channel=setup.NOTICE_CHANNEL_SMS,
            )
        ),
        metadata=owner,
    )  # fmt: skip
    program = created.program
    await stub.SetProgramRules(
        admin.SetProgramRulesRequest(
            program_id=program.program_id,
            rules=demo_rules(),
            expected_rules_version=program.rules_version,
        ),
        metadata=owner,
    )
    return int(program.program_id)


async def _goods(stub: AdminServiceAsyncStub, owner: Metadata) -> None:
    for code, name in (("coffee", "Coffee"), ("bakery", "Bakery")):
        await stub.CreateGoodsCategory(
            catalogue.CreateGoodsCategoryRequest(
                goods_category=catalogue.GoodsCategory(code=code, name=name)
            ),
            metadata=owner,
        )
    await stub.UpsertGoods(
        catalogue.UpsertGoodsRequest(
            goods=[
                catalogue.Goods(product_code=code, title=title, price_minor_units=price,
                                goods_category_code=category)
                for code, title, price, category in (
                    ("ESPRESSO", "Espresso", 4500, "coffee"),
                    ("CAPPUCCINO", "Cappuccino", 6500, "coffee"),
                    ("LATTE", "Latte", 7000, "coffee"),
                    ("CROISSANT", "Croissant", 5500, "bakery"),
                )
            ]
        ),
        metadata=owner,
    )  # fmt: skip


async def _accounts(stub: AdminServiceAsyncStub, owner: Metadata) -> int:
    """Gift cups (returned), a wallet, and every 7th coffee free."""
    made: list[int] = []
    for account in (
        catalogue.AccountType(
            kind=catalogue.ACCOUNT_KIND_PRODUCTS, name="Coffee cups",
            title={"en": "Gift coffee", "uk": "Подарункова кава"}, product_codes=_coffee,
            redemption_limit_without_pin=2000,
        ),
        catalogue.AccountType(
            kind=catalogue.ACCOUNT_KIND_MONEY, name="Wallet",
            title={"en": "Wallet", "uk": "Гаманець"}, redemption_limit_without_pin=50_000,
        ),
        catalogue.AccountType(
            kind=catalogue.ACCOUNT_KIND_ACHIEVEMENTS, name="Every 7th coffee",
            title={"en": "Every 7th coffee free", "uk": "Кожна 7-ма кава безкоштовно"},
            product_codes=_coffee, purchases_per_reward=7,
        ),
    ):  # fmt: skip
        created = await stub.CreateAccountType(
            catalogue.CreateAccountTypeRequest(account_type=account), metadata=owner
        )
        made.append(created.account_type.account_type_id)
    return made[0]


async def create_terminal(
    stub: AdminServiceAsyncStub, owner: Metadata, shop_id: int, kind: int, login: str
) -> tuple[int, str, str, str]:
    """(terminal id, login, password, API key) of a new terminal at the point of sale."""
    cash = kind == terminal.TERMINAL_KIND_CASH_DESK
    password = secrets.token_urlsafe(12)
    created = await stub.CreateTerminal(
        setup.CreateTerminalRequest(
            terminal=setup.Terminal(
                point_of_sale_id=shop_id, name="Cash desk 1" if cash else "Waiter app",
                kind=kind, login=login,  # type: ignore[arg-type]
            ),
            password=password,
        ),
        metadata=owner,
    )  # fmt: skip
    terminal_id = created.terminal.terminal_id
    key = await stub.CreateTerminalApiKey(
        setup.CreateTerminalApiKeyRequest(terminal_id=terminal_id, name="demo"), metadata=owner
    )
    return terminal_id, login, password, key.secret


async def _customer(
    channel: grpc.aio.Channel,
    stub: AdminServiceAsyncStub,
    owner: Metadata,
    business_id: int,
    cash: tuple[int, str, str, str],
    cups: int,
) -> tuple[str, str]:
    """The demo customer, enrolled at the till, with points, gift cups, a card and a
    coupon from the customer's card; a certificate to pay with."""
    till = TerminalServiceStub(channel)
    identified = await till.IdentifyCustomer(
        terminal.IdentifyCustomerRequest(
            identifier=common_pb2.CustomerIdentifier(phone=demo_customer_phone)
        ),
        metadata=bearer(cash[3]),
    )
    customer_id = identified.membership.customer_id
    await stub.AddCustomerCard(
        admin.AddCustomerCardRequest(
            customer_id=customer_id, kind=common_pb2.IDENTIFIER_KIND_CARD_NUMBER,
            value=demo_customer_card,
        ),
        metadata=owner,
    )  # fmt: skip
    series = await stub.CreateCouponSeries(
        catalogue.CreateCouponSeriesRequest(
            coupon_series=catalogue.CouponSeries(
                name="Free espresso", title={"en": "Free espresso", "uk": "Безкоштовне еспресо"},
                kind=catalogue.COUPON_KIND_FREE_PRODUCT, value=1000,
                product_codes=["ESPRESSO"], coupons_max=1000,
            )
        ),
        metadata=owner,
    )  # fmt: skip
    coupon_code, certificate_code = f"ESPRESSO-{business_id}", f"GIFT-{business_id}"
    welcome: dict[str, dict[str, object]] = {
        "welcome-points": {
            "credit_points": customers.PointsCreditOperation(points_hundredths=25_000)
        },
        "welcome-cups": {
            "credit_account": customers.AccountCreditOperation(account_type_id=cups, amount=3_000)
        },
        "welcome-coupon": {
            "issue_coupon": customers.CouponIssueOperation(
                series_id=series.coupon_series.series_id, code=coupon_code
            )
        },
    }
    for key, operation in welcome.items():
        await stub.ApplyCustomerOperation(
            admin.ApplyCustomerOperationRequest(
                customer_id=customer_id, terminal_id=cash[0], idempotency_key=key,
                **operation,  # type: ignore[arg-type]
            ),
            metadata=owner,
        )  # fmt: skip
    await stub.CreateCertificate(
        catalogue.CreateCertificateRequest(
            certificate=catalogue.Certificate(code=certificate_code, balance_minor_units=50_000)
        ),
        metadata=owner,
    )
    return coupon_code, certificate_code
