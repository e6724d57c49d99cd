"""The write path's statements find their rows by primary key, whatever the size of the
business and however the planner's statistics look: the batch's UPDATEs of pockets and
memberships never scan every pocket of a business, nor does its lock of the customers'
points lots scan every lot of a business with a lot for each member; the outbox
dispatcher's results never probe the `due` index (every message of a claim shares one
lease, so each probe would return them all: the cost would grow with the square of the
claim). And no foreign key is checked for the rows a sale inserts (`purse audit` finds
orphans instead), and the rows every sale updates have room on their page for their next
version (a HOT update)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from support import Tenant

from purse.store.postgres import batches, outbox

pockets_in_a_large_business = 20_000
messages_in_a_claim = 500


# The tables of a large business the batch's write statement updates (every one of its
# UPDATEs names its keys the same way; these are the ones the test fills).
_keyed_tables = ("pockets", "memberships")


def _found_by_key(nodes: list[dict[str, Any]], table: str) -> None:
    """Every scan of `table` in the plan looks its rows up by the keys the statement was
    given (`= ANY(...)` in the index condition), never by the business alone."""
    scans = [node for node in nodes if node.get("Relation Name") == table]
    assert scans, f"{table} is not in the plan"
    for node in scans:
        if node["Node Type"] == "ModifyTable":
            continue
        assert node["Node Type"] != "Seq Scan", f"{table} is scanned whole"
        condition = node.get("Index Cond") or node.get("Recheck Cond") or ""
        if node["Node Type"] == "Bitmap Heap Scan":
            condition = " ".join(child.get("Index Cond", "") for child in node.get("Plans", ()))
        assert "ANY" in condition, f"{table} is looked up by {condition or 'nothing'}"


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", ()):
        nodes.extend(_plan_nodes(child))
    return nodes


async def _explained(connection: Any, statement: str, *arguments: Any) -> list[dict[str, Any]]:
    # As a prepared statement is planned after its first executions: once for any values.
    await connection.execute("SET plan_cache_mode = force_generic_plan")
    try:
        raw = await connection.fetchval("EXPLAIN (FORMAT JSON) " + statement, *arguments)
    finally:
        await connection.execute("RESET plan_cache_mode")
    document = json.loads(raw) if isinstance(raw, str) else raw
    return _plan_nodes(document[0]["Plan"])


async def _fill_large_business(connection: Any, business_id: int) -> None:
    """`pockets_in_a_large_business` members with their points pockets, analysed."""
    await connection.execute(
        "WITH customers AS ("
        "  INSERT INTO customers (phone)"
        "  SELECT '+38097' || lpad(n::text, 7, '0') FROM generate_series(1, $2) n"
        "  ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone RETURNING customer_id"
        "), members AS ("
        "  INSERT INTO memberships (business_id, customer_id, category_id, access_type)"
        "  SELECT $1, customer_id, (SELECT category_id FROM customer_categories"
        "                            WHERE business_id = $1 AND is_default), 'full'"
        "    FROM customers RETURNING customer_id"
        ") INSERT INTO pockets (business_id, customer_id) SELECT $1, customer_id FROM members",
        business_id,
        pockets_in_a_large_business,
    )
    await connection.execute("ANALYZE pockets; ANALYZE memberships")


async def test_a_batch_updates_pockets_and_memberships_by_key_in_a_large_business(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    async with pool.acquire() as connection:
        await _fill_large_business(connection, business.business_id)
        pocket_ids = [
            row["pocket_id"]
            for row in await connection.fetch(
                "SELECT pocket_id FROM pockets WHERE business_id = $1 LIMIT 50",
                business.business_id,
            )
        ]
        parameters = max(int(number) for number in re.findall(r"\$(\d+)", batches._write))
        arguments: list[Any] = [business.business_id] + [[] for _ in range(parameters - 1)]
        arguments[1], arguments[2], arguments[3] = pocket_ids, [1] * 50, [0] * 50
        nodes = await _explained(connection, batches._write, *arguments)
    for table in _keyed_tables:
        _found_by_key(nodes, table)


@pytest.mark.ledger_set_by_hand  # lots without their credits' ledger entries
async def test_a_batch_locks_its_customers_points_lots_by_index_in_a_business_of_many(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    async with pool.acquire() as connection:
        await _fill_large_business(connection, business.business_id)
        # A lot for every member, as a bulk credit of special points leaves them.
        await connection.execute(
            "INSERT INTO points_lots (business_id, pocket_id, remaining, expires_at)"
            " SELECT business_id, pocket_id, 5000, now() + interval '14 days'"
            "   FROM pockets WHERE business_id = $1 AND account_type_id = 0",
            business.business_id,
        )
        await connection.execute("ANALYZE points_lots")
        customer_ids = [
            row["customer_id"]
            for row in await connection.fetch(
                "SELECT customer_id FROM pockets WHERE business_id = $1 LIMIT 50",
                business.business_id,
            )
        ]
        statement = batches._claim_and_lock
        parameters = max(int(number) for number in re.findall(r"\$(\d+)", statement))
        arguments: list[Any] = [[] for _ in range(parameters)]
        arguments[11], arguments[14] = business.business_id, customer_ids  # $12, $15
        nodes = await _explained(connection, statement, *arguments)
    for table in ("points_lots", "pockets"):
        scans = [node for node in nodes if node.get("Relation Name") == table]
        assert scans, f"{table} is not in the plan"
        assert all(node["Node Type"] != "Seq Scan" for node in scans), f"{table} is scanned whole"


async def test_the_dispatcher_records_results_by_primary_key_not_by_lease(
    pool: asyncpg.Pool, business: Tenant
) -> None:
    lease = datetime.now(UTC) + timedelta(seconds=30)
    async with pool.acquire() as connection:
        customer_id = await connection.fetchval(
            "INSERT INTO customers (phone) VALUES ('+380960000001')"
            " ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone RETURNING customer_id"
        )
        # Many pending messages at distinct times (as a backlog is), and one claim's worth
        # sharing one lease.
        ids = await connection.fetch(
            "INSERT INTO outbox_messages (business_id, customer_id, channel, purpose, phone, body,"
            "                             next_attempt_at)"
            " SELECT $1, $2, 'sms', 'transaction', '+380960000001', 'x',"
            "        CASE WHEN n <= $3 THEN $4 ELSE now() + n * interval '1 second' END"
            "   FROM generate_series(1, 20 * $3) n RETURNING message_id",
            business.business_id,
            customer_id,
            messages_in_a_claim,
            lease,
        )
        await connection.execute("ANALYZE outbox_messages")
        claimed = [row["message_id"] for row in ids[:messages_in_a_claim]]
        count = len(claimed)
        nodes = await _explained(
            connection, outbox._record, [business.business_id] * count, claimed, [lease] * count,
            ["sent"] * count, [""] * count, [1] * count, [0] * count, ["sms"] * count,
        )  # fmt: skip
        await connection.execute(
            "DELETE FROM outbox_messages WHERE business_id = $1", business.business_id
        )
    _found_by_key(nodes, "outbox_messages")
    assert all(node.get("Index Name") != "outbox_messages_due" for node in nodes)


# The tables a sale (or an administrator's operation through the batch) inserts rows into.
_inserted_by_a_sale = ("transactions", "ledger_entries", "pockets", "points_lots")


async def test_no_foreign_key_is_checked_for_the_rows_a_sale_inserts(pool: asyncpg.Pool) -> None:
    keys = await pool.fetch(
        "SELECT conrelid::regclass::text AS table_name, conname FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid::regclass::text = ANY($1::text[])",
        list(_inserted_by_a_sale),
    )
    assert [(row["table_name"], row["conname"]) for row in keys] == []
    # Nor any other trigger on insert (bit 4 of tgtype); those on the side a key of another
    # table names (refunds name transactions) fire on its UPDATE or DELETE only.
    triggers = await pool.fetch(
        "SELECT tgrelid::regclass::text AS table_name, tgname FROM pg_trigger"
        " WHERE tgrelid::regclass::text = ANY($1::text[]) AND tgtype & 4 <> 0",
        list(_inserted_by_a_sale),
    )
    assert [(row["table_name"], row["tgname"]) for row in triggers] == []


# Tables every sale updates, by columns no index names: with room on the page, the new
# version stays there and no index gains an entry.
_updated_by_every_sale = ("memberships", "pockets")
fillfactor_percent_max = 80


async def test_the_rows_every_sale_updates_have_room_for_their_next_version(
    pool: asyncpg.Pool,
) -> None:
    rows = await pool.fetch(
        "SELECT relname, reloptions FROM pg_class"
        " WHERE relkind = 'r' AND relname = ANY($1::text[])",
        list(_updated_by_every_sale),
    )
    fillfactors = {
        row["relname"]: int(option.partition("=")[2])
        for row in rows
        for option in row["reloptions"] or ()
        if option.startswith("fillfactor=")
    }
    assert set(fillfactors) == set(_updated_by_every_sale)
    assert all(percent <= fillfactor_percent_max for percent in fillfactors.values())
