"""The load benchmark's large business (benchmarks/load/memberships.py): memberships built
by COPY are the ones enrolment makes, row for row and answer for answer, on a real server;
their checks are processed, later enrolments carry on after them, and `purse audit` finds
every pocket equal to its ledger afterwards."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from admin_support import enrol, five_percent_back, set_program
from support import Tenant, bearer, new_phone

from purse.config import Settings
from purse.store.postgres.audit import audit
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

# benchmarks/ is not an installed package: import it from the repository, as `make` does.
_repository = Path(__file__).resolve().parents[2]
if str(_repository) not in sys.path:
    sys.path.insert(0, str(_repository))

from benchmarks.load import generator, memberships  # noqa: E402

# Everything stored of one member of a business but its ids, phone and times: the shared
# customer row, the membership, its pockets and its cards (columns added later included).
_stored = """
SELECT to_jsonb(c) - 'customer_id' - 'phone' - 'created_at' AS customer,
       to_jsonb(m) - 'customer_id' - 'created_at' AS membership,
       (SELECT jsonb_agg(to_jsonb(p) - 'pocket_id' - 'customer_id' - 'updated_at'
                         ORDER BY p.account_type_id)
          FROM pockets p
         WHERE p.business_id = m.business_id AND p.customer_id = m.customer_id) AS pockets,
       (SELECT count(*) FROM customer_identifiers i
         WHERE i.business_id = m.business_id AND i.customer_id = m.customer_id) AS cards
  FROM customers c JOIN memberships m ON m.customer_id = c.customer_id
 WHERE m.business_id = $1 AND c.phone = $2
"""


async def copy(infrastructure: Settings, business: Tenant, phones: list[str]) -> memberships.Built:
    """`phones` made members of the business by the benchmark's COPY builder."""
    connection = await asyncpg.connect(infrastructure.database_url)
    try:
        return await memberships.copy_memberships(connection, business.business_id, phones)
    finally:
        await connection.close()


async def stored(pool: asyncpg.Pool, business: Tenant, phone: str) -> dict[str, Any]:
    row = await pool.fetchrow(_stored, business.business_id, phone)
    assert row is not None, f"{phone} is not a member"
    return dict(row)


def anonymous(membership: common_pb2.Membership) -> common_pb2.Membership:
    """The membership as answered, without what differs from one customer to the next."""
    copy = common_pb2.Membership()
    copy.CopyFrom(membership)
    copy.ClearField("customer_id")
    copy.ClearField("phone")
    copy.ClearField("last_visit_time")
    for pocket in copy.pockets:
        pocket.ClearField("pocket_id")
    return copy


async def identified(channel: grpc.aio.Channel, business: Tenant, phone: str) -> Any:
    answer = await TerminalServiceStub(channel).IdentifyCustomer(
        pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone)),
        metadata=bearer(business.cash_desk.api_key),
    )
    return answer.membership


async def processed(channel: grpc.aio.Channel, business: Tenant, phone: str) -> Any:
    """The benchmark's 10-line check for `phone`, processed at the cash desk."""
    request = pb.ProcessCheckRequest(
        check_number=f"large-{phone}",
        identifier=common_pb2.CustomerIdentifier(phone=phone),
        check=generator.ten_line_check("UAH"),
    )
    return await TerminalServiceStub(channel).ProcessCheck(
        request, metadata=bearer(business.cash_desk.api_key)
    )


async def test_memberships_built_by_copy_are_the_ones_enrolment_makes(
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    infrastructure: Settings,
    business: Tenant,
) -> None:
    await set_program(channel, business, [five_percent_back])
    enrolled = new_phone()
    await enrol(channel, business, enrolled)  # IdentifyCustomer of an unknown phone
    copied = [new_phone() for _ in range(3)]

    built = await copy(infrastructure, business, copied)

    ids = await pool.fetch("SELECT customer_id FROM customers WHERE phone = ANY($1)", copied)
    assert sorted(row["customer_id"] for row in ids) == list(built.customer_ids)
    reference = await stored(pool, business, enrolled)
    assert reference["pockets"], "enrolment opens the points pocket"
    for phone in copied:
        assert await stored(pool, business, phone) == reference
    answered = anonymous(await identified(channel, business, enrolled))
    for phone in copied:
        assert anonymous(await identified(channel, business, phone)) == answered

    sale = await processed(channel, business, enrolled)
    assert sale.transaction.receipt.points_accrued_hundredths > 0
    for phone in copied:
        copied_sale = await processed(channel, business, phone)
        assert copied_sale.transaction.status == pb.TRANSACTION_STATUS_COMPLETED
        assert copied_sale.transaction.receipt == sale.transaction.receipt
        assert anonymous(copied_sale.membership) == anonymous(sale.membership)

    later = await enrol(channel, business)
    assert later.customer_id > max(built.customer_ids)
    connection = await asyncpg.connect(infrastructure.database_url)
    try:
        report = await audit(connection, business.business_id)  # `purse audit`
    finally:
        await connection.close()
    assert report.discrepancies == []
    assert report.orphans == []
    assert report.pockets_checked == len([enrolled, *copied, later.phone])  # a points pocket each


async def test_a_phone_known_to_purse_fails_the_whole_build_and_writes_nothing(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, infrastructure: Settings, business: Tenant
) -> None:
    known = (await enrol(channel, business)).phone
    fresh = new_phone()

    with pytest.raises(asyncpg.UniqueViolationError):
        await copy(infrastructure, business, [fresh, known])

    assert await pool.fetchval("SELECT count(*) FROM customers WHERE phone = $1", fresh) == 0
    members = await pool.fetchval(
        "SELECT count(*) FROM memberships WHERE business_id = $1", business.business_id
    )
    assert members == 1
