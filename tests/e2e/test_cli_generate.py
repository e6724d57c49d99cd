"""`purse generate` against a running server, as a user runs it: the demo business with
its members and their history, credentials saved, the customer list and the audit
agreeing with what was written."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import grpc
from support import bearer, run_purse, side_server
from test_cli_first_hour import cli_environment

from purse.admin.v1 import admin_service_pb2 as admin
from purse.admin.v1 import customers_pb2 as customers
from purse.admin.v1.admin_service_pb2_grpc import AdminServiceStub
from purse.config import Settings

members = 3000


async def test_generate_writes_members_with_history_the_list_and_the_audit_agree_with(
    infrastructure: Settings, tmp_path: Path
) -> None:
    server = side_server(infrastructure.database_url, infrastructure.redis_url, tmp_path)
    await asyncio.to_thread(server.start)
    environment = cli_environment(tmp_path, infrastructure)
    try:
        finished = await asyncio.to_thread(
            run_purse, environment, "generate", "--members", str(members), "--seed", "5"
        )
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert f"Generated {members:,} members with" in finished.stdout
        saved = json.loads((tmp_path / "generated-business.json").read_text())
        assert (tmp_path / "generated-business.json").stat().st_mode & 0o777 == 0o600
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = AdminServiceStub(channel)
            owner = bearer(saved["administrator_api_key"])
            counted = await stub.CountCustomers(admin.CountCustomersRequest(), metadata=owner)
            # The demo's own customer, and the generated ones.
            assert counted.count == members + 1
            page = await stub.ListCustomers(
                admin.ListCustomersRequest(
                    page_size=5,
                    sort=customers.CustomerSort(
                        column=customers.CUSTOMER_COLUMN_SALES_COUNT,
                        direction=customers.SORT_DIRECTION_DESCENDING,
                    ),
                ),
                metadata=owner,
            )
        busiest = page.rows[0]
        connection = await asyncpg.connect(infrastructure.database_url)
        try:
            sales = await connection.fetchrow(
                "SELECT count(*), sum(sum_minor_units) FROM transactions"
                " WHERE business_id = $1 AND customer_id = $2 AND operation IS NULL",
                saved["business_id"],
                busiest.customer_id,
            )
        finally:
            await connection.close()
        assert sales is not None
        assert (busiest.sales_count, busiest.sales_sum_minor_units) == (sales[0], sales[1])
        assert busiest.sales_count > 20
        audited = await asyncio.to_thread(
            run_purse, environment, "audit", "--business-id", str(saved["business_id"])
        )
        assert audited.returncode == 0, audited.stdout
        assert "0 discrepancies, 0 orphaned rows" in audited.stdout
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()
