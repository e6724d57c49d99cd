"""Several hosts, one database (issue 14): two `purse serve` processes on ports of their
own, standing in for hosts, share one PostgreSQL and one Redis behind a gRPC-aware proxy
(nginx, tests/e2e/grpc_proxy.py). Tills send a day's mixed traffic through the proxy:
identifications, sales with and without points, sales held for a PIN and confirmed or
cancelled, refunds, cancels of completed sales and streams of checks. Midway one process
is killed with SIGKILL and Redis is emptied; the process is restarted while the traffic
goes on. A till retries a call that failed on the way (the proxy's 502, a stream cut, a
concurrent change) with the same check, refund or transaction, as a real till does.

Then the invariants (README, "Invariants") hold: I1 every acknowledged check is stored
with the transaction it was answered; I3 each check number applies once, and asked again
through either host it gets the answer it had; I2 no pocket below zero; I4 every pocket
equals its ledger; I5 neither business sees the other's transactions, customer or
balance; I6 with Redis emptied, what identification answers is what PostgreSQL holds.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
import redis.asyncio as redis
from admin_support import credit_points, enrol, five_percent_back, set_program
from grpc_proxy import GrpcProxy
from support import (
    ServerProcess,
    Tenant,
    assert_audit_is_clean,
    bearer,
    error_reason,
    make_business_through_api,
)
from test_invariants import (
    assert_acknowledged_are_stored,
    assert_each_applied_once,
    call_seconds_max,
    external,
)
from test_transactions import points_of, sale, sent_pin

from purse.config import Settings
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

# benchmarks/ is not an installed package: import it from the repository, as `make` does.
_repository = Path(__file__).resolve().parents[2]
if str(_repository) not in sys.path:
    sys.path.insert(0, str(_repository))

from benchmarks.load.run import server_calls  # noqa: E402

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

hosts = 2
tills_per_business = 4
steps_per_till = 40
customers_per_business = 6
starting_points_hundredths = 100_000
# Redemptions above this need the customer's PIN.
redemption_limit_without_pin_hundredths = 3_000
checks_per_stream_message = 5
# The host is killed once this many checks were acknowledged (about a third of the day).
kill_after_acknowledged = 100
# Failures a till retries with the same request: the proxy's answer for a host that died
# with the call (UNAVAILABLE), a stream cut in the middle (INTERNAL), a concurrent change.
retried_codes = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED}
)
retry_pause_seconds = 0.05
run_seconds_max = 90
pytestmark = pytest.mark.timeout(run_seconds_max + 60)


@dataclass
class Day:
    """What the tills were told: each check number's transaction, or the refusal's reason
    (a refusal is the stored answer for its number too)."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    # Every check sent, by number, to ask again as it was sent.
    sent: dict[str, pb.ProcessCheckRequest] = field(default_factory=dict)
    retries: int = 0
    # Set once `kill_after_acknowledged` checks were acknowledged.
    midway: asyncio.Event = field(default_factory=asyncio.Event)
    killed: asyncio.Event = field(default_factory=asyncio.Event)

    def acknowledge(self, number: str, transaction_id: int) -> None:
        self.acknowledged[number] = transaction_id
        if len(self.acknowledged) >= kill_after_acknowledged:
            self.midway.set()


@dataclass
class Till:
    """One cash desk of a business sending its part of the day through the proxy."""

    stub: TerminalServiceAsyncStub
    business: Tenant
    phones: list[str]
    name: str
    day: Day
    pool: asyncpg.Pool

    async def call(self, method: str, request: Any) -> Any:
        """The call, retried while it fails on the way, bounded in time."""
        deadline = asyncio.get_running_loop().time() + call_seconds_max
        auth = bearer(self.business.cash_desk.api_key)
        while True:
            try:
                return await getattr(self.stub, method)(
                    request, metadata=auth, timeout=call_seconds_max
                )
            except grpc.aio.AioRpcError as error:
                if error.code() not in retried_codes:
                    raise
                if asyncio.get_running_loop().time() > deadline:
                    raise
                self.day.retries += 1
                await asyncio.sleep(retry_pause_seconds)

    async def process(self, request: pb.ProcessCheckRequest) -> pb.Transaction | None:
        self.day.sent[request.check_number] = request
        try:
            answer = await self.call("ProcessCheck", request)
        except grpc.aio.AioRpcError as error:
            self.day.refused[request.check_number] = error_reason(error)
            return None
        self.day.acknowledge(request.check_number, answer.transaction.transaction_id)
        transaction: pb.Transaction = answer.transaction
        return transaction

    async def confirm(self, transaction_id: int) -> None:
        """The customer reads the PIN out; when Redis forgot it, the till has it resent."""
        for _ in range(2):
            pin = await sent_pin(self.pool, self.business, transaction_id)
            request = pb.ConfirmTransactionRequest(transaction_id=transaction_id, pin=pin)
            try:
                await self.call("ConfirmTransaction", request)
                return
            except grpc.aio.AioRpcError as error:
                if error_reason(error) == "TRANSACTION_NOT_PENDING":
                    return  # a retry of a confirmation that was applied
                if error_reason(error) != "PIN_EXPIRED":
                    raise
            await self.call("ResendCode", pb.ResendCodeRequest(transaction_id=transaction_id))
        raise AssertionError(f"transaction {transaction_id} was never confirmed")

    async def stream(self, numbers: list[str], phone: str) -> None:
        """Checks on a stream; a stream cut short is sent again whole on a new one."""
        request = pb.ProcessChecksRequest(checks=[sale(number, phone) for number in numbers])
        self.day.sent.update((check.check_number, check) for check in request.checks)
        for _ in range(int(call_seconds_max / retry_pause_seconds)):
            stream = self.stub.ProcessChecks(
                metadata=bearer(self.business.cash_desk.api_key), timeout=call_seconds_max
            )
            try:
                await stream.write(request)
                answer = await stream.read()
                await stream.done_writing()
            except grpc.aio.AioRpcError as error:
                if error.code() not in retried_codes:
                    raise
                self.day.retries += 1
                await asyncio.sleep(retry_pause_seconds)
                continue
            assert isinstance(answer, pb.ProcessChecksResponse)
            for result in answer.results:
                if result.HasField("processed"):
                    transaction_id = result.processed.transaction.transaction_id
                    self.day.acknowledge(result.check_number, transaction_id)
                else:
                    self.day.refused[result.check_number] = result.error.reason
            return
        raise AssertionError(f"the stream of {numbers[0]} never got through")

    async def step(self, number: int) -> None:
        """The step's kind of work by its number: a day's mix."""
        phone = self.phones[number % len(self.phones)]
        check = f"{self.name}-{number}"
        kind = number % 8
        if kind == 0:
            identifier = common_pb2.CustomerIdentifier(phone=phone)
            await self.call("IdentifyCustomer", pb.IdentifyCustomerRequest(identifier=identifier))
        elif kind in (1, 2):
            await self.process(sale(check, phone, redeem=1_000 * (kind - 1)))
        elif kind in (3, 5):
            held = await self.process(sale(check, phone, redeem=5_000))
            if held is not None and kind == 3:
                await self.confirm(held.transaction_id)
            elif held is not None:
                request = pb.CancelTransactionRequest(transaction_id=held.transaction_id)
                await self.call("CancelTransaction", request)
        elif kind in (4, 7):
            done = await self.process(sale(check, phone, redeem=500))
            if done is not None and kind == 4:
                refund = pb.RefundTransactionRequest(
                    transaction_id=done.transaction_id, refund_number=f"{check}-refund"
                )
                await self.call("RefundTransaction", refund)
            elif done is not None:
                cancel = pb.CancelTransactionRequest(transaction_id=done.transaction_id)
                await self.call("CancelTransaction", cancel)
        else:
            numbers = [f"{check}-{n}" for n in range(checks_per_stream_message)]
            await self.stream(numbers, phone)


@pytest.fixture
async def two_businesses(
    channel: grpc.aio.Channel, pool: asyncpg.Pool, business: Tenant, infrastructure: Settings
) -> AsyncIterator[list[Tenant]]:
    """The test's business and a second one; the second one's audit follows the test too."""
    other = await make_business_through_api(channel, pool)
    yield [business, other]
    await assert_audit_is_clean(infrastructure.database_url, other.business_id)


@pytest.fixture
def several_hosts(infrastructure: Settings, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    environment = external(infrastructure, PURSE_PIN_SENDS_PER_PHONE_MAX="1000")
    servers = [ServerProcess(environment, tmp_path / f"host-{n}") for n in range(hosts)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.kill()


@pytest.fixture
def proxy(several_hosts: list[ServerProcess], tmp_path: Path) -> Iterator[GrpcProxy]:
    started = GrpcProxy([server.target for server in several_hosts], tmp_path).start()
    yield started
    started.stop()


async def customers(
    channel: grpc.aio.Channel, businesses: list[Tenant], shared_phone: str
) -> dict[int, list[str]]:
    """Each business's customers, each credited the day's starting points; the first is
    one phone enrolled at both businesses."""
    phones: dict[int, list[str]] = {}
    for tenant in businesses:
        await set_program(
            channel,
            tenant,
            rules=(five_percent_back,),
            points_redemption_limit_without_pin=redemption_limit_without_pin_hundredths,
        )
        memberships = [await enrol(channel, tenant, shared_phone)] + [
            await enrol(channel, tenant) for _ in range(customers_per_business - 1)
        ]
        for membership in memberships:
            await credit_points(channel, tenant, membership.customer_id, starting_points_hundredths)
        phones[tenant.business_id] = [membership.phone for membership in memberships]
    return phones


async def test_a_day_through_a_proxy_over_two_hosts_keeps_every_invariant_with_one_killed(
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    redis_client: redis.Redis,
    two_businesses: list[Tenant],
    several_hosts: list[ServerProcess],
    proxy: GrpcProxy,
    infrastructure: Settings,
) -> None:
    shared_phone = f"+38097{next(_shared_phones):07d}"
    phones = await customers(channel, two_businesses, shared_phone)
    day = Day()
    victim = several_hosts[-1]
    async with grpc.aio.insecure_channel(proxy.target) as through_proxy:
        stub = TerminalServiceStub(through_proxy)
        tills = [
            Till(stub, tenant, phones[tenant.business_id], f"H{tenant.business_id}-{n}", day, pool)
            for tenant in two_businesses
            for n in range(tills_per_business)
        ]
        await asyncio.wait_for(
            asyncio.gather(
                *(run_till(till) for till in tills), kill_midway(victim, day, redis_client)
            ),
            run_seconds_max,
        )
        # The restarted host serves again: the proxy sent it calls after its restart.
        assert sum(server_calls(victim.http_port).values()) > 0
        await assert_invariants(stub, pool, day, tills)
    await assert_tenants_separate(channel, pool, two_businesses, day, shared_phone)


_shared_phones = itertools.count(1)


async def run_till(till: Till) -> None:
    for number in range(steps_per_till):
        await till.step(number)


async def kill_midway(victim: ServerProcess, day: Day, redis_client: redis.Redis) -> None:
    """SIGKILL one host once a third of the day is acknowledged, lose Redis with it, and
    start the host again on its ports while the traffic goes on."""
    await day.midway.wait()
    victim.kill()
    await redis_client.flushall()
    day.killed.set()
    await asyncio.to_thread(victim.start)


async def assert_invariants(
    stub: TerminalServiceAsyncStub, pool: asyncpg.Pool, day: Day, tills: list[Till]
) -> None:
    """I1, I3, I4, I2 and I6 on what the day left (I5: assert_tenants_separate)."""
    businesses = {till.business.business_id: till.business for till in tills}
    for business_id, tenant in businesses.items():
        prefix = f"H{business_id}-"
        mine = {n: t for n, t in day.acknowledged.items() if n.startswith(prefix)}
        await assert_acknowledged_are_stored(pool, tenant, prefix, mine)
        await assert_each_applied_once(pool, tenant, prefix)
    replayed = {
        number: await answer_again(tills, number, request) for number, request in day.sent.items()
    }
    assert {n: a for n, a in replayed.items() if isinstance(a, int)} == day.acknowledged
    assert {n: a for n, a in replayed.items() if isinstance(a, str)} == day.refused
    negative = await pool.fetchval(
        "SELECT count(*) FROM pockets WHERE business_id = ANY($1) AND balance - held < 0",
        list(businesses),
    )
    assert negative == 0
    for till in tills[::tills_per_business]:  # Redis was emptied midway: it was rebuilt
        for phone in till.phones:
            identifier = common_pb2.CustomerIdentifier(phone=phone)
            answer = await till.call(
                "IdentifyCustomer", pb.IdentifyCustomerRequest(identifier=identifier)
            )
            pocket = answer.membership.pockets[0]
            assert (pocket.balance, pocket.held) == await points_of(pool, till.business, phone)


async def answer_again(
    tills: list[Till], number: str, request: pb.ProcessCheckRequest
) -> int | str:
    """The check sent again as it was, by its own till: its transaction, or the reason it
    was refused."""
    till = next(till for till in tills if number.startswith(f"{till.name}-"))
    try:
        answer = await till.call("ProcessCheck", request)
    except grpc.aio.AioRpcError as error:
        return error_reason(error)
    transaction_id: int = answer.transaction.transaction_id
    return transaction_id


async def assert_tenants_separate(
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    businesses: list[Tenant],
    day: Day,
    shared_phone: str,
) -> None:
    """I5: one business's till cannot read the other's transactions, and the phone both
    enrolled has a pocket at each, each with that business's own balance."""
    first, second = businesses
    stub = TerminalServiceStub(channel)
    theirs = next(
        transaction
        for number, transaction in day.acknowledged.items()
        if number.startswith(f"H{second.business_id}-")
    )
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.GetTransaction(
            pb.GetTransactionRequest(transaction_id=theirs),
            metadata=bearer(first.cash_desk.api_key),
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    identifier = common_pb2.CustomerIdentifier(phone=shared_phone)
    pockets = [
        (
            await stub.IdentifyCustomer(
                pb.IdentifyCustomerRequest(identifier=identifier),
                metadata=bearer(tenant.cash_desk.api_key),
            )
        ).membership.pockets[0]
        for tenant in businesses
    ]
    assert pockets[0].pocket_id != pockets[1].pocket_id
    assert [(pocket.balance, pocket.held) for pocket in pockets] == [
        await points_of(pool, tenant, shared_phone) for tenant in businesses
    ]
