"""PostgreSQL announces program rule changes; a server trusts what it heard only while it
listens. Waiting for a notification is waiting for I/O: each wait is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from support import Tenant

from purse.config import Settings
from purse.service.program_versions import AnnouncedVersions
from purse.store.postgres.program_announcements import ProgramAnnouncements

wait_seconds_max = 10.0


class Listener:
    """The announcements' callbacks, into `versions`, with every call recorded."""

    def __init__(self) -> None:
        self.versions = AnnouncedVersions(trust_seconds=60.0, programs_max=100)
        self.calls: list[str] = []
        self._called = asyncio.Event()

    def heard(self, business_id: int, program_id: int, version: int) -> None:
        self.versions.learned(business_id, program_id, version)
        self._record("heard")

    def listening(self) -> None:
        self.versions.listening()
        self._record("listening")

    def deaf(self) -> None:
        self.versions.deaf()
        self._record("deaf")

    def _record(self, call: str) -> None:
        self.calls.append(call)
        self._called.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(wait_seconds_max):
            while not condition():
                await self._called.wait()
                self._called.clear()


@pytest.fixture
async def listener(infrastructure: Settings) -> AsyncIterator[Listener]:
    listener = Listener()
    announcements = ProgramAnnouncements(
        infrastructure.database_url, listener.heard, listener.listening, listener.deaf, 5.0
    )
    await announcements.start()
    try:
        yield listener
    finally:
        await announcements.close()


async def changed_rules(pool: asyncpg.Pool, business: Tenant) -> int:
    version: int = await pool.fetchval(
        "UPDATE loyalty_programs SET rules_version = rules_version + 1"
        " WHERE business_id = $1 AND program_id = $2 RETURNING rules_version",
        business.business_id, business.program_id,
    )  # fmt: skip
    return version


async def test_a_rules_change_committed_elsewhere_is_heard(
    pool: asyncpg.Pool, business: Tenant, listener: Listener
) -> None:
    known = listener.versions.known
    assert listener.calls == ["listening"]
    assert known(business.business_id, business.program_id) is None
    version = await changed_rules(pool, business)
    await listener.until(lambda: known(business.business_id, business.program_id) == version)


async def test_a_change_in_a_transaction_rolled_back_is_never_announced(
    pool: asyncpg.Pool, business: Tenant, listener: Listener
) -> None:
    known = listener.versions.known
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await changed_rules(connection, business)  # type: ignore[arg-type]
        await transaction.rollback()
    committed = await changed_rules(pool, business)
    await listener.until(lambda: "heard" in listener.calls)
    assert listener.calls == ["listening", "heard"]
    assert known(business.business_id, business.program_id) == committed


async def test_a_lost_connection_forgets_everything_until_it_listens_again(
    pool: asyncpg.Pool, business: Tenant, listener: Listener
) -> None:
    known = listener.versions.known
    listener.versions.learned(business.business_id, business.program_id, 7)
    assert known(business.business_id, business.program_id) == 7
    await pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'purse program announcements'"
    )
    await listener.until(lambda: listener.calls[-1:] == ["deaf"])
    assert known(business.business_id, business.program_id) is None
    await listener.until(lambda: listener.calls[-1:] == ["listening"])
    version = await changed_rules(pool, business)
    await listener.until(lambda: known(business.business_id, business.program_id) == version)
