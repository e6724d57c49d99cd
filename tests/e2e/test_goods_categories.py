"""A check line's goods category code is exact: one of the business's catalogue, case
included, or the check is refused naming the line, and nothing changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import new_category, percent_accrual, set_rules
from support import Tenant, bearer, error_reason, field_violations, new_phone
from test_calculation import line, request

from purse.admin.v1 import admin_service_pb2 as admin
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def coffee_rules(channel: grpc.aio.Channel, business: Tenant) -> None:
    """10% back on the business's "coffee" category."""
    await new_category(channel, business, "coffee")
    await set_rules(
        channel,
        business,
        admin.ProgramRules(rules=[percent_accrual(1, 1000, goods_category_codes=["coffee"])]),
    )


async def test_a_line_of_a_catalogue_category_earns_what_its_rules_give(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    await coffee_rules(channel, business)
    answer = await terminal_stub.CalculateCheck(
        request(line(1, "LATTE", 7000, goods_category_code="coffee"), phone=new_phone()),
        metadata=bearer(business.cash_desk.api_key),
    )
    assert answer.receipt.points_accrued_hundredths == 700


async def test_a_category_code_in_another_case_is_refused_naming_the_line(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    await coffee_rules(channel, business)
    check = request(
        line(1, "LATTE", 7000, goods_category_code="coffee"),
        line(2, "MOCHA", 8000, goods_category_code="Coffee"),
        phone=new_phone(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.CalculateCheck(check, metadata=bearer(business.cash_desk.api_key))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "GOODS_CATEGORY_UNKNOWN"
    assert list(field_violations(refused.value)) == ["check.lines[1].goods_category_code"]


async def test_a_processed_check_with_an_unknown_category_changes_nothing(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await coffee_rules(channel, business)
    sale = pb.ProcessCheckRequest(
        check_number="category-1",
        check=request(line(1, "TEA", 3000, goods_category_code="tea")).check,
    )
    metadata = bearer(business.cash_desk.api_key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await terminal_stub.ProcessCheck(sale, metadata=metadata)
    assert error_reason(refused.value) == "GOODS_CATEGORY_UNKNOWN"
    assert list(field_violations(refused.value)) == ["check.lines[0].goods_category_code"]
    stored = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE business_id = $1", business.business_id
    )
    assert stored == 0
    # The refusal is not the check number's answer: once the catalogue knows the
    # category, the same check number is processed.
    await new_category(channel, business, "tea")
    processed = await terminal_stub.ProcessCheck(sale, metadata=metadata)
    assert processed.transaction.status == pb.TRANSACTION_STATUS_COMPLETED


async def test_rules_naming_a_goods_category_the_catalogue_lacks_are_refused_naming_it(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    await new_category(channel, business, "coffee")
    version = await set_rules(channel, business, admin.ProgramRules())
    rules = admin.ProgramRules(
        rules=[
            percent_accrual(1, 1000, goods_category_codes=["coffee"]),
            percent_accrual(2, 500, goods_category_codes=["coffee", "Bakery-typo"]),
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await set_rules(channel, business, rules)
    assert error_reason(refused.value) == "GOODS_CATEGORY_UNKNOWN"
    assert set(field_violations(refused.value)) == {
        "rules.rules[1].selector.goods_category_codes[1]"
    }
    assert await set_rules(channel, business, admin.ProgramRules()) == version + 1
