"""A business from nothing to its first sale, through Purse's public gRPC API alone.

This is what an integrator writes on day one, kept short enough to copy. It uses only the
generated stubs that ship in purse-client (`pip install ./clients/python`: purse.platform.v1,
purse.admin.v1, purse.v1) and talks to a running server; it never touches the database.
(examples/till_day.py does a till's day with that package's typed clients instead.)

  1. As the operator of the instance (PlatformService): found a business and its owner.
  2. As that owner (AdminService), signed in with the owner's password: goods categories
     and goods (first: rules may only name goods categories the catalogue has), a program
     and its rules, a customer category, a point of sale, a terminal and its API key, two
     account types and a coupon series.
  3. As the terminal (TerminalService), with its API key: identify (and so enrol) a new
     customer by phone, calculate a check, process it, and process it again with the same
     check number to see the first answer come back.
  4. As the owner again: the customer's card with the points the sale accrued, and the
     audit log every change above was written to.

Run it against a server (`make serve`), with an operator key made on the server's machine:

    export PURSE_OPERATOR_KEY=$(purse operator-key create --name integrator)
    python examples/first_business.py --target 127.0.0.1:50051

Every run founds a new business (owner logins are unique on an instance). A refused call
stops the script: it prints the gRPC status code, the ErrorInfo reason and every field
violation, and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from typing import TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.admin.v1 import setup_pb2 as setup
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.platform.v1 import platform_service_pb2 as platform
from purse.platform.v1.platform_service_pb2_grpc import PlatformServiceStub
from purse.v1 import common_pb2 as common
from purse.v1 import terminal_service_pb2 as terminal
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

call_seconds_max = 15.0
connect_seconds_max = 10.0
customer_phone = "+380501112233"
check_number = "CHECK-0001"

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)


class CallFailed(Exception):
    """A call the server refused, with what the script was doing."""

    def __init__(self, what: str, error: grpc.RpcError) -> None:
        super().__init__(what)
        self.what = what
        self.error = error


def call(
    what: str,
    method: grpc.UnaryUnaryMultiCallable[Request, Response],
    request: Request,
    credential: str = "",
) -> Response:
    """`method(request)` with `authorization: Bearer <credential>` and a deadline."""
    metadata = (("authorization", f"Bearer {credential}"),) if credential else None
    try:
        return method(request, metadata=metadata, timeout=call_seconds_max)
    except grpc.RpcError as error:
        raise CallFailed(what, error) from error


def describe(failure: CallFailed) -> str:
    """The status code and message, the ErrorInfo reason, and each field violation."""
    error = failure.error
    if not isinstance(error, grpc.Call):  # what a call raises is both; this is for mypy
        return f"{failure.what} failed: {error}"
    lines = [f"{failure.what} failed: {error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)  # the google.rpc.Status in the trailers, if any
    details: list[any_pb2.Any] = list(status.details) if status is not None else []
    for detail in details:
        info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            about = "".join(f"; {key}={value}" for key, value in sorted(info.metadata.items()))
            lines.append(f"  reason: {info.reason} (domain {info.domain}{about})")
        elif detail.Unpack(bad_request):
            lines += [
                f"  field {violation.field}: {violation.description}"
                for violation in bad_request.field_violations
            ]
    return "\n".join(lines)


def money(minor_units: int) -> str:
    """Minor units as currency units (UAH has two digits after the point)."""
    return f"{minor_units / 100:.2f}"


def points(hundredths: int) -> str:
    """Points are counted in hundredths."""
    return f"{hundredths / 100:.2f}"


def found_business(channel: grpc.Channel, operator_key: str) -> tuple[str, str]:
    """The operator creates the business and its owner; returns the owner's login and
    password (the owner's API key in the answer is not needed: the owner signs in)."""
    login, password = f"owner-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    founded = call(
        "CreateBusiness",
        PlatformServiceStub(channel).CreateBusiness,
        platform.CreateBusinessRequest(
            name="Corner Coffee", currency="UAH", languages=["en", "uk"],
            time_zone="Europe/Kyiv", phone_prefix="+380", owner_login=login,
            owner_password=password, owner_name="Olena, the owner",
        ),
        operator_key,
    )  # fmt: skip
    print(
        f"CreateBusiness: business {founded.business_id} 'Corner Coffee' (UAH, Europe/Kyiv),"
        f" owner administrator {founded.owner_administrator_id} with login {login}"
    )
    return login, password


def sign_in(stub: AdminServiceStub, login: str, password: str) -> str:
    """The owner's password, exchanged for a bearer token."""
    signed = call("SignIn", stub.SignIn, admin.SignInRequest(login=login, password=password))
    role = admin.AdministratorRole.Name(signed.administrator.role)
    print(
        f"SignIn: {signed.administrator.login} ({role}) of business {signed.business_id},"
        f" token valid until {signed.expire_time.ToDatetime():%Y-%m-%d %H:%M} UTC"
    )
    return signed.token


def program_rules() -> admin.ProgramRules:
    """5 % back in points on what the customer pays; 10 % off anything from the bakery."""
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
        ],
        accrual_base=admin.ACCRUAL_BASE_PAID,
        point_value_minor_units_per_point=100,  # one point pays 1.00 UAH
        redemption_share_max_basis_points=5000,  # points pay up to half a check
    )  # fmt: skip


def set_up_program(stub: AdminServiceStub, owner: str) -> int:
    created = call(
        "CreateProgram",
        stub.CreateProgram,
        setup.CreateProgramRequest(
            program=setup.Program(
                name="Corner Coffee Club", enrols_unknown_phones=True,
                default_access_type=common.ACCESS_TYPE_FULL,
                notice_channel=setup.NOTICE_CHANNEL_NONE,
            )
        ),
        owner,
    )  # fmt: skip
    program = created.program
    print(f"CreateProgram: program {program.program_id} '{program.name}', no rules yet")
    rules = call(
        "SetProgramRules",
        stub.SetProgramRules,
        admin.SetProgramRulesRequest(
            program_id=program.program_id,
            rules=program_rules(),
            expected_rules_version=program.rules_version,
        ),
        owner,
    )
    print(f"SetProgramRules: rules version {rules.rules_version}: 5% back in points, bakery -10%")
    return program.program_id


def set_up_customer_category(stub: AdminServiceStub, owner: str) -> None:
    created = call(
        "CreateCustomerCategory",
        stub.CreateCustomerCategory,
        admin.CreateCustomerCategoryRequest(
            category=admin.CustomerCategory(
                name="Regulars", title={"en": "Regulars", "uk": "Постійні"}
            )
        ),
        owner,
    )
    category = created.category
    print(f"CreateCustomerCategory: category {category.category_id} '{category.name}'")


def set_up_shop(stub: AdminServiceStub, owner: str, program_id: int) -> str:
    """A point of sale, a cash desk there, and the cash desk's API key (returned)."""
    shop = call(
        "CreatePointOfSale",
        stub.CreatePointOfSale,
        setup.CreatePointOfSaleRequest(
            point_of_sale=setup.PointOfSale(
                program_id=program_id, name="Corner Coffee, Main St 1",
                time_zone="Europe/Kyiv", title={"en": "Corner Coffee"},
                address={"en": "Main St 1, Kyiv"}, published=True,
            )
        ),
        owner,
    ).point_of_sale  # fmt: skip
    print(f"CreatePointOfSale: point of sale {shop.point_of_sale_id} '{shop.name}'")
    till = call(
        "CreateTerminal",
        stub.CreateTerminal,
        setup.CreateTerminalRequest(
            terminal=setup.Terminal(
                point_of_sale_id=shop.point_of_sale_id, name="Till 1",
                kind=terminal.TERMINAL_KIND_CASH_DESK, login=f"till-{secrets.token_hex(4)}",
                enabled=True,  # unset would mean the same: a new terminal works at once
            ),
            password=secrets.token_urlsafe(16),
        ),
        owner,
    ).terminal  # fmt: skip
    print(
        f"CreateTerminal: terminal {till.terminal_id} '{till.name}' (login {till.login},"
        f" {'enabled' if till.enabled else 'DISABLED'})"
    )
    key = call(
        "CreateTerminalApiKey",
        stub.CreateTerminalApiKey,
        setup.CreateTerminalApiKeyRequest(terminal_id=till.terminal_id, name="till 1"),
        owner,
    )
    print(f"CreateTerminalApiKey: API key {key.api_key.api_key_id} of terminal {till.terminal_id}")
    return key.secret


def set_up_goods(stub: AdminServiceStub, owner: str) -> None:
    for code, name in (("coffee", "Coffee"), ("bakery", "Bakery")):
        category = call(
            "CreateGoodsCategory",
            stub.CreateGoodsCategory,
            catalogue.CreateGoodsCategoryRequest(
                goods_category=catalogue.GoodsCategory(code=code, name=name)
            ),
            owner,
        ).goods_category
        print(f"CreateGoodsCategory: goods category {category.goods_category_id} '{category.code}'")
    price_list = [
        catalogue.Goods(product_code=code, title=title, price_minor_units=price,
                        goods_category_code=category)
        for code, title, price, category in (
            ("ESPRESSO", "Espresso", 4500, "coffee"),
            ("CAPPUCCINO", "Cappuccino", 6500, "coffee"),
            ("CROISSANT", "Croissant", 6000, "bakery"),
        )
    ]  # fmt: skip
    upserted = call(
        "UpsertGoods", stub.UpsertGoods, catalogue.UpsertGoodsRequest(goods=price_list), owner
    )
    print(
        f"UpsertGoods: {upserted.created_count} created, {upserted.updated_count} updated,"
        f" {upserted.unchanged_count} unchanged"
    )


def set_up_accounts_and_coupons(stub: AdminServiceStub, owner: str) -> None:
    for account_type in (
        catalogue.AccountType(
            kind=catalogue.ACCOUNT_KIND_MONEY, name="Wallet", title={"en": "Wallet"},
            redemption_limit_without_pin=50_000,
        ),
        catalogue.AccountType(
            kind=catalogue.ACCOUNT_KIND_PRODUCTS, name="Coffee cups",
            title={"en": "Gift coffee"}, product_codes=["ESPRESSO", "CAPPUCCINO"],
        ),
    ):  # fmt: skip
        created = call(
            "CreateAccountType",
            stub.CreateAccountType,
            catalogue.CreateAccountTypeRequest(account_type=account_type),
            owner,
        ).account_type
        kind = catalogue.AccountKind.Name(created.kind)
        print(
            f"CreateAccountType: account type {created.account_type_id} '{created.name}' ({kind})"
        )
    series = call(
        "CreateCouponSeries",
        stub.CreateCouponSeries,
        catalogue.CreateCouponSeriesRequest(
            coupon_series=catalogue.CouponSeries(
                name="Free espresso", title={"en": "Free espresso"},
                kind=catalogue.COUPON_KIND_FREE_PRODUCT, value=1000,
                product_codes=["ESPRESSO"], coupons_max=1000, coupon_lifetime_days=30,
            )
        ),
        owner,
    ).coupon_series  # fmt: skip
    print(
        f"CreateCouponSeries: series {series.series_id} '{series.name}'"
        f" (at most {series.coupons_max} coupons)"
    )


def the_check() -> terminal.Check:
    """Two cappuccinos and a croissant; the till leaves categories to the catalogue."""
    return terminal.Check(
        lines=[
            terminal.CheckLine(position=1, product_code="CAPPUCCINO", title="Cappuccino",
                               price_minor_units=6500, quantity_thousandths=2000),
            terminal.CheckLine(position=2, product_code="CROISSANT", title="Croissant",
                               price_minor_units=6000, quantity_thousandths=1000),
        ]
    )  # fmt: skip


def sell(channel: grpc.Channel, till_key: str) -> int:
    """The till identifies a new customer, previews the check, and processes it twice.
    Returns the customer's id."""
    till = TerminalServiceStub(channel)
    settings = call(
        "GetTerminalSettings", till.GetTerminalSettings, terminal.GetTerminalSettingsRequest(),
        till_key,
    )  # fmt: skip
    print(
        f"GetTerminalSettings: terminal {settings.terminal.terminal_name} at"
        f" {settings.terminal.point_of_sale_name}, program '{settings.program_name}',"
        f" {settings.currency}"
    )
    identifier = common.CustomerIdentifier(phone=customer_phone)
    membership = call(
        "IdentifyCustomer",
        till.IdentifyCustomer,
        terminal.IdentifyCustomerRequest(identifier=identifier),
        till_key,
    ).membership
    print(
        f"IdentifyCustomer: customer {membership.customer_id} ({membership.phone}),"
        f" newly enrolled: {membership.newly_enrolled}, category"
        f" '{membership.category_title}', points {points(membership.pockets[0].available)}"
    )
    receipt = call(
        "CalculateCheck",
        till.CalculateCheck,
        terminal.CalculateCheckRequest(identifier=identifier, check=the_check()),
        till_key,
    ).receipt
    print(
        f"CalculateCheck: sum {money(receipt.sum_minor_units)}, discount"
        f" {money(receipt.discount_minor_units)}, to pay {money(receipt.to_pay_minor_units)},"
        f" points to accrue {points(receipt.points_accrued_hundredths)}"
    )
    sale = terminal.ProcessCheckRequest(
        check_number=check_number, identifier=identifier, check=the_check()
    )
    for attempt in ("ProcessCheck", "ProcessCheck again"):
        processed = call(attempt, till.ProcessCheck, sale, till_key)
        transaction = processed.transaction
        print(
            f"{attempt}: check {transaction.check_number} is transaction"
            f" {transaction.transaction_id}"
            f" {terminal.TransactionStatus.Name(transaction.status)}, to pay"
            f" {money(transaction.receipt.to_pay_minor_units)}, points accrued"
            f" {points(transaction.receipt.points_accrued_hundredths)}, points balance"
            f" {points(processed.membership.pockets[0].balance)}"
        )
    return membership.customer_id


def look_back(stub: AdminServiceStub, owner: str, customer_id: int) -> None:
    """The owner's view: the customer found by phone and by id, and the audit log."""
    identifier = common.CustomerIdentifier(phone=customer_phone)
    found = call(
        "FindCustomer", stub.FindCustomer, admin.FindCustomerRequest(identifier=identifier), owner
    ).card.membership
    print(f"FindCustomer: {found.phone} is customer {found.customer_id}")
    card = call(
        "GetCustomer", stub.GetCustomer, admin.GetCustomerRequest(customer_id=customer_id), owner
    ).card
    member = card.membership
    print(
        f"GetCustomer: customer {member.customer_id} has {points(member.pockets[0].balance)}"
        f" points, {member.sales_count} sale(s) worth {money(member.sales_sum_minor_units)}"
    )
    entries, page_token = 0, ""
    while True:
        page = call(
            "ListAuditEntries",
            stub.ListAuditEntries,
            admin.ListAuditEntriesRequest(page_size=1000, page_token=page_token),
            owner,
        )
        entries += len(page.entries)
        page_token = page.next_page_token
        if not page_token:
            break
    print(f"ListAuditEntries: {entries} entries in the business's audit log")


def run(target: str, operator_key: str) -> None:
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=connect_seconds_max)
        except grpc.FutureTimeoutError:
            raise SystemExit(f"no Purse server answers at {target}") from None
        login, password = found_business(channel, operator_key)
        stub = AdminServiceStub(channel)
        owner = sign_in(stub, login, password)
        set_up_goods(stub, owner)  # first: the rules name its goods categories
        program_id = set_up_program(stub, owner)
        set_up_customer_category(stub, owner)
        till_key = set_up_shop(stub, owner, program_id)
        set_up_accounts_and_coupons(stub, owner)
        customer_id = sell(channel, till_key)
        look_back(stub, owner, customer_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="the server, host:port")
    arguments = parser.parse_args()
    operator_key = os.environ.get("PURSE_OPERATOR_KEY", "")
    if not operator_key:
        print(
            "set PURSE_OPERATOR_KEY to an operator key (`purse operator-key create`)",
            file=sys.stderr,
        )
        return 2
    try:
        run(arguments.target, operator_key)
    except CallFailed as failure:
        print(describe(failure), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
