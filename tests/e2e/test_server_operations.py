"""The server as operators and new users meet it: health, reflection, metrics, SIGTERM,
restarts on the embedded default, and the README's demo commands."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from admin_support import enrol
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from support import (
    ServerProcess,
    Tenant,
    bearer,
    new_phone,
    run_purse,
    side_server,
    stop_embedded_servers,
)

from purse.config import Settings
from purse.store.embedded import free_port
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub


async def test_health_reports_serving_for_the_server_and_the_terminal_service(
    channel: grpc.aio.Channel,
) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "purse.v1.TerminalService", "purse.Process"):
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_purse_health_exits_0_for_a_serving_server_found_as_its_settings_say(
    server: ServerProcess,
) -> None:
    # As the image's HEALTHCHECK runs it: the server listens on every interface.
    environment = {
        **os.environ,
        "PURSE_GRPC_HOST": "0.0.0.0",
        "PURSE_GRPC_PORT": str(server.grpc_port),
    }
    answered = run_purse(environment, "health")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip() == f"127.0.0.1:{server.grpc_port}: SERVING"
    for_the_service = run_purse(
        environment, "health", "--target", server.target, "--service", "purse.v1.TerminalService"
    )
    assert for_the_service.returncode == 0, for_the_service.stderr


def test_purse_health_exits_1_when_no_server_answers() -> None:
    target = f"127.0.0.1:{free_port()}"
    answered = run_purse(dict(os.environ), "health", "--target", target, "--timeout-seconds", "1")
    assert answered.returncode == 1
    assert answered.stderr.strip() == f"{target}: UNAVAILABLE"


def test_purse_health_exits_1_for_a_service_the_server_does_not_serve(
    server: ServerProcess,
) -> None:
    answered = run_purse(
        dict(os.environ), "health", "--target", server.target, "--service", "no.such.Service"
    )
    assert answered.returncode == 1
    assert "NOT_FOUND" in answered.stderr


async def test_reflection_lists_the_terminal_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def one_request() -> object:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for answer in stub.ServerReflectionInfo(one_request()):
        names = {service.name for service in answer.list_services_response.service}
        assert "purse.v1.TerminalService" in names
        break


async def test_reflection_answers_the_contract_with_its_doc_comments(
    channel: grpc.aio.Channel,
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def one_request() -> object:
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="purse.v1.TerminalService"
        )

    comments: list[str] = []
    async for answer in stub.ServerReflectionInfo(one_request()):
        for serialized in answer.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
            comments.extend(
                location.leading_comments for location in file.source_code_info.location
            )
        break
    assert any("thousandths of a unit" in comment for comment in comments)


async def test_metrics_count_calls_by_method_and_status_code(
    server: ServerProcess, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    await terminal_stub.GetTerminalSettings(
        pb.GetTerminalSettingsRequest(), metadata=bearer(business.cash_desk.api_key)
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await terminal_stub.GetTerminalSettings(pb.GetTerminalSettingsRequest())
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    method = "/purse.v1.TerminalService/GetTerminalSettings"
    assert f'purse_grpc_calls_total{{code="OK",method="{method}"}}' in text
    assert f'purse_grpc_calls_total{{code="UNAUTHENTICATED",method="{method}"}}' in text
    assert f'purse_grpc_call_seconds_count{{method="{method}"}}' in text


async def invalid_arguments_counted(server: ServerProcess) -> dict[str, float]:
    """purse_errors_total of INVALID_ARGUMENT, by method name, as /metrics shows it now."""
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    return {
        sample.labels["method"].rsplit("/", 1)[-1]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "purse_errors_total"
        and sample.labels["code"] == "INVALID_ARGUMENT"
        and sample.labels["reason"] == "INVALID_ARGUMENT"
    }


async def test_metrics_count_errors_by_reason_and_each_check_a_stream_refuses(
    server: ServerProcess, terminal_stub: TerminalServiceAsyncStub, business: Tenant
) -> None:
    before = await invalid_arguments_counted(server)
    till = bearer(business.cash_desk.api_key)
    refused = pb.ProcessCheckRequest(check_number="")
    with pytest.raises(grpc.aio.AioRpcError):
        await terminal_stub.ProcessCheck(refused, metadata=till)
    stream = terminal_stub.ProcessChecks(metadata=till, timeout=30)
    await stream.write(pb.ProcessChecksRequest(checks=[refused, refused]))
    answer = await stream.read()
    assert isinstance(answer, pb.ProcessChecksResponse)
    assert [result.error.reason for result in answer.results] == ["INVALID_ARGUMENT"] * 2
    await stream.done_writing()
    assert await stream.read() == grpc.aio.EOF
    after = await invalid_arguments_counted(server)
    # Other tests against the same server may refuse checks too: at least these.
    assert after["ProcessCheck"] - before.get("ProcessCheck", 0) >= 1
    assert after["ProcessChecks"] - before.get("ProcessChecks", 0) >= 2


def test_the_server_refuses_the_slow_pure_python_protobuf(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python",
        "PURSE_DATA_DIR": str(tmp_path),
    }
    finished = run_purse(environment, "serve")
    assert finished.returncode != 0
    assert "slow 'python' backend" in finished.stderr
    assert not (tmp_path / "postgres").exists()


async def _wait_for_lock_waiter(pool: asyncpg.Pool) -> None:
    for _ in range(200):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'purse' AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the server's call never reached the database lock")


async def test_sigterm_lets_the_call_in_flight_finish(
    infrastructure: Settings, pool: asyncpg.Pool, business: Tenant, tmp_path: Path
) -> None:
    server = ServerProcess(
        {
            "PURSE_DATABASE_URL": infrastructure.database_url,
            "PURSE_REDIS_URL": infrastructure.redis_url,
        },
        tmp_path,
    ).start()
    phone = new_phone()
    blocker: asyncpg.Connection = await asyncpg.connect(infrastructure.database_url)
    try:
        # An uncommitted customer row with the same phone makes the server's enrolment wait.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("INSERT INTO customers (phone) VALUES ($1)", phone)
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = asyncio.ensure_future(
                TerminalServiceStub(channel).IdentifyCustomer(
                    pb.IdentifyCustomerRequest(
                        identifier=common_pb2.CustomerIdentifier(phone=phone)
                    ),
                    metadata=bearer(business.cash_desk.api_key),
                    timeout=20,
                )
            )
            await _wait_for_lock_waiter(pool)
            assert server.process is not None
            server.process.terminate()
            await asyncio.sleep(0.5)
            assert server.process.poll() is None, "the server quit with a call in flight"
            await transaction.commit()
            answer = await call
        assert answer.membership.phone == phone
        assert answer.membership.newly_enrolled
        assert await asyncio.to_thread(server.stop) == 0, server.log()
    finally:
        await blocker.close()
        server.kill()


def _purse(data_dir: Path, grpc_port: int, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PURSE_DATABASE_URL", "PURSE_REDIS_URL")
    }
    environment.update(PURSE_DATA_DIR=str(data_dir), PURSE_GRPC_PORT=str(grpc_port))
    finished = run_purse(environment, *arguments)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished


def test_the_embedded_default_keeps_data_across_restarts_and_crashes(tmp_path: Path) -> None:
    embedded = {"PURSE_DATABASE_URL": "", "PURSE_REDIS_URL": ""}
    server = ServerProcess(embedded, tmp_path).start()
    try:
        demo = _purse(tmp_path, server.grpc_port, "demo")
        assert "Created the demo business" in demo.stdout
        first = json.loads(
            _purse(
                tmp_path,
                server.grpc_port,
                "terminal",
                "identify",
                "--json",
                "--phone",
                "0501234567",
            ).stdout
        )
        assert first["pockets"][0]["balance"] == "25000"
        assert server.stop() == 0, server.log()
        assert not (tmp_path / "postgres" / "postmaster.pid").exists(), "postgres left running"

        server = ServerProcess(embedded, tmp_path).start()
        server.kill()  # a crash leaves PostgreSQL and Redis running; the next start finds them
        server = ServerProcess(embedded, tmp_path).start()
        again = json.loads(
            _purse(
                tmp_path, server.grpc_port, "terminal", "identify", "--json", "--card", "DEMO0001"
            ).stdout
        )
        assert again["customerId"] == first["customerId"]
        assert again["pockets"] == first["pockets"]
        assert server.stop() == 0, server.log()
    finally:
        server.kill()
        stop_embedded_servers(tmp_path)


def test_purse_migrate_reports_a_current_schema(infrastructure: Settings, tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "PURSE_DATABASE_URL": infrastructure.database_url,
        "PURSE_REDIS_URL": infrastructure.redis_url,
        "PURSE_DATA_DIR": str(tmp_path),
    }
    finished = run_purse(environment, "migrate")
    assert finished.returncode == 0, finished.stderr
    assert "the schema is current" in finished.stdout


@pytest.mark.ledger_set_by_hand
async def test_purse_audit_finds_a_pocket_that_disagrees_with_its_ledger(
    infrastructure: Settings,
    channel: grpc.aio.Channel,
    pool: asyncpg.Pool,
    business: Tenant,
    tmp_path: Path,
) -> None:
    customer_id = (await enrol(channel, business)).customer_id
    environment = {
        **os.environ,
        "PURSE_DATABASE_URL": infrastructure.database_url,
        "PURSE_REDIS_URL": infrastructure.redis_url,
        "PURSE_DATA_DIR": str(tmp_path),
    }
    audit = ("audit", "--business-id", str(business.business_id))
    clean = await asyncio.to_thread(run_purse, environment, *audit)
    assert clean.returncode == 0, clean.stdout
    assert "0 discrepancies" in clean.stdout
    # A pocket that disagrees with its ledger: no API call can make one, so by hand.
    await pool.execute(
        "UPDATE pockets SET balance = balance + 1 WHERE business_id = $1 AND customer_id = $2",
        business.business_id,
        customer_id,
    )
    broken = await asyncio.to_thread(run_purse, environment, *audit)
    assert broken.returncode == 1
    assert f"customer {customer_id}" in broken.stdout
    assert "1 discrepancies" in broken.stdout


async def test_purse_audit_finds_a_ledger_entry_of_a_pocket_that_does_not_exist(
    infrastructure: Settings, pool: asyncpg.Pool, business: Tenant, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "PURSE_DATABASE_URL": infrastructure.database_url,
        "PURSE_REDIS_URL": infrastructure.redis_url,
        "PURSE_DATA_DIR": str(tmp_path),
    }
    audit = ("audit", "--business-id", str(business.business_id))
    # No foreign key refuses it (none on the rows a sale writes), so the audit must.
    entry_id = await pool.fetchval(
        "INSERT INTO ledger_entries (business_id, pocket_id, kind, amount)"
        " VALUES ($1, -1, 'adjust', 0) RETURNING entry_id",
        business.business_id,
    )
    try:
        broken = await asyncio.to_thread(run_purse, environment, *audit)
    finally:
        await pool.execute(
            "DELETE FROM ledger_entries WHERE business_id = $1 AND entry_id = $2",
            business.business_id,
            entry_id,
        )
    assert broken.returncode == 1, broken.stdout
    assert f"first entry {entry_id}" in broken.stdout
    assert "[ledger_entry_of_unknown_pocket]" in broken.stdout
    assert "0 discrepancies, 1 orphaned rows" in broken.stdout
    clean = await asyncio.to_thread(run_purse, environment, *audit)
    assert clean.returncode == 0, clean.stdout


async def test_several_workers_share_the_port_and_stop_together(
    infrastructure: Settings, business: Tenant, tmp_path: Path
) -> None:
    server = side_server(
        infrastructure.database_url,
        infrastructure.redis_url,
        tmp_path,
        WORKERS="2",
    ).start()
    try:
        assert server.process is not None
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        workers = (await asyncio.to_thread(children.read_text)).split()
        assert len(workers) == 2
        answered = 0
        for _ in range(8):  # a channel per connection: the kernel spreads them
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = TerminalServiceStub(channel)
                for _ in range(5):
                    await stub.IdentifyCustomer(
                        pb.IdentifyCustomerRequest(
                            identifier=common_pb2.CustomerIdentifier(phone=new_phone())
                        ),
                        metadata=bearer(business.cash_desk.api_key),
                    )
                    answered += 1
        # The HTTP port is shared the same way: each request on a connection of its own.
        for _ in range(8):
            body = json.dumps({"identifier": {"phone": new_phone()}}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.http_port}/purse.v1.TerminalService/IdentifyCustomer",
                data=body,
                headers={
                    "content-type": "application/json",
                    "authorization": f"Bearer {business.cash_desk.api_key}",
                    "connection": "close",
                },
            )
            opened = await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
            assert json.loads(opened.read())["membership"]["customerId"]
            answered += 1
        url = f"http://127.0.0.1:{server.http_port}/metrics"
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode()
        )
        method = "/purse.v1.TerminalService/IdentifyCustomer"
        line = next(
            row for row in text.splitlines()
            if row.startswith("purse_grpc_calls_total") and method in row and 'code="OK"' in row
        )  # fmt: skip
        assert float(line.split()[-1]) == answered
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()
    assert not any([await asyncio.to_thread(Path(f"/proc/{pid}").exists) for pid in workers])
