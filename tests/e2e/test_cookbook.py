"""docs/cookbook.md, run as an integrator runs it: `purse demo`, then every `sh` block of
the cookbook in order in one shell, with curl, against a real server. The one line a
person fills in by reading the server's console (the PIN of the SMS) reads it from the
server's log instead; nothing else is changed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path

from support import run_purse, side_server

from purse.config import Settings

cookbook = Path(__file__).resolve().parents[2] / "docs" / "cookbook.md"
pin_line = "PIN=123456   # the six digits from the SMS line make serve printed"
pin_from_log = (
    "for attempt in 1 2 3 4 5 6 7 8 9 10; do "
    "PIN=$(grep -o 'Your Purse code: [0-9]*' \"$SERVER_LOG\" | tail -1"
    " | grep -o '[0-9]*$' || true); "
    '[ -n "$PIN" ] && break; sleep 0.5; done'
)
script_seconds_max = 120.0


def cookbook_script() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", cookbook.read_text(), re.S)
    script = "set -euo pipefail\n" + "\n".join(blocks)
    assert pin_line in script
    return script.replace(pin_line, pin_from_log)


async def test_the_cookbook_takes_a_till_through_its_day_with_curl_alone(
    infrastructure: Settings, tmp_path: Path
) -> None:
    server = side_server(
        infrastructure.database_url,
        infrastructure.redis_url,
        tmp_path,
        NOTIFY_ENABLED="true",
        NOTIFY_PROVIDER="console",
    )
    await asyncio.to_thread(server.start)
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PURSE_")},
        "PURSE_DATA_DIR": str(tmp_path),
        "PURSE_DATABASE_URL": infrastructure.database_url,
        "PURSE_REDIS_URL": infrastructure.redis_url,
        "PURSE_GRPC_PORT": str(server.grpc_port),
        "PURSE_HTTP_PORT": str(server.http_port),
        "SERVER_LOG": str(server.log_path),
    }
    try:
        demo = await asyncio.to_thread(run_purse, environment, "demo")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", cookbook_script()],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=script_seconds_max,
            check=False,
        )
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    statuses = [answer["transaction"]["status"] for answer in answers if "transaction" in answer]
    assert "TRANSACTION_STATUS_PENDING" in statuses
    assert statuses.count("TRANSACTION_STATUS_COMPLETED") >= 2  # confirmed, and read again
    assert "TRANSACTION_STATUS_CANCELLED" in statuses
    assert any("refund" in answer for answer in answers)
    refused = [answer for answer in answers if answer.get("code") == "invalid_argument"]
    assert refused and "identifier.phone" in json.dumps(refused[0])
    streamed = [answer for answer in answers if "results" in answer]
    assert len(streamed) == 3
    assert all("processed" in answer["results"][0] for answer in streamed)
