"""Migrations and the schema's own guarantees, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from support import Tenant, legacy_document, make_business, make_terminal

from purse.api.grpc.terminal.receipts import receipt_to_proto
from purse.api.grpc.terminal.stored_receipts import StoredReceipts, decode, encode
from purse.api.grpc.terminal.transactions import transaction_to_proto
from purse.config import Settings
from purse.domain.checks import (
    Certificate,
    CertificateSpending,
    Check,
    CheckLine,
    Coupon,
    CouponKind,
    Customer,
    PointsLot,
    Redemption,
)
from purse.domain.customer_operations import PointsCredit, operation_document
from purse.domain.customers import AccessType
from purse.domain.engine import calculate
from purse.domain.program import Program, Rule, RuleKind, RuleScope, ValueKind, compile_program
from purse.domain.terminals import TerminalKind
from purse.domain.transactions import SaleReceipt, TransactionStatus
from purse.service.admin.programs import Programs
from purse.service.terminal.calculation import Calculation
from purse.service.terminal.refunds import Refunds
from purse.service.unit_of_work import UnitOfWork
from purse.store.postgres import database, receipts
from purse.store.postgres.customers import CustomerStore
from purse.store.postgres.programs import ProgramStore
from purse.store.postgres.provisioning import Provisioning
from purse.store.postgres.refunds import RefundStore
from purse.store.postgres.terminals import TerminalStore
from purse.store.postgres.transactions import TransactionStore


async def test_migrating_again_applies_nothing(infrastructure: Settings) -> None:
    assert await database.migrate(infrastructure.database_url) == []


async def test_concurrent_migrations_wait_for_each_other(infrastructure: Settings) -> None:
    results = await asyncio.gather(
        *(database.migrate(infrastructure.database_url) for _ in range(4))
    )
    assert results == [[], [], [], []]


async def test_the_instance_secret_is_created_once_and_kept(pool: asyncpg.Pool) -> None:
    first = await database.load_instance_secret(pool)
    assert len(first) == database.instance_secret_bytes
    assert await database.load_instance_secret(pool) == first


async def test_every_primary_key_starts_with_business_id(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "SELECT c.conrelid::regclass::text AS table_name,"
        "       (SELECT attname FROM pg_attribute"
        "         WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) AS first_column"
        "  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'p' AND n.nspname = 'public'"
    )
    # The operator is above businesses: its keys belong to the instance.
    global_tables = {
        "businesses",
        "customers",
        "instance_secrets",
        "operator_api_keys",
        "schema_migrations",
    }
    keyed = {row["table_name"]: row["first_column"] for row in rows}
    assert set(keyed) > {"memberships", "pockets", "ledger_entries", "transactions"}
    for table, column in keyed.items():
        if table not in global_tables:
            assert column == "business_id", table


async def test_a_pocket_can_never_go_below_zero(pool: asyncpg.Pool, business: Tenant) -> None:
    customer_id, _ = await CustomerStore(pool).enrol(
        business.business_id, "+380991110001", AccessType.FULL
    )
    provisioning = Provisioning(pool)
    await provisioning.adjust_pocket(business.business_id, customer_id, 0, 500)
    with pytest.raises(asyncpg.CheckViolationError):
        await provisioning.adjust_pocket(business.business_id, customer_id, 0, -501)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "UPDATE pockets SET held = 600 WHERE business_id = $1 AND customer_id = $2",
            business.business_id,
            customer_id,
        )
    balance = await pool.fetchval(
        "SELECT balance FROM pockets WHERE business_id = $1 AND customer_id = $2",
        business.business_id,
        customer_id,
    )
    assert balance == 500


@pytest.fixture
async def empty_database_url(infrastructure: Settings) -> AsyncIterator[str]:
    """A database of this test's own on the session's server, dropped afterwards."""
    name = f"purse_migration_{secrets.token_hex(6)}"
    server = await asyncpg.connect(infrastructure.database_url)
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(infrastructure.database_url)._replace(path=f"/{name}"))
        await server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await server.close()


async def customer_before_0007(
    connection: asyncpg.Connection, phone: str, given: str, family: str, language: str
) -> int:
    """A customer as the schema before 0007 kept one: names and language on the shared row."""
    customer_id: int = await connection.fetchval(
        "INSERT INTO customers (phone, given_name, family_name, language)"
        " VALUES ($1, $2, $3, $4) RETURNING customer_id",
        phone,
        given,
        family,
        language,
    )
    return customer_id


async def member_before_0007(connection: asyncpg.Connection, customer_id: int) -> int:
    """A business of its own with a default category, and the customer's membership in it."""
    business_id: int = await connection.fetchval(
        "WITH business AS ("
        "  INSERT INTO businesses (name, currency, currency_exponent)"
        "  VALUES ('Migrated', 'UAH', 2) RETURNING business_id"
        "), category AS ("
        "  INSERT INTO customer_categories (business_id, name, is_default)"
        "  SELECT business_id, 'New customers', true FROM business RETURNING *"
        ") INSERT INTO memberships (business_id, customer_id, category_id, access_type)"
        "  SELECT business_id, $1, category_id, 'full' FROM category RETURNING business_id",
        customer_id,
    )
    return business_id


async def personal_data_of(
    connection: asyncpg.Connection, customer_id: int
) -> list[tuple[str, ...]]:
    rows = await connection.fetch(
        "SELECT given_name, family_name, language FROM memberships"
        " WHERE customer_id = $1 ORDER BY business_id",
        customer_id,
    )
    return [tuple(row) for row in rows]


async def test_migration_0007_copies_names_and_language_to_every_membership_of_the_customer(
    empty_database_url: str,
) -> None:
    applied = await database.migrate(empty_database_url, through=6)
    assert [database.migration_number(version) for version in applied] == [1, 2, 3, 4, 5, 6]
    connection = await asyncpg.connect(empty_database_url)
    try:
        named = await customer_before_0007(connection, "+380991230001", "Olena", "Kosach", "uk")
        unnamed = await customer_before_0007(connection, "+380991230002", "", "", "")
        for customer_id in (named, named, unnamed):
            await member_before_0007(connection, customer_id)
        assert await database.migrate(empty_database_url, through=7) == [
            "0007_personal_data_per_business"
        ]
        assert await personal_data_of(connection, named) == [("Olena", "Kosach", "uk")] * 2
        assert await personal_data_of(connection, unnamed) == [("", "", "")]
        columns = await connection.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'customers'"
        )
        assert {row["column_name"] for row in columns} == {"customer_id", "phone", "created_at"}
    finally:
        await connection.close()


async def test_migration_0007_fits_what_the_shared_row_took_unchecked_to_the_new_limits(
    empty_database_url: str,
) -> None:
    await database.migrate(empty_database_url, through=6)
    connection = await asyncpg.connect(empty_database_url)
    try:
        customer_id = await customer_before_0007(
            connection, "+380991230003", "x" * 250, "Kosach", "uk_UA"
        )
        await member_before_0007(connection, customer_id)
        await database.migrate(empty_database_url, through=7)
        assert await personal_data_of(connection, customer_id) == [("x" * 200, "Kosach", "")]
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "UPDATE memberships SET language = 'not a tag' WHERE customer_id = $1",
                customer_id,
            )
    finally:
        await connection.close()


def sale_with_every_kind_of_pocket() -> SaleReceipt:
    """A sale the engine calculates: two lines (one of two units), 5 % back in points,
    points redeemed, a coupon and a certificate named by their codes."""
    program = compile_program(
        Program(
            currency="UAH",
            rules=(Rule(1, "5% back", RuleKind.ACCRUAL, RuleScope.LINE, ValueKind.PERCENT, 500),),
            points_redemption_limit_without_pin=None,
        )
    )
    lines = (CheckLine(1, "TEA", 5_000, 2_000, 10_000), CheckLine(2, "CAKE", 8_000, 1_000, 8_000))
    customer = Customer(
        category_id=1,
        points_lots=(PointsLot(0, 100_000),),
        coupons=(Coupon(5, CouponKind.FIXED, 1_000),),
        certificates=(Certificate(9, 3_000),),
    )
    asked = Redemption(points=2_000, coupon_ids=(5,), certificates=(CertificateSpending(9),))
    receipt = calculate(
        Check("UAH", lines),
        program,
        customer,
        asked,
        moment=datetime(2026, 3, 2),
        point_of_sale_id=1,
    )
    return SaleReceipt(receipt, {1: 2_000, 2: 1_000}, {5: "TEN-OFF"}, {9: "GIFT-9"})


async def transaction_before_0013(
    pool: asyncpg.Pool,
    business: Tenant,
    check_number: str,
    customer_id: int | None,
    status: str,
    document: dict[str, Any],
) -> None:
    """A transaction as the schema before 0013 kept one: its receipt a jsonb document."""
    await pool.execute(
        "INSERT INTO transactions (business_id, terminal_id, point_of_sale_id, check_number,"
        "                          request_digest, customer_id, status, receipt,"
        "                          sum_minor_units, refusal, finished_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 18000, $9, now())",
        business.business_id, business.cash_desk.terminal_id, business.point_of_sale_id,
        check_number, check_number.encode(), customer_id, status, document,
        {"reason": "COUPON_USED", "message": "used"} if status == "rejected" else None,
    )  # fmt: skip


async def test_sales_stored_before_0013_are_answered_and_refunded_as_before_and_after_conversion(
    empty_database_url: str,
) -> None:
    await database.migrate(empty_database_url, through=12)
    pool = await database.create_pool(empty_database_url, 1, 4, 10_000, 10.0)
    try:
        business = await make_business(pool)
        customer_id, _ = await CustomerStore(pool).enrol(
            business.business_id, "+380991230101", AccessType.FULL
        )
        await Provisioning(pool).adjust_pocket(business.business_id, customer_id, 0, 100_000)
        sale = sale_with_every_kind_of_pocket()
        await transaction_before_0013(
            pool, business, "S-1", customer_id, "completed", legacy_document(sale)
        )
        credit = {"operation": operation_document(PointsCredit(300))}
        await transaction_before_0013(pool, business, "OP-1", customer_id, "completed", credit)
        await transaction_before_0013(pool, business, "R-1", None, "rejected", {})
        calculation = Calculation(sale.receipt, None, sale.coupon_codes, sale.certificate_codes)
        answered = receipt_to_proto(calculation).SerializeToString()  # what terminals were told

        await database.migrate(empty_database_url)  # without the codec: documents stay
        store = TransactionStore(pool)
        record = await store.by_check_number(
            business.business_id, business.cash_desk.terminal_id, "S-1"
        )
        assert record is not None and isinstance(record.receipt, dict)
        assert decode(record.receipt) == sale
        assert transaction_to_proto(record).receipt.SerializeToString() == answered
        operation = await store.by_check_number(
            business.business_id, business.cash_desk.terminal_id, "OP-1"
        )
        assert operation is not None and operation.receipt is None
        assert operation.operation == PointsCredit(300)
        refused = await store.by_check_number(
            business.business_id, business.cash_desk.terminal_id, "R-1"
        )
        assert refused is not None and refused.receipt is None and refused.refusal is not None
        terminal = await TerminalStore(pool).by_id(
            business.business_id, business.cash_desk.terminal_id
        )
        assert terminal is not None
        refunds = Refunds(
            RefundStore(pool), store, Programs(ProgramStore(pool)), UnitOfWork(), StoredReceipts()
        )
        half, _ = await refunds.refund(terminal, record.transaction_id, "RF-1", [(1, 1_000)], b"1")

        connection = await asyncpg.connect(empty_database_url)
        try:
            assert await receipts.convert_documents(connection, encode, rows_per_chunk=1) == 1
            assert await receipts.convert_documents(connection, encode) == 0
        finally:
            await connection.close()
        converted = await store.by_id(business.business_id, record.transaction_id)
        assert converted is not None and isinstance(converted.receipt, bytes)
        assert decode(converted.receipt) == sale
        assert transaction_to_proto(converted).receipt.SerializeToString() == answered
        rest, after = await refunds.refund(terminal, record.transaction_id, "RF-2", [], b"2")
        assert after.status is TransactionStatus.REFUNDED
        assert half.refunded_minor_units + rest.refunded_minor_units == sale.receipt.to_pay
        assert half.points_returned + rest.points_returned == sale.receipt.points_redeemed
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM transactions WHERE receipt_document IS NOT NULL"
            )
            == 0
        )
    finally:
        await pool.close()


async def test_a_migration_numbered_below_one_applied_is_still_applied(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Branches land in any order: a database may have 0014 before 0013 exists.
    await database.migrate(empty_database_url)
    files = database.migration_files()
    landed_later = ("0013_landed_later", "CREATE TABLE landed_later (landed boolean)")
    monkeypatch.setattr(database, "migration_files", lambda: sorted([*files, landed_later]))
    assert await database.migrate(empty_database_url) == ["0013_landed_later"]
    assert await database.migrate(empty_database_url) == []


async def test_migration_0021_adds_up_the_sales_before_it_by_customer_and_point_of_sale(
    empty_database_url: str,
) -> None:
    await database.migrate(empty_database_url, through=20)
    pool = await database.create_pool(empty_database_url, 1, 4, 10_000, 10.0)
    try:
        business = await make_business(pool)
        provisioning = Provisioning(pool)
        other_shop = await provisioning.point_of_sale(
            business.business_id, business.program_id, "Other shop", "UTC"
        )
        other_till = await make_terminal(
            provisioning, business.business_id, other_shop, TerminalKind.CASH_DESK
        )
        customer_id, _ = await CustomerStore(pool).enrol(
            business.business_id, "+380991230201", AccessType.FULL
        )
        first, second = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 2, 7, tzinfo=UTC)
        insert = (
            "INSERT INTO transactions (business_id, terminal_id, point_of_sale_id,"
            " check_number, request_digest, customer_id, status, sum_minor_units, created_at,"
            " finished_at, sale_time, operation)"
            " VALUES ($1, $2, $3, $4, '\\x00', $5, $6, $7, $8, $8, $9, $10)"
        )
        shop, till = business.point_of_sale_id, business.cash_desk.terminal_id
        for values in (
            (till, shop, "A", "completed", 1_000, first, None, None),
            (till, shop, "B", "refunded", 3_001, second, None, None),
            # Offline: its sale time is when it was made.
            (till, shop, "C", "partially_refunded", 500, second, first, None),
            # Recorded before transactions named their point of sale: its terminal's.
            (other_till.terminal_id, 0, "D", "completed", 700, second, None, None),
            (till, shop, "E", "rejected", 9_000, second, None, None),
            (till, shop, "F", "cancelled", 9_000, second, None, None),
            (till, shop, "G", "completed", 0, second, None, '{"kind": "points_credit"}'),
        ):
            terminal, point_of_sale, number, status, total, at, sold, operation = values
            await pool.execute(
                insert, business.business_id, terminal, point_of_sale, number, customer_id,
                status, total, at, sold, operation,
            )  # fmt: skip

        assert await database.migrate(empty_database_url) == ["0021_customer_list_at_scale"]

        rows = await pool.fetch(
            "SELECT point_of_sale_id, sales_count, sales_sum_minor_units,"
            " average_check_minor_units, first_visit_at, last_visit_at"
            " FROM point_of_sale_statistics WHERE business_id = $1 AND customer_id = $2"
            " ORDER BY point_of_sale_id",
            business.business_id,
            customer_id,
        )
        assert [tuple(row) for row in rows] == [
            (shop, 3, 4_501, 1_500, first, second),
            (other_shop, 1, 700, 700, second, second),
        ]
    finally:
        await pool.close()
