"""Every AdminService RPC that names something of a business, read from the contract: a
business's owner who sends another business's ids — the very resources as their owner
reads them, at their current versions — gets NOT_FOUND from each, and nothing of the
other business changes. An RPC added later fails this test until it is covered."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from support import bearer, found_business, operator_key

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import bulk_actions_pb2, customers_pb2, news_pb2, segments_pb2, setup_pb2
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.demo import create_demo, demo_customer_card, demo_customer_phone
from purse.v1 import common_pb2

_service = admin.DESCRIPTOR.services_by_name["AdminService"]
# RPCs that name nothing of a business: the credential alone scopes them, or the ids
# they carry are assigned by the server.
_scoped_by_the_credential = {
    "SignIn", "GetCaller", "CreateAdministrator", "ListAdministrators",
    "ListAuditEntries", "GetBusiness", "UpdateBusiness", "ListCustomerCategories",
    "ListPrograms", "ListPointsOfSale", "ListGoodsCategories", "ListGoods",
    "ListAccountTypes", "ListCouponSeries", "ListCertificates", "CreateCustomerCategory",
    "CreateProgram", "CreateGoodsCategory", "CreateGoods", "UpsertGoods",
    "CreateAccountType", "CreateCouponSeries", "CreateCertificate", "ListOperations",
    "ListSavedSegments", "ListNewsItems", "CreateSavedSegment",
}  # fmt: skip
_resources = {
    "Program": "program",
    "PointOfSale": "point_of_sale",
    "Terminal": "terminal",
    "CustomerCategory": "category",
    "GoodsCategory": "goods_category",
    "Goods": "goods",
    "AccountType": "account_type",
    "CouponSeries": "coupon_series",
    "Certificate": "certificate",
    "SavedSegment": "segment",
    "NewsItem": "news_item",
}


async def _their_segment_and_news(stub: Any, key: tuple[tuple[str, str]]) -> None:
    """A saved segment and a news item of the demo business (the demo makes neither); the
    item names the business's point of sale, so creating a copy of it names it too."""
    shops = await stub.ListPointsOfSale(setup_pb2.ListPointsOfSaleRequest(), metadata=key)
    everyone = customers_pb2.Filter(
        condition=customers_pb2.Condition(
            column=customers_pb2.CUSTOMER_COLUMN_PHONE,
            operator=customers_pb2.FILTER_OPERATOR_EXISTS,
        )
    )
    await stub.CreateSavedSegment(
        segments_pb2.CreateSavedSegmentRequest(
            segment=segments_pb2.SavedSegment(name="Everyone", filter=everyone)
        ),
        metadata=key,
    )
    item = news_pb2.NewsItem(
        title={"en": "Open"},
        text={"en": "We are open."},
        point_of_sale_ids=[shops.points_of_sale[0].point_of_sale_id],
    )
    item.publication_start_time.GetCurrentTime()
    await stub.CreateNewsItem(news_pb2.CreateNewsItemRequest(news_item=item), metadata=key)


async def _their_things(stub: Any, key: tuple[tuple[str, str]]) -> dict[str, Any]:
    """Everything of the demo business, as its owner reads it."""
    await _their_segment_and_news(stub, key)
    things: dict[str, Any] = {}
    for listing, field, name in (
        ("ListPrograms", "programs", "program"),
        ("ListPointsOfSale", "points_of_sale", "point_of_sale"),
        ("ListTerminals", "terminals", "terminal"),
        ("ListCustomerCategories", "categories", "category"),
        ("ListGoodsCategories", "goods_categories", "goods_category"),
        ("ListGoods", "goods", "goods"),
        ("ListAccountTypes", "account_types", "account_type"),
        ("ListCouponSeries", "coupon_series", "coupon_series"),
        ("ListCertificates", "certificates", "certificate"),
        ("ListSavedSegments", "segments", "segment"),
        ("ListNewsItems", "news_items", "news_item"),
        ("ListAdministrators", "administrators", "administrator"),
        ("ListApiKeys", "api_keys", "api_key"),
    ):
        request = GetMessageClass(_service.methods_by_name[listing].input_type)()
        answer = await getattr(stub, listing)(request, metadata=key)
        things[name] = getattr(answer, field)[0]
    terminal_id = things["terminal"].terminal_id
    keys = await stub.ListTerminalApiKeys(
        setup_pb2.ListTerminalApiKeysRequest(terminal_id=terminal_id), metadata=key
    )
    things["terminal_api_key"] = keys.api_keys[0]
    card = await stub.FindCustomer(
        admin.FindCustomerRequest(
            identifier=common_pb2.CustomerIdentifier(phone=demo_customer_phone)
        ),
        metadata=key,
    )
    things["card"] = card.card
    rules = await stub.GetProgramRules(
        admin.GetProgramRulesRequest(program_id=things["program"].program_id), metadata=key
    )
    things["rules"] = rules
    dry_run = await stub.DryRunBulkAction(
        admin.DryRunBulkActionRequest(
            action=bulk_actions_pb2.BulkAction(
                change_access_type=bulk_actions_pb2.AccessTypeChangeAction(
                    access_type=common_pb2.ACCESS_TYPE_LIMITED
                )
            )
        ),
        metadata=key,
    )
    things["operation"] = dry_run.operation
    return things


def _version_of(method: str, things: dict[str, Any]) -> int:
    for message_name, name in _resources.items():
        if method.endswith(message_name) and name in things:
            return int(things[name].version)
    return int(things["administrator"].version)


def _ids(things: dict[str, Any]) -> dict[str, Any]:
    return {
        "program_id": things["program"].program_id,
        "point_of_sale_id": things["point_of_sale"].point_of_sale_id,
        "terminal_id": things["terminal"].terminal_id,
        "category_id": things["category"].category_id,
        "goods_category_id": things["goods_category"].goods_category_id,
        "product_code": things["goods"].product_code,
        "account_type_id": things["account_type"].account_type_id,
        "series_id": things["coupon_series"].series_id,
        "certificate_id": things["certificate"].certificate_id,
        "customer_id": things["card"].membership.customer_id,
        "administrator_id": things["administrator"].administrator_id,
        "operation_id": things["operation"].operation_id,
        "segment_id": things["segment"].segment_id,
        "news_item_id": things["news_item"].news_item_id,
    }


def _request(method: str, things: dict[str, Any]) -> Message:
    """The request naming the other business's things: its ids, its resources as read."""
    descriptor = _service.methods_by_name[method].input_type
    request: Any = GetMessageClass(descriptor)()
    ids = _ids(things)
    for field in descriptor.fields:
        resource = _resources.get(field.message_type.name) if field.message_type else None
        if resource is not None:
            getattr(request, field.name).CopyFrom(things[resource])
        elif field.name in ids:
            setattr(request, field.name, ids[field.name])
        elif field.name == "expected_version":
            request.expected_version = _version_of(method, things)
    if method.endswith("ApiKey") and method.startswith(("Rotate", "Revoke")):
        chosen = things["terminal_api_key" if "Terminal" in method else "api_key"]
        request.api_key_id = chosen.api_key_id
    return _completed(method, request, things)


def _completed(method: str, request: Any, things: dict[str, Any]) -> Message:
    """What each call needs besides ids to be well-formed."""
    card = things["card"]
    if method == "DryRunBulkAction":  # through their terminal
        request.action.credit_points.points_hundredths = 100
    elif method in ("SetTerminalPassword", "SetAdministratorPassword"):
        request.new_password = "a perfectly good password"
    elif method == "CreateTerminal":
        request.terminal.login = f"intruder-{card.membership.customer_id}"
        request.password = "a perfectly good password"
    elif method == "SetProgramRules":
        request.rules.CopyFrom(things["rules"].rules)
        request.expected_rules_version = things["rules"].rules_version
    elif method == "UpdateAdministrator":
        request.role = admin.ADMINISTRATOR_ROLE_MANAGER
    elif method == "UpdateCustomer":
        request.access_type = common_pb2.ACCESS_TYPE_BLACKLISTED
        request.expected_profile_version = card.profile_version
    elif method in ("AddCustomerCard", "RemoveCustomerCard"):
        request.kind = common_pb2.IDENTIFIER_KIND_CARD_NUMBER
        request.value = demo_customer_card
    elif method == "ApplyCustomerOperation":
        request.idempotency_key = "intrusion"
        request.debit_points.CopyFrom(customers_pb2.PointsDebitOperation(points_hundredths=100))
    elif method == "FindCustomer":
        request.identifier.phone = demo_customer_phone
    return request  # type: ignore[no-any-return]


async def test_another_business_s_ids_are_not_found_by_any_rpc_and_change_nothing(
    channel: grpc.aio.Channel, pool: asyncpg.Pool
) -> None:
    theirs = await create_demo(channel, await operator_key(pool))
    stub: Any = AdminServiceStub(channel)
    their_key = bearer(theirs.administrator_api_key)
    things = await _their_things(stub, their_key)
    audit_before = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE business_id = $1", theirs.business_id
    )
    mine = bearer((await found_business(channel, pool)).owner_api_key)
    covered = [m.name for m in _service.methods if m.name not in _scoped_by_the_credential]
    answers: dict[str, grpc.StatusCode] = {}
    for method in covered:
        try:
            call = getattr(stub, method)(_request(method, things), metadata=mine)
            if _service.methods_by_name[method].server_streaming:
                async for _ in call:
                    continue
            else:
                await call
            answers[method] = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as refused:
            answers[method] = refused.code()
    assert {m: code for m, code in answers.items() if code != grpc.StatusCode.NOT_FOUND} == {}
    assert len(covered) >= 45
    audit_after = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE business_id = $1", theirs.business_id
    )
    assert audit_after == audit_before
    card = await stub.GetCustomer(
        admin.GetCustomerRequest(customer_id=things["card"].membership.customer_id),
        metadata=their_key,
    )
    assert card.card == things["card"]
