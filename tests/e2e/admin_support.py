"""Helpers for the control panel's tests: a stub, a caller of each role, refusals."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support import (
    Tenant,
    TerminalAccess,
    bearer,
    error_reason,
    field_violations,
    new_phone,
    new_terminal,
)

from purse.admin.v1 import admin_service_pb2 as admin_pb
from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.admin.v1 import customers_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as terminal_pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub


def admin(channel: grpc.aio.Channel) -> Any:
    """The AdminService stub on an asyncio channel (its methods are awaited)."""
    return AdminServiceStub(channel)


def owner(business: Tenant) -> tuple[tuple[str, str]]:
    return bearer(business.administrator_api_key)


async def new_category(
    channel: grpc.aio.Channel, business: Tenant, code: str
) -> catalogue.GoodsCategory:
    """A goods category of the business, named after its code ("coffee": "Coffee")."""
    answer = await admin(channel).CreateGoodsCategory(
        catalogue.CreateGoodsCategoryRequest(
            goods_category=catalogue.GoodsCategory(code=code, name=code.title())
        ),
        metadata=owner(business),
    )
    category: catalogue.GoodsCategory = answer.goods_category
    return category


async def new_series(
    channel: grpc.aio.Channel, business: Tenant, **changes: object
) -> catalogue.CouponSeries:
    """A coupon series of the business: 10% off, at most 5 coupons, each for 30 days
    (`changes` replace any of that)."""
    fields: dict[str, Any] = {
        "name": "Spring 10%",
        "title": {"en": "10% off"},
        "kind": catalogue.COUPON_KIND_PERCENT,
        "value": 1000,
        "coupons_max": 5,
        "coupon_lifetime_days": 30,
    }
    answer = await admin(channel).CreateCouponSeries(
        catalogue.CreateCouponSeriesRequest(
            coupon_series=catalogue.CouponSeries(**{**fields, **changes})
        ),
        metadata=owner(business),
    )
    series: catalogue.CouponSeries = answer.coupon_series
    return series


async def set_rules(
    channel: grpc.aio.Channel, business: Tenant, rules: admin_pb.ProgramRules
) -> int:
    """The owner replaces the program's rules with `rules` as they are; the new version."""
    answer = await admin(channel).SetProgramRules(
        admin_pb.SetProgramRulesRequest(program_id=business.program_id, rules=rules),
        metadata=owner(business),
    )
    return int(answer.rules_version)


def percent_accrual(rule_id: int, basis_points: int, **selector: object) -> admin_pb.Rule:
    """An accrual of `basis_points` of each line the selector fields match."""
    return admin_pb.Rule(
        rule_id=rule_id,
        title=f"{basis_points / 100}% back",
        kind=admin_pb.RULE_KIND_ACCRUAL,
        scope=admin_pb.RULE_SCOPE_LINE,
        value_kind=admin_pb.VALUE_KIND_PERCENT,
        value=basis_points,
        selector=admin_pb.Selector(**selector),  # type: ignore[arg-type]
    )


five_percent_back = percent_accrual(1, 500)


async def set_program(
    channel: grpc.aio.Channel,
    business: Tenant,
    rules: Sequence[admin_pb.Rule] = (),
    points_redemption_limit_without_pin: int | None = 0,
    hold_seconds: int = 600,
    cancel_completed_sales: bool = True,
) -> None:
    """The owner replaces the program's rules (SetProgramRules): `rules`, points may pay a
    whole check, and redeeming more than the limit needs a PIN (0: every redemption,
    None: none)."""
    settings = admin_pb.ProgramRules(
        rules=rules,
        redemption_share_max_basis_points=10_000,
        hold_seconds=hold_seconds,
        cancel_completed_sales=cancel_completed_sales,
    )
    if points_redemption_limit_without_pin is not None:
        settings.points_redemption_limit_without_pin_hundredths = (
            points_redemption_limit_without_pin
        )
    await set_rules(channel, business, settings)


async def enrol(
    channel: grpc.aio.Channel, business: Tenant, phone: str = ""
) -> common_pb2.Membership:
    """The customer with `phone` (a new one when not given), enrolled as a till enrols an
    unknown phone: identified at the business's cash desk."""
    answer = await TerminalServiceStub(channel).IdentifyCustomer(
        terminal_pb.IdentifyCustomerRequest(
            identifier=common_pb2.CustomerIdentifier(phone=phone or new_phone())
        ),
        metadata=bearer(business.cash_desk.api_key),
    )
    membership: common_pb2.Membership = answer.membership
    return membership


# By tenant, not business id: a test with a database of its own numbers businesses anew.
_back_offices: dict[Tenant, TerminalAccess] = {}


async def back_office(channel: grpc.aio.Channel, business: Tenant) -> TerminalAccess:
    """The business's terminal for the owner's operations on customers, made once: so
    that they stay out of the cash desk's transaction log."""
    if business not in _back_offices:
        _back_offices[business] = await new_terminal(
            channel, business, terminal_pb.TERMINAL_KIND_ONLINE
        )
    return _back_offices[business]


async def apply_operation(
    channel: grpc.aio.Channel, business: Tenant, customer_id: int, **operation: object
) -> admin_pb.ApplyCustomerOperationResponse:
    """The owner's operation on a customer (ApplyCustomerOperation), through the back
    office, under a key of its own."""
    terminal = await back_office(channel, business)
    answer: admin_pb.ApplyCustomerOperationResponse = await admin(channel).ApplyCustomerOperation(
        admin_pb.ApplyCustomerOperationRequest(
            customer_id=customer_id,
            terminal_id=terminal.terminal_id,
            idempotency_key=uuid.uuid4().hex,
            **operation,  # type: ignore[arg-type]
        ),
        metadata=owner(business),
    )
    assert answer.transaction.status == terminal_pb.TRANSACTION_STATUS_COMPLETED, answer
    return answer


async def credit_points(
    channel: grpc.aio.Channel,
    business: Tenant,
    customer_id: int,
    points_hundredths: int,
    expire_time: datetime | None = None,
) -> admin_pb.ApplyCustomerOperationResponse:
    """The owner credits points: everlasting ones, or special ones until `expire_time`."""
    credit = customers_pb2.PointsCreditOperation(points_hundredths=points_hundredths)
    if expire_time is not None:
        credit.expire_time.FromDatetime(expire_time)
    return await apply_operation(channel, business, customer_id, credit_points=credit)


async def special_points_lot(
    channel: grpc.aio.Channel,
    business: Tenant,
    customer_id: int,
    points_hundredths: int,
    expire_time: datetime,
) -> int:
    """The owner credits special points until `expire_time`; the id of their lot, as the
    customer's card shows it."""
    credited = await credit_points(channel, business, customer_id, points_hundredths, expire_time)
    card = (
        await admin(channel).GetCustomer(
            admin_pb.GetCustomerRequest(customer_id=customer_id), metadata=owner(business)
        )
    ).card
    (lot,) = (lot for lot in card.points_lots if lot.expire_time == credited.expire_time)
    return int(lot.lot_id)


async def credit_account(
    channel: grpc.aio.Channel, business: Tenant, customer_id: int, account_type_id: int, amount: int
) -> admin_pb.ApplyCustomerOperationResponse:
    """The owner replenishes a money or products account, in the account's unit."""
    return await apply_operation(
        channel,
        business,
        customer_id,
        credit_account=customers_pb2.AccountCreditOperation(
            account_type_id=account_type_id, amount=amount
        ),
    )


async def customer_with_points(channel: grpc.aio.Channel, business: Tenant, points: int) -> str:
    """The phone of a new customer the owner credited `points` hundredths (none for 0)."""
    membership = await enrol(channel, business)
    if points:
        await credit_points(channel, business, membership.customer_id, points)
    return membership.phone


async def blacklist(channel: grpc.aio.Channel, business: Tenant, customer_id: int) -> None:
    """The owner blacklists a customer (UpdateCustomer), keeping the rest of the profile."""
    card = (
        await admin(channel).GetCustomer(
            admin_pb.GetCustomerRequest(customer_id=customer_id), metadata=owner(business)
        )
    ).card
    membership = card.membership
    await admin(channel).UpdateCustomer(
        admin_pb.UpdateCustomerRequest(
            customer_id=customer_id,
            expected_profile_version=card.profile_version,
            category_id=membership.category_id,
            access_type=common_pb2.ACCESS_TYPE_BLACKLISTED,
            given_name=membership.given_name,
            family_name=membership.family_name,
            language=membership.language,
            personal_data_consent=card.personal_data_consent,
        ),
        metadata=owner(business),
    )


async def key_of_role(
    channel: grpc.aio.Channel, business: Tenant, role: admin_pb.AdministratorRole.ValueType
) -> tuple[tuple[str, str]]:
    """Call metadata of a new administrator of `role` of the business, by API key (made
    by the owner, as a business would)."""
    stub: Any = AdminServiceStub(channel)
    owner_key = bearer(business.administrator_api_key)
    created = await stub.CreateAdministrator(
        admin_pb.CreateAdministratorRequest(
            login=f"role-{secrets.token_hex(6)}", role=role, password="a long enough password"
        ),
        metadata=owner_key,
    )
    key = await stub.CreateApiKey(
        admin_pb.CreateApiKeyRequest(administrator_id=created.administrator.administrator_id),
        metadata=owner_key,
    )
    return bearer(key.secret)


def details(error: grpc.aio.AioRpcError) -> str:
    return error.details() or ""


async def refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def error_field(error: grpc.aio.AioRpcError) -> str:
    """The field an ALREADY_EXISTS (or a NOT_FOUND of what a request names) names in its
    ErrorInfo metadata."""
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.metadata["field"])
    raise AssertionError("no ErrorInfo in the status details")


def assert_refused(
    error: grpc.aio.AioRpcError, code: grpc.StatusCode, reason: str, *fields: str
) -> None:
    """The refusal's status, reason and (when named) exactly these wrong fields: its
    violations, or the one field an ALREADY_EXISTS names."""
    assert (error.code(), error_reason(error)) == (code, reason), error.details()
    if fields and code == grpc.StatusCode.ALREADY_EXISTS:
        assert [error_field(error)] == list(fields)
    elif fields:
        assert sorted(field_violations(error)) == sorted(fields)


async def audit_mark(pool: asyncpg.Pool, business_id: int) -> int:
    """The business's newest audit entry: its setup through the API (audited like any
    other) comes before it, what the test does after it."""
    return int(
        await pool.fetchval(
            "SELECT coalesce(max(entry_id), 0) FROM audit_log WHERE business_id = $1",
            business_id,
        )
    )


async def audit_entries(
    pool: asyncpg.Pool,
    business_id: int,
    resource: str,
    resource_id: str | None = None,
    after: int = 0,
) -> list[asyncpg.Record]:
    """The audit log's entries for a resource (one when `resource_id` is given), oldest
    first; only those after the entry `after` (an audit_mark) when it is given."""
    return list(
        await pool.fetch(
            "SELECT action, resource_id, actor, before, after FROM audit_log"
            " WHERE business_id = $1 AND resource = $2"
            "   AND ($3::text IS NULL OR resource_id = $3) AND entry_id > $4 ORDER BY entry_id",
            business_id,
            resource,
            resource_id,
            after,
        )
    )
