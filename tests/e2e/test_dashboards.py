"""The Grafana dashboard and the Prometheus alert rules in deploy/ read only metrics the
server exposes, by the labels it gives them.

Every PromQL expression of both files is parsed (promql-parser: Prometheus's grammar, so
an expression Prometheus would refuse fails here too), and each series it selects is
looked for among the samples of a real server's /metrics, after calls that make every
series appear. Samples are named as Prometheus stores them (a histogram's `_bucket`,
`_sum` and `_count`, a counter's `_total`), so an expression that names a histogram
bare, or a counter without `_total`, is caught. `promtool check rules` also runs when
promtool is installed (`make prom-tools` takes it from Debian's `prometheus` package into
.venv/bin; `make test` does so first).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import promql_parser
import pytest
import yaml
from admin_support import customer_with_points, set_program
from prometheus_client.parser import text_string_to_metric_families
from support import ServerProcess, bearer, make_business_through_api, side_server
from test_transactions import sale

from purse.config import Settings
from purse.v1 import common_pb2
from purse.v1 import terminal_service_pb2 as pb
from purse.v1.terminal_service_pb2_grpc import TerminalServiceStub

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

deploy = Path(__file__).parents[2] / "deploy"
dashboard_path = deploy / "grafana" / "purse.json"
alerts_path = deploy / "prometheus" / "alerts.yaml"
# Grafana's own variables, as a panel's query gets them.
grafana_durations = ("$__rate_interval", "$__interval", "$__range")
# Series Prometheus makes itself, and labels it adds to every scraped series.
prometheus_series = {"up"}
prometheus_labels = {"job", "instance"}
# How long the notification dispatcher may take to send the sale's notice.
delivery_seconds_max = 30.0


def dashboard_expressions() -> list[str]:
    """Every `expr` of the dashboard's panels (rows and their panels included)."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    found.append(value)
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(json.loads(dashboard_path.read_text()))
    return found


def dashboard_variable_metrics() -> list[str]:
    """The metrics the dashboard's variables take their values from (label_values)."""
    variables = json.loads(dashboard_path.read_text())["templating"]["list"]
    return [
        match
        for variable in variables
        for match in re.findall(r"label_values\((\w+)", variable.get("definition", ""))
    ]


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(alerts_path.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def selectors(expression: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) of every series the expression selects."""
    for variable in grafana_durations:
        expression = expression.replace(variable, "5m")
    found: list[tuple[str, set[str]]] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expression}"
            found.append((node.name, {matcher.name for matcher in node.matchers.matchers}))

    promql_parser.walk(promql_parser.parse(expression), visit)
    return found


def test_the_dashboard_and_the_rules_have_expressions_for_what_the_issue_names() -> None:
    names = {
        name
        for expression in dashboard_expressions() + alert_expressions()
        for name, _ in selectors(expression)
    }
    assert {
        "purse_grpc_calls_total",
        "purse_grpc_call_seconds_bucket",
        "purse_batch_operations_bucket",
        "purse_batch_queue_operations",
        "purse_outbox_pending_messages",
        "purse_balance_cache_lookups_total",
        "purse_pending_holds",
        "purse_errors_total",
    } <= names


def scrape(server: ServerProcess) -> dict[str, set[str]]:
    """Label names by sample name, of every sample the server's /metrics shows."""
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


async def calls_that_make_every_series(server: ServerProcess, pool: asyncpg.Pool) -> None:
    """A sale held for a PIN (calls, a batch, a pending hold, the PIN through the outbox),
    two identifications (the cache's miss, then its hit) and a refused call (an error by
    reason)."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        business = await make_business_through_api(channel, pool)
        await set_program(channel, business, points_redemption_limit_without_pin=0)
        phone = await customer_with_points(channel, business, 10_000)
        stub: TerminalServiceAsyncStub = TerminalServiceStub(channel)
        till = bearer(business.cash_desk.api_key)
        held = await stub.ProcessCheck(sale("dashboard-1", phone, redeem=1_000), metadata=till)
        assert held.transaction.status == pb.TRANSACTION_STATUS_PENDING
        identify = pb.IdentifyCustomerRequest(identifier=common_pb2.CustomerIdentifier(phone=phone))
        for _ in range(2):
            await stub.IdentifyCustomer(identify, metadata=till)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ProcessCheck(sale(""), metadata=till)


def scrape_once_delivered(server: ServerProcess) -> dict[str, set[str]]:
    """The scrape once the dispatcher has sent the PIN (it polls the outbox)."""
    deadline = time.monotonic() + delivery_seconds_max
    while True:
        samples = scrape(server)
        if "purse_notify_messages_total" in samples or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(
    infrastructure: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # The dispatcher on (its counters are series too), delivering to the console.
    server = side_server(
        infrastructure.database_url,
        infrastructure.redis_url,
        tmp_path_factory.mktemp("dashboards"),
        NOTIFY_ENABLED="true",
        METRICS_SAMPLE_SECONDS="0.2",
    ).start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
async def exposed(served: ServerProcess, pool: asyncpg.Pool) -> AsyncIterator[dict[str, set[str]]]:
    await calls_that_make_every_series(served, pool)
    yield await asyncio.to_thread(scrape_once_delivered, served)


@pytest.mark.parametrize(
    "source", ["dashboard", "dashboard variables", "alert rules"], ids=lambda source: source
)
async def test_every_series_the_file_selects_is_exposed_with_the_labels_it_matches(
    exposed: dict[str, set[str]], source: str
) -> None:
    if source == "dashboard variables":
        selected: list[tuple[str, set[str]]] = [
            (name, set()) for name in dashboard_variable_metrics()
        ]
    else:
        expressions = dashboard_expressions() if source == "dashboard" else alert_expressions()
        selected = [found for expression in expressions for found in selectors(expression)]
    assert selected
    missing = sorted(
        {name for name, _ in selected if name not in exposed and name not in prometheus_series}
    )
    assert missing == []
    unknown_labels = sorted(
        {
            f"{name}{{{label}}}"
            for name, labels in selected
            if name in exposed
            for label in labels - exposed[name] - prometheus_labels
        }
    )
    assert unknown_labels == []


promtool = shutil.which("promtool") or shutil.which("promtool", path=Path(sys.executable).parent)


@pytest.mark.skipif(promtool is None, reason="promtool is not installed (make prom-tools)")
def test_promtool_accepts_the_alert_rules() -> None:
    assert promtool is not None
    checked = subprocess.run(
        [promtool, "check", "rules", str(alerts_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
