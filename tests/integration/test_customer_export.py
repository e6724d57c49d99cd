"""The customer list as CSV on the real tables: the same rows in the same order as the
list's pages, formatted for a spreadsheet, names quoted and kept from running as formulas,
one moment's selection, and an export stopped halfway or taking too long giving its
connection back."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import Tenant, make_business, new_phone
from test_customer_list import Member, every_page, issue_example, make_members, now

from purse.config import Settings
from purse.domain.customers import AccessType
from purse.domain.errors import TimedOut
from purse.domain.segments import Condition, CustomerColumn, Direction, Filter, Operator, Sort
from purse.store.postgres import database
from purse.store.postgres.customer_export import CustomerExportStore
from purse.store.postgres.customer_list import CustomerListStore, ListScope
from purse.store.postgres.customers import CustomerStore

export_seconds_max = 60.0


class Collected:
    """What an export writes, kept whole."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1

    def rows(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.data.decode("utf-8-sig"), newline="")))


async def exported(
    pool: asyncpg.Pool,
    business: Tenant,
    sort: Sort | None = None,
    tree: Filter | None = None,
    scope: ListScope | None = None,
) -> Collected:
    collected = Collected()
    store = CustomerExportStore(pool, export_seconds_max)
    await store.export(
        business.business_id, scope or ListScope(), tree, sort or Sort(), now, collected.write
    )
    return collected


async def name(
    pool: asyncpg.Pool, business: Tenant, customer_id: int, given: str, family: str
) -> None:
    await pool.execute(
        "UPDATE memberships SET given_name = $3, family_name = $4"
        " WHERE business_id = $1 AND customer_id = $2",
        business.business_id,
        customer_id,
        given,
        family,
    )


@pytest.mark.parametrize("direction", list(Direction))
async def test_the_export_holds_the_rows_of_the_list_s_pages_in_their_order(
    pool: asyncpg.Pool, business: Tenant, direction: Direction
) -> None:
    made = await make_members(
        pool, business, [Member(s, d, 150_00) for s in (6, 7) for d in (31, 40, 3)]
    )
    other = await make_business(pool)
    await make_members(pool, other, [Member(7, 40, 300_00)])
    sort = Sort(CustomerColumn.AVERAGE_CHECK, direction)

    rows = (await exported(pool, business, sort, issue_example)).rows()
    listed = await every_page(CustomerListStore(pool), business.business_id, sort, issue_example)

    assert [int(row["customer_id"]) for row in rows] == [row.customer_id for row in listed]
    assert len(rows) == 4 and set(int(row["customer_id"]) for row in rows) <= set(made)


async def test_a_row_is_written_for_a_spreadsheet_with_the_currency_in_the_header(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    made = await make_members(pool, business, [Member(3, 40, 123_45), Member(0, 1, 0)])
    buyer, newcomer = sorted(made)

    collected = await exported(pool, business)

    text = collected.data.decode()
    assert text.startswith("\ufeffcustomer_id,phone,given_name,family_name,category_id,")
    header = text.splitlines()[0].lstrip("\ufeff").split(",")
    assert header[9:] == [
        "sales_sum_UAH",
        "average_check_UAH",
        "first_visit_time",
        "last_visit_time",
        "points_balance",
        "points_expiring",
        "points_expiring_time",
        "create_time",
    ]
    first, second = collected.rows()
    last_visit = (now - timedelta(days=40)).astimezone(UTC)
    assert first["customer_id"] == str(buyer) and first["phone"].startswith("+380")
    assert (first["sales_count"], first["sales_sum_UAH"], first["average_check_UAH"]) == (
        "3",
        "30.03",
        "10.01",
    )
    assert first["last_visit_time"] == last_visit.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["points_balance"] == "123.45" and first["access_type"] == "full"
    assert first["participation_confirmed"] == "false"
    assert datetime.fromisoformat(first["create_time"]) <= datetime.now(UTC)
    assert second["customer_id"] == str(newcomer)
    assert (second["average_check_UAH"], second["first_visit_time"], second["given_name"]) == (
        "",
        "",
        "",
    )
    assert (second["sales_sum_UAH"], second["points_balance"]) == ("0.00", "0.00")
    assert text.count("\r") == 0 and text.endswith("\n")


async def test_names_are_quoted_and_a_formula_is_written_as_text(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    made = sorted(await make_members(pool, business, [Member(0, 1, 0)] * 6))
    names = {
        made[0]: ('=HYPERLINK("http://x")', "+1+1"),
        made[1]: ("-2", "@SUM(A1)"),
        made[2]: ("\tTab", "\rReturn"),
        made[3]: ("＝1+1", 'Smith, "Jr"\nthe second'),
        made[4]: ("Олена", "O'Neil"),
    }
    for customer_id, (given, family) in names.items():
        await name(pool, business, customer_id, given, family)

    collected = await exported(pool, business)

    rows = {int(row["customer_id"]): row for row in collected.rows()}
    assert (rows[made[0]]["given_name"], rows[made[0]]["family_name"]) == (
        '\'=HYPERLINK("http://x")',
        "'+1+1",
    )
    assert (rows[made[1]]["given_name"], rows[made[1]]["family_name"]) == ("'-2", "'@SUM(A1)")
    assert (rows[made[2]]["given_name"], rows[made[2]]["family_name"]) == ("'\tTab", "'\rReturn")
    assert (rows[made[3]]["given_name"], rows[made[3]]["family_name"]) == (
        "'＝1+1",
        'Smith, "Jr"\nthe second',
    )
    assert (rows[made[4]]["given_name"], rows[made[4]]["family_name"]) == ("Олена", "O'Neil")
    assert (rows[made[5]]["given_name"], rows[made[5]]["family_name"]) == ("", "")
    assert (
        f"\n{made[4]}," in collected.data.decode()
        and '"Олена","O\'Neil"' in collected.data.decode()
    )


async def test_a_filter_s_text_is_a_value_never_sql_whatever_it_holds(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    tricky = "O'Neil $1 \\' OR TRUE --"
    made = sorted(await make_members(pool, business, [Member(0, 1, 0)] * 2))
    await name(pool, business, made[0], "Taras", tricky)
    await name(pool, business, made[1], "Taras", "Shevchenko")
    tree = Condition(CustomerColumn.FAMILY_NAME, Operator.EQUALS, tricky)

    rows = (await exported(pool, business, tree=tree)).rows()

    assert [(int(row["customer_id"]), row["family_name"]) for row in rows] == [(made[0], tricky)]


async def test_members_who_join_while_it_streams_are_not_in_the_export(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    await make_members(pool, business, [Member(1, 1, 0)] * 3)
    customers = CustomerStore(pool)
    joined: list[int] = []
    collected = Collected()

    async def write(data: bytes) -> None:
        if not joined:  # the header: the export's snapshot is taken, its rows not read yet
            customer_id, _ = await customers.enrol(
                business.business_id, new_phone(), AccessType.FULL
            )
            joined.append(customer_id)
        await collected.write(data)

    store = CustomerExportStore(pool, export_seconds_max)
    written = await store.export(business.business_id, ListScope(), None, Sort(), now, write)

    listed = await every_page(CustomerListStore(pool), business.business_id, Sort())
    assert written == len(collected.rows()) == 3
    assert joined[0] in [row.customer_id for row in listed]
    assert joined[0] not in [int(row["customer_id"]) for row in collected.rows()]


async def _one_connection_after(
    infrastructure_url: str, export: Callable[[CustomerExportStore, asyncpg.Pool], Awaitable[None]]
) -> int:
    """Runs `export` on a pool of one connection, then a query on the same pool."""
    alone = await database.create_pool(infrastructure_url, 1, 1, 10_000, 10.0)
    try:
        await export(CustomerExportStore(alone, 0.2, client_seconds_margin=0.0), alone)
        async with asyncio.timeout(10):
            answered: int = await alone.fetchval("SELECT 1")
        return answered
    finally:
        await alone.close()


async def test_an_export_whose_reader_fails_or_stops_reading_gives_its_connection_back(
    pool: asyncpg.Pool, business: Tenant, infrastructure: Settings
) -> None:
    await make_members(pool, business, [Member(0, 1, 0)] * 3)

    class ReaderGone(Exception):
        pass

    async def failing(store: CustomerExportStore, _: asyncpg.Pool) -> None:
        async def write(data: bytes) -> None:
            if data.startswith(b"\xef\xbb\xbf"):
                return
            raise ReaderGone

        with pytest.raises(ReaderGone):
            await store.export(business.business_id, ListScope(), None, Sort(), now, write)

    async def stuck(store: CustomerExportStore, _: asyncpg.Pool) -> None:
        never = asyncio.Event()

        async def write(data: bytes) -> None:
            if not data.startswith(b"\xef\xbb\xbf"):
                await never.wait()

        with pytest.raises(TimedOut) as refused:
            await store.export(business.business_id, ListScope(), None, Sort(), now, write)
        assert refused.value.reason == "EXPORT_TOO_LONG"

    assert await _one_connection_after(infrastructure.database_url, failing) == 1
    assert await _one_connection_after(infrastructure.database_url, stuck) == 1
