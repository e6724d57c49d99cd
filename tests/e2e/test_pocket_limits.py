"""The points pocket's no-PIN limit in every membership answer is the program's, as set
now: a rules change shows at the next call, whatever the balance cache holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
from admin_support import customer_with_points
from support import Tenant, bearer, new_phone
from test_transactions import sale, sent_pin

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

hundred_points = 10_000


async def set_points_limit(
    channel: grpc.aio.Channel, business: Tenant, limit_hundredths: int | None
) -> None:
    rules = admin.ProgramRules(
        redemption_share_max_basis_points=10_000,
        points_redemption_limit_without_pin_hundredths=limit_hundredths,
    )
    await AdminServiceStub(channel).SetProgramRules(
        admin.SetProgramRulesRequest(program_id=business.program_id, rules=rules),
        metadata=bearer(business.administrator_api_key),
    )


def points_pocket(membership: common_pb2.Membership) -> common_pb2.Pocket:
    (pocket,) = [p for p in membership.pockets if p.kind == common_pb2.POCKET_KIND_POINTS]
    return pocket


def reported_limit(membership: common_pb2.Membership) -> int | None:
    pocket = points_pocket(membership)
    if not pocket.HasField("redemption_limit_without_pin"):
        return None
    return pocket.redemption_limit_without_pin


async def identified(stub: TerminalServiceAsyncStub, business: Tenant, phone: str) -> int | None:
    answer = await stub.IdentifyCustomer(
        pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
        metadata=bearer(business.cash_desk.api_key),
    )
    return reported_limit(answer.membership)


async def test_identification_reports_the_programs_limit_and_follows_a_rules_change(
    terminal_stub: TerminalServiceAsyncStub, channel: grpc.aio.Channel, business: Tenant
) -> None:
    phone = new_phone()
    await set_points_limit(channel, business, hundred_points)
    assert await identified(terminal_stub, business, phone) == hundred_points
    # The second answer comes from the balance cache: the limit is still the program's.
    assert await identified(terminal_stub, business, phone) == hundred_points
    await set_points_limit(channel, business, None)
    assert await identified(terminal_stub, business, phone) is None
    await set_points_limit(channel, business, 0)
    assert await identified(terminal_stub, business, phone) == 0


async def test_every_membership_answer_reports_the_points_limit(
    terminal_stub: TerminalServiceAsyncStub,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
) -> None:
    await set_points_limit(channel, business, hundred_points)
    phone = await customer_with_points(channel, business, 50_000)
    metadata = bearer(business.cash_desk.api_key)
    calculated = await terminal_stub.CalculateCheck(
        pb.CalculateCheckRequest(
            identifier=common_pb2.CustomerIdentifier(phone=phone),
            check=sale("unused", phone).check,
        ),
        metadata=metadata,
    )
    assert reported_limit(calculated.membership) == hundred_points
    processed = await terminal_stub.ProcessCheck(
        sale("limit-1", phone, redeem=hundred_points + 100, amount=50_000), metadata=metadata
    )
    assert processed.transaction.status == pb.TRANSACTION_STATUS_PENDING
    assert reported_limit(processed.membership) == hundred_points
    retried = await terminal_stub.ProcessCheck(
        sale("limit-1", phone, redeem=hundred_points + 100, amount=50_000), metadata=metadata
    )
    assert reported_limit(retried.membership) == hundred_points
    transaction_id = processed.transaction.transaction_id
    confirmed = await terminal_stub.ConfirmTransaction(
        pb.ConfirmTransactionRequest(
            transaction_id=transaction_id, pin=await sent_pin(pool, business, transaction_id)
        ),
        metadata=metadata,
    )
    assert points_pocket(confirmed.membership).balance == 50_000 - hundred_points - 100
    assert reported_limit(confirmed.membership) == hundred_points
    found = await terminal_stub.SearchCustomers(
        pb.SearchCustomersRequest(phone_prefix=phone), metadata=metadata
    )
    assert [reported_limit(match.membership) for match in found.customers] == [hundred_points]
    registered = await terminal_stub.RegisterCustomer(
        pb.RegisterCustomerRequest(phone=new_phone()), metadata=metadata
    )
    assert reported_limit(registered.membership) == hundred_points
    streamed = terminal_stub.ProcessChecks(metadata=metadata)
    await streamed.write(pb.ProcessChecksRequest(checks=[sale("limit-2", phone)]))
    answer = await streamed.read()
    await streamed.done_writing()
    assert isinstance(answer, pb.ProcessChecksResponse)
    (result,) = answer.results
    assert reported_limit(result.processed.membership) == hundred_points
