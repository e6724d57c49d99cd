"""The README's quick tour, run as a newcomer runs it: `purse demo` twice, then
`purse terminal` with the saved credentials, answers printed in their units or as JSON."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from support import run_purse, side_server

from purse.config import Settings

demo_phone = "+380501234567"


def cli_environment(data_dir: Path, infrastructure: Settings) -> dict[str, str]:
    """What a newcomer's shell holds: no PURSE_* of ours but the data and the servers."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PURSE_")}
    return {
        **clean,
        "PURSE_DATA_DIR": str(data_dir),
        "PURSE_DATABASE_URL": infrastructure.database_url,
        "PURSE_REDIS_URL": infrastructure.redis_url,
    }


async def test_the_quick_tour_prints_amounts_in_their_units_and_json_on_request(
    infrastructure: Settings, tmp_path: Path
) -> None:
    server = side_server(infrastructure.database_url, infrastructure.redis_url, tmp_path)
    await asyncio.to_thread(server.start)
    environment = cli_environment(tmp_path, infrastructure)

    async def purse(*arguments: str) -> str:
        finished = await asyncio.to_thread(run_purse, environment, *arguments)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        return finished.stdout

    try:
        created = await purse("demo")
        assert "Created the demo business" in created
        saved = json.loads((tmp_path / "demo-terminal.json").read_text())
        again = await purse("demo")
        assert "already exists; nothing created" in again
        assert json.loads((tmp_path / "demo-terminal.json").read_text()) == saved
        assert saved["coupon_code"] in again

        identified = await purse("terminal", "identify", "--phone", demo_phone)
        assert "balance: 250.00\n" in identified
        assert "kind: points" in identified
        raw = json.loads(await purse("terminal", "identify", "--json", "--phone", demo_phone))
        assert raw["pockets"][0]["balance"] == "25000"

        receipt = await purse(
            "terminal", "calculate", "--phone", demo_phone, "--line", "CAPPUCCINO:65.00:2",
            "--line", "ESPRESSO:45.00", "--points", "50", "--coupon", saved["coupon_code"],
        )  # fmt: skip
        assert "sum: 175.00 UAH" in receipt
        assert "points redeemed: 50.00" in receipt
        assert await purse("terminal", "search", "--phone-prefix", "0501")

        code_answer = await purse("terminal", "--steward", "steward-code", "--phone", demo_phone)
        code = next(
            line.split(": ")[1] for line in code_answer.splitlines() if line.startswith("code: ")
        )
        by_code = await purse("terminal", "identify", "--steward-code", code)
        assert f"phone: {demo_phone}" in by_code
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()


def test_terminal_help_documents_every_action_and_option() -> None:
    finished = run_purse(dict(os.environ), "terminal", "--help")
    for action in ("identify", "calculate", "process", "confirm", "refund", "search"):
        assert action in finished.stdout
    assert "--json" in finished.stdout
    confirm = run_purse(dict(os.environ), "terminal", "confirm", "--help").stdout
    assert "Your Purse code" in " ".join(confirm.split())
