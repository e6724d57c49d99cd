"""deploy/kubernetes validated offline against the Kubernetes JSON schemas (kubernetes-validate
ships them; strict: an unknown field is an error), and held together: the Services, the
disruption budget and the autoscaler select the Deployment's pods, the probes ask gRPC health
on the server's port, the migration Job runs `purse migrate` once, replicas never migrate,
and no Secret is kept in the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from purse.bootstrap import process_health_service
from purse.config import Settings, load_settings

manifests = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests are written for (gRPC probes are stable from 1.27;
# 1.30 is the oldest minor still maintained when these were written) and the newest the
# schemas know.
kubernetes_versions = ("1.30.0", kubernetes_validate.latest_version())


def documents() -> dict[str, dict[str, Any]]:
    """Each manifest by its file name, kustomization.yaml aside."""
    found = {}
    for path in sorted(manifests.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found[path.name] = yaml.safe_load(path.read_text())
    return found


def one(kind: str) -> dict[str, Any]:
    (found,) = [document for document in documents().values() if document["kind"] == kind]
    return found


def server_container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = one("Deployment")["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


@pytest.mark.parametrize("version", kubernetes_versions)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    kinds = set()
    for name, document in documents().items():
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{name}: {error.message} at {list(error.path)}") from error
        kinds.add(document["kind"])
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "Service",
    }


def test_the_schemas_catch_a_misspelt_field() -> None:
    deployment = one("Deployment")
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_versions[0], strict=True)


def test_the_kustomization_applies_every_manifest_and_keeps_no_secret() -> None:
    kustomization = yaml.safe_load((manifests / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(documents())
    assert all(document["kind"] != "Secret" for document in documents().values())


def test_readiness_asks_the_servers_health_and_liveness_the_process_alone() -> None:
    container = server_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": Settings().grpc_port, "http": Settings().http_port}
    assert container["readinessProbe"]["grpc"] == {"port": ports["grpc"]}
    assert container["startupProbe"]["grpc"] == {"port": ports["grpc"]}
    assert container["livenessProbe"]["grpc"] == {
        "port": ports["grpc"],
        "service": process_health_service,
    }


def test_the_servers_run_without_privileges_with_requests_and_a_memory_limit() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    container = server_container()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]
    assert "cpu" not in resources["limits"], "a CPU limit throttles calls, it does not shed them"
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/var/lib/purse" in mounted


def test_services_budget_and_autoscaler_select_the_deployments_pods() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    services = [document for document in documents().values() if document["kind"] == "Service"]
    assert {service["spec"].get("clusterIP") for service in services} == {None, "None"}
    for service in services:
        assert service["spec"]["selector"] == labels
        assert service["spec"]["ports"][0]["targetPort"] == "grpc"
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == labels
    autoscaler = one("HorizontalPodAutoscaler")["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert autoscaler["minReplicas"] >= 2
    assert one("PodDisruptionBudget")["spec"]["maxUnavailable"] < autoscaler["minReplicas"]


def test_the_migration_runs_once_in_a_job_and_the_replicas_never_migrate_at_start() -> None:
    job = one("Job")["spec"]["template"]["spec"]
    (migration,) = job["containers"]
    assert migration["args"] == ["migrate"]
    assert job["restartPolicy"] == "Never"
    assert migration["envFrom"] == server_container()["envFrom"]
    assert server_container()["args"] == ["serve"]
    settings = one("ConfigMap")["data"]
    secret = {
        "PURSE_DATABASE_URL": "postgresql://purse@postgres/purse",
        "PURSE_REDIS_URL": "redis://redis:6379/0",
        "PURSE_NOTIFY_WEBHOOK_URL": "https://gateway.example/messages",
    }
    loaded = load_settings({**settings, **secret})
    assert not loaded.migrates_at_start
    assert loaded.notify_provider == "webhook"
    names = {
        source.get("configMapRef", source.get("secretRef"))["name"]
        for source in migration["envFrom"]
    }
    assert one("ConfigMap")["metadata"]["name"] in names
