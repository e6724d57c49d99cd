"""`purse audit` finds every kind of row that names a row that does not exist: the rows a
sale writes carry no foreign keys (migration 0014), so the audit checks what the keys
used to refuse. Each orphan is made by hand, as no API call can make one, and removed
after (the fixture's own audit then finds the business clean again)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from support import Tenant

from purse.config import Settings
from purse.store.postgres.audit import Finding, audit

# No identity ever draws a negative id: these name nothing.
_unknown_id = -1


@pytest.fixture
async def connection(infrastructure: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, as `purse audit` opens one."""
    opened = await asyncpg.connect(infrastructure.database_url)
    yield opened
    await opened.close()


# A transaction row as the orphan tests write it ($1 business, $2 terminal, $3 customer).
_insert_transaction = (
    "INSERT INTO transactions (business_id, terminal_id, check_number, request_digest,"
    "                          customer_id, status, receipt, sum_minor_units)"
    " VALUES ($1, $2, 'orphan', '\\x00', $3, 'completed', '{}', 0) RETURNING transaction_id"
)
_a_terminal_of_the_business = "(SELECT min(terminal_id) FROM terminals WHERE business_id = $1)"

# Per finding: the statement that makes one orphan of it in business $1 naming the
# unknown id $2, returning its id; and the table and id column to remove it by.
_orphans = {
    Finding.LEDGER_ENTRY_OF_UNKNOWN_POCKET: (
        "INSERT INTO ledger_entries (business_id, pocket_id, kind, amount)"
        " VALUES ($1, $2, 'adjust', 0) RETURNING entry_id",
        "ledger_entries",
        "entry_id",
    ),
    Finding.POINTS_LOT_OF_UNKNOWN_POCKET: (
        "INSERT INTO points_lots (business_id, pocket_id, remaining, expires_at)"
        " VALUES ($1, $2, 0, now()) RETURNING lot_id",
        "points_lots",
        "lot_id",
    ),
    Finding.POCKET_OF_UNKNOWN_MEMBERSHIP: (
        "INSERT INTO pockets (business_id, customer_id) VALUES ($1, $2) RETURNING pocket_id",
        "pockets",
        "pocket_id",
    ),
    Finding.TRANSACTION_OF_UNKNOWN_TERMINAL: (
        _insert_transaction.replace("$3", "NULL"),
        "transactions",
        "transaction_id",
    ),
    Finding.TRANSACTION_OF_UNKNOWN_CUSTOMER: (
        _insert_transaction.replace("$2", _a_terminal_of_the_business).replace("$3", "$2"),
        "transactions",
        "transaction_id",
    ),
}


@pytest.mark.parametrize("finding", list(_orphans), ids=lambda finding: finding.value)
async def test_audit_names_a_row_that_names_what_does_not_exist(
    connection: asyncpg.Connection, business: Tenant, finding: Finding
) -> None:
    statement, table, key = _orphans[finding]
    assert (await audit(connection, business.business_id)).orphans == []
    orphan_id = await connection.fetchval(statement, business.business_id, _unknown_id)
    try:
        report = await audit(connection, business.business_id)
    finally:
        await connection.execute(
            f"DELETE FROM {table} WHERE business_id = $1 AND {key} = $2",
            business.business_id,
            orphan_id,
        )
    assert not report.clean
    assert [(o.finding, o.rows, o.first_id) for o in report.orphans] == [(finding, 1, orphan_id)]
    assert finding.value in report.orphans[0].describe()


async def test_audit_names_a_transaction_of_a_business_that_does_not_exist(
    connection: asyncpg.Connection, business: Tenant
) -> None:
    # A business id no business has: the negative of this test's own.
    unknown_business_id = -business.business_id
    orphan_id = await connection.fetchval(
        _insert_transaction, unknown_business_id, business.cash_desk.terminal_id, None
    )
    try:
        report = await audit(connection, unknown_business_id)
    finally:
        await connection.execute(
            "DELETE FROM transactions WHERE business_id = $1", unknown_business_id
        )
    findings = {(o.finding, o.business_id, o.first_id) for o in report.orphans}
    assert (Finding.TRANSACTION_OF_UNKNOWN_BUSINESS, unknown_business_id, orphan_id) in findings
    # Its terminal is not the business's either (terminals are keyed by business).
    assert (Finding.TRANSACTION_OF_UNKNOWN_TERMINAL, unknown_business_id, orphan_id) in findings


async def test_audit_counts_orphans_of_one_kind_per_business_with_the_lowest_id(
    connection: asyncpg.Connection, business: Tenant
) -> None:
    statement = _orphans[Finding.LEDGER_ENTRY_OF_UNKNOWN_POCKET][0]
    entry_ids = [
        await connection.fetchval(statement, business.business_id, _unknown_id) for _ in range(3)
    ]
    try:
        report = await audit(connection, business.business_id)
        everywhere = await audit(connection)
    finally:
        await connection.execute(
            "DELETE FROM ledger_entries WHERE business_id = $1 AND entry_id = ANY($2)",
            business.business_id,
            entry_ids,
        )
    assert [(o.rows, o.first_id) for o in report.orphans] == [(3, min(entry_ids))]
    assert report.orphaned_rows() == 3
    assert report.orphans[0] in everywhere.orphans
