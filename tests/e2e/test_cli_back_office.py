"""The back office from the command line, as an operator and an owner use it: an operator
key, a business with its owner, sign-in, then any control panel call by name."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from support import run_purse, side_server
from test_cli_first_hour import cli_environment

from purse.config import Settings


def _environment(data_dir: Path, infrastructure: Settings) -> dict[str, str]:
    return {
        **cli_environment(data_dir, infrastructure),
        "PURSE_OWNER_PASSWORD": "owner's long password",
        "PURSE_ADMIN_PASSWORD": "owner's long password",
    }


async def test_an_owner_founded_on_the_command_line_signs_in_and_sets_up_by_name(
    infrastructure: Settings, tmp_path: Path
) -> None:
    server = side_server(infrastructure.database_url, infrastructure.redis_url, tmp_path)
    await asyncio.to_thread(server.start)
    environment = _environment(tmp_path, infrastructure)

    async def purse(*arguments: str, status: int = 0) -> str:
        finished = await asyncio.to_thread(run_purse, environment, *arguments)
        assert finished.returncode == status, finished.stdout + finished.stderr
        return finished.stdout + finished.stderr

    try:
        assert (await purse("operator-key", "create")).startswith("purse_key_")
        login = f"cli-owner-{os.getpid()}"
        founded = json.loads(
            await purse(
                "business", "create", "--name", "CLI Coffee", "--currency", "UAH",
                "--language", "uk", "--language", "en", "--time-zone", "Europe/Kyiv",
                "--owner-login", login, "--json",
            )
        )  # fmt: skip
        assert founded["owner_api_key"].startswith("purse_key_")
        signed_in = await purse("admin", "sign-in", "--login", login)
        assert f"business {founded['business_id']}" in signed_in
        token = tmp_path / "admin-token"
        assert token.stat().st_mode & 0o077 == 0
        business = await purse("admin", "get-business")
        assert "currency: UAH" in business and "time zone: Europe/Kyiv" in business
        created = json.loads(
            await purse(
                "admin", "create-customer-category", "--json",
                "--set", "category.name=Gold", "--set", 'category.title={"en": "Gold"}',
            )
        )  # fmt: skip
        assert created["category"]["name"] == "Gold"
        listed = await purse("admin", "list-customer-categories")
        assert "name: Gold" in listed and "name: New customers" in listed
        exported = await purse(
            "admin", "export-customers", "--set", "sort.direction=SORT_DIRECTION_DESCENDING"
        )
        assert exported.startswith("\ufeffcustomer_id,phone,given_name,")
        assert exported.count("\n") == 1  # a business without customers: the header
        refused = await purse(
            "admin", "create-customer-category", '{"category": {"name": ""}}', status=1
        )
        assert "INVALID_ARGUMENT" in refused and "category.name" in refused
        category_id = created["category"]["categoryId"]
        dry_run = json.loads(
            await purse(
                "admin", "dry-run-bulk-action", "--json",
                "--set", f'action={{"change_category": {{"category_id": {category_id}}}}}',
            )
        )  # fmt: skip
        operation_id = dry_run["operation"]["operationId"]
        assert dry_run["operation"]["state"] == "OPERATION_STATE_DRAFT"
        await purse(
            "admin", "start-bulk-action",
            "--set", f"operation_id={operation_id}", "--set", f"token={dry_run['token']}",
        )  # fmt: skip
        watched = await purse("admin", "watch-operation", operation_id)
        assert f"operation {operation_id}: succeeded" in watched
        assert "state: succeeded" in watched
        # The README's saved segment, then the list counted by it.
        segment = json.loads(
            await purse(
                "admin", "create-saved-segment", json.dumps({"segment": {
                    "name": "Away regulars", "filter": {"all": [
                        {"condition": {"column": "CUSTOMER_COLUMN_SALES_COUNT",
                         "operator": "FILTER_OPERATOR_MORE_THAN", "value": {"integer": 5}}},
                        {"condition": {"column": "CUSTOMER_COLUMN_LAST_VISIT",
                         "operator": "FILTER_OPERATOR_LESS_THAN",
                         "value": {"seconds_from_now": -2592000}}},
                    ]},
                }}), "--json",
            )
        )  # fmt: skip
        segment_id = int(segment["segment"]["segmentId"])
        # No customer yet: a count of 0, which the answer leaves out as proto3 does.
        counted = await purse("admin", "count-customers", "--set", f"segment_id={segment_id}")
        missing = await purse(
            "admin", "count-customers", "--set", f"segment_id={segment_id + 1}", status=1
        )
        assert counted.strip() == "done" and "SEGMENT_NOT_FOUND" in missing
        await purse("admin", "sign-out")
        assert not token.exists()
        anonymous = await purse("admin", "get-business", status=1)
        assert "no administrator credentials" in anonymous
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()
