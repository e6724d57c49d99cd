"""Helpers for the control panel's tests: a stub, a caller of each role, refusals."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support import Tenant, bearer, error_reason, field_violations

from purse.admin.v1 import catalogue_pb2 as catalogue
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.domain import credentials


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


async def key_of_role(pool: asyncpg.Pool, business: Tenant, role: str) -> tuple[tuple[str, str]]:
    """Call metadata of a new administrator of `role` of the business, by API key."""
    key = credentials.new_api_key()
    await pool.execute(
        "WITH made AS ("
        "  INSERT INTO administrators (business_id, login, name, role, password_hash)"
        "  VALUES ($1, $2, $3, $3, '!') RETURNING administrator_id"
        ") INSERT INTO admin_api_keys (business_id, administrator_id, key_hash, name)"
        "  SELECT $1, administrator_id, $4, 'tests' FROM made",
        business.business_id,
        f"{role}-{secrets.token_hex(6)}",
        role,
        credentials.api_key_digest(key),
    )
    return bearer(key)


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
