"""The TypeScript client generated from protos/ works against a real server, over HTTP/JSON
and over gRPC: clients/typescript is installed from npm (`npm ci`), generated and built
(`npm run build`), and its till-day script identifies, calculates, processes a check (and
its retry), cancels one, refunds a line, and reads a refusal's reason and field on each
transport, and streams an offline day over gRPC."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support import ServerProcess, Tenant, bearer, new_phone

from purse.v1 import terminal_service_pb2 as pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

client_directory = Path(__file__).resolve().parents[2] / "clients" / "typescript"
install_seconds_max = 300.0
script_seconds_max = 60.0


def _run(*command: str, timeout: float, environment: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command,
        cwd=client_directory,
        env={**os.environ, **(environment or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def built_client() -> Path:
    """clients/typescript installed from its lock file, generated and compiled."""
    npm = shutil.which("npm")
    assert npm is not None, "Node.js and npm are needed: apt-get install -y nodejs npm"
    lock = client_directory / "package-lock.json"
    installed = client_directory / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        _run(npm, "ci", "--no-audit", "--no-fund", timeout=install_seconds_max)
    _run(npm, "run", "build", timeout=install_seconds_max)
    return client_directory / "dist" / "till_day.js"


async def test_the_typescript_client_does_a_till_day_over_http_json_and_grpc(
    built_client: Path,
    server: ServerProcess,
    business: Tenant,
    terminal_stub: TerminalServiceAsyncStub,
) -> None:
    phone = new_phone()
    node = shutil.which("node")
    assert node is not None
    output = await asyncio.to_thread(
        _run,
        node,
        str(built_client),
        timeout=script_seconds_max,
        environment={
            "PURSE_HTTP_URL": f"http://127.0.0.1:{server.http_port}",
            "PURSE_GRPC_URL": f"http://127.0.0.1:{server.grpc_port}",
            "PURSE_TERMINAL_KEY": business.cash_desk.api_key,
            "PURSE_PHONE": phone,
        },
    )
    steps: dict[tuple[str, str], dict[str, Any]] = {
        (line["transport"], line["step"]): line for line in map(json.loads, output.splitlines())
    }
    for transport in ("http-json", "grpc"):
        assert steps[transport, "identify"]["phone"] == phone
        assert steps[transport, "calculate"]["sumMinorUnits"] == "18000"
        processed = steps[transport, "process"]
        assert processed["status"] == "COMPLETED"
        assert processed["retryTransactionId"] == processed["transactionId"]
        found = await terminal_stub.GetTransaction(
            pb.GetTransactionRequest(check_number=processed["checkNumber"]),
            metadata=bearer(business.cash_desk.api_key),
            timeout=10,
        )
        assert str(found.transaction.transaction_id) == processed["transactionId"]
        assert steps[transport, "cancel"]["status"] == "CANCELLED"
        assert steps[transport, "refund"]["status"] == "PARTIALLY_REFUNDED"
        refusal = steps[transport, "refusal"]
        assert (refusal["reason"], refusal["fields"]) == ("PHONE_INVALID", ["identifier.phone"])
    assert steps["grpc", "stream"]["results"] == ["processed"] * 3
    assert steps["http-json", "identify"]["customerId"] == steps["grpc", "identify"]["customerId"]
