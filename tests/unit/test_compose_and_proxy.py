"""deploy/compose.yaml and deploy/envoy.yaml as compose and Envoy read them: PostgreSQL,
Redis, a one-shot migration and Purse replicas, each with a health check and a restart
policy, secrets only from deploy/.env, and Envoy balancing gRPC calls over the replicas'
HTTP/2 by their gRPC health. (No container engine here: the files are parsed and checked.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from purse.config import Settings, load_settings

deploy = Path(__file__).resolve().parents[2] / "deploy"
# ${NAME}, ${NAME:?message}, ${NAME:-default}: compose's interpolation.
interpolation = re.compile(r"\$\{(?P<name>\w+)(?::?[?-](?P<rest>[^}]*))?\}")
secret_words = ("PASSWORD", "SECRET", "TOKEN", "KEY")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((deploy / "compose.yaml").read_text())
    return loaded


def envoy() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((deploy / "envoy.yaml").read_text())
    return loaded


def example_values() -> dict[str, str]:
    """deploy/env.example's variables, with a stand-in for each that it leaves empty."""
    values = {}
    for line in (deploy / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value if value not in ("", "https://") else f"https://{name.lower()}"
    values["POSTGRES_PASSWORD"] = "postgres0password"
    values["REDIS_PASSWORD"] = "redis0password"
    return values


def interpolated(text: str, values: dict[str, str]) -> str:
    return interpolation.sub(lambda found: values[found["name"]], text)


def test_every_service_has_a_restart_policy_and_every_long_running_one_a_health_check() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "purse", "envoy"}
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("postgres", "redis", "purse", "envoy"):
        assert services[name]["restart"] == "unless-stopped", name
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD", name
        assert check["retries"] >= 3, name
    assert services["purse"]["healthcheck"]["test"] == ["CMD", "purse", "health"]


def test_replicas_start_after_the_migration_and_on_healthy_databases_only() -> None:
    services = compose()["services"]
    purse = services["purse"]
    assert purse["deploy"]["replicas"] >= 2
    assert purse["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert how["condition"].startswith("service_"), (name, dependency)
    assert services["envoy"]["depends_on"] == {"purse": {"condition": "service_healthy"}}


def test_no_secret_is_written_in_compose_only_required_variables_from_deploy_env() -> None:
    text = (deploy / "compose.yaml").read_text()
    required = {found["name"] for found in interpolation.finditer(text) if found["rest"]}
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "PURSE_NOTIFY_WEBHOOK_SECRET"} <= required
    for found in interpolation.finditer(text):
        if any(word in found["name"] for word in secret_words):
            assert found.group(0).startswith(f"${{{found['name']}:?"), found.group(0)
    services = compose()["services"]
    for service in services.values():
        for key, value in service.get("environment", {}).items():
            if any(word in key for word in secret_words):
                assert interpolation.fullmatch(str(value)), key
            if "://" in str(value) and "@" in str(value):
                credentials = str(value).split("://")[1].split("@")[0]
                assert interpolation.search(credentials), key
    assert set(example_values()) >= {found["name"] for found in interpolation.finditer(text)}


def test_a_replicas_environment_is_settings_purse_accepts_and_sends_through_the_webhook() -> None:
    environment = compose()["services"]["purse"]["environment"]
    values = example_values()
    settings = load_settings(
        {key: interpolated(str(value), values) for key, value in environment.items()}
    )
    assert not settings.embedded
    assert not settings.migrates_at_start
    assert settings.notify_provider == "webhook"
    assert settings.database_url == "postgresql://purse:postgres0password@postgres:5432/purse"
    migration = compose()["services"]["migrate"]["environment"]
    assert migration == {key: environment[key] for key in migration}


def test_envoy_listens_where_compose_publishes_it() -> None:
    ports = {
        listener["name"]: listener["address"]["socket_address"]["port_value"]
        for listener in envoy()["static_resources"]["listeners"]
    }
    assert ports == {"grpc": 50051, "http": 8080}
    published = compose()["services"]["envoy"]["ports"]
    assert published == [f"{port}:{port}" for port in ports.values()]
    assert "./envoy.yaml:/etc/envoy/envoy.yaml:ro" in compose()["services"]["envoy"]["volumes"]
    assert envoy()["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def routes(listener_name: str) -> list[dict[str, Any]]:
    (listener,) = [
        each for each in envoy()["static_resources"]["listeners"] if each["name"] == listener_name
    ]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["http_filters"][-1]["name"] == "envoy.filters.http.router"
    found: list[dict[str, Any]] = manager["route_config"]["virtual_hosts"][0]["routes"]
    return found


def clusters() -> dict[str, dict[str, Any]]:
    return {cluster["name"]: cluster for cluster in envoy()["static_resources"]["clusters"]}


def test_envoy_routes_grpc_over_http2_to_every_replica_by_its_grpc_health() -> None:
    (route,) = routes("grpc")
    assert route["match"] == {"prefix": "/", "grpc": {}}
    assert route["route"]["timeout"] == "0s", "streams are not cut by a route timeout"
    cluster = clusters()[route["route"]["cluster"]]
    assert cluster["type"] == "STRICT_DNS", "every replica's address, not the first"
    options = cluster["typed_extension_protocol_options"]
    upstream = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in upstream["explicit_http_config"]
    (check,) = cluster["health_checks"]
    assert check["grpc_health_check"] == {"service_name": ""}
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    address = endpoint["address"]["socket_address"]
    assert address == {"address": "purse", "port_value": Settings().grpc_port}
    assert address["address"] in compose()["services"]


def test_envoy_routes_http_json_to_the_replicas_http_port() -> None:
    (route,) = routes("http")
    cluster = clusters()[route["route"]["cluster"]]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    address = endpoint["address"]["socket_address"]
    assert address == {"address": "purse", "port_value": Settings().http_port}
    assert cluster["health_checks"][0]["http_health_check"]["path"] == "/metrics"
    assert set(clusters()) == {"purse_grpc", "purse_http"}
