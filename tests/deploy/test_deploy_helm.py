"""The Helm chart: lint, render, Kubernetes schemas, and what the manifests promise.

Helm runs as a library (helm-python-sdk) and the Kubernetes schemas come with
kubernetes-validate, so nothing here needs a cluster or the network.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from helm_python.chart import Chart, lint
from helm_python.errors import HelmRenderError, HelmValuesError

from core.settings import Settings
from tests.support.deploy_support import (
    CHART,
    DEPLOY,
    ENVIRONMENTS,
    deep_merge,
    environment_values,
    fresh_pem,
    load_yaml,
    setting_names,
    settings_from_env,
    yaml_documents,
)

NAMESPACE = "shop"
RELEASE = "ordersaga"
# The chart's floor (Chart.yaml kubeVersion) and the newest schemas shipped.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.utils.latest_version())
COMPONENTS = ("api", "auth", "worker")
PAYMENT_DEADLINE = Settings.model_fields["payment_deadline_seconds"].default

# What an operator must give: an immutable image and real addresses.
MINIMUM: dict[str, Any] = {
    "image": {"tag": "0123abc"},
    "admin": {"email": "admin@shop.example.com"},
    "smtp": {"from": "orders@shop.example.com"},
}


def with_minimum(values: dict[str, Any]) -> dict[str, Any]:
    return deep_merge(MINIMUM, values)


# Everything optional switched on, with the chart making its own Secret.
FULL = {
    **MINIMUM,
    "image": {"repository": "ghcr.io/acme/ordersaga", "tag": "0123abc"},
    "temporal": {
        "address": "temporal.example.com:7233",
        "tls": {"existingSecret": "temporal-client", "caKey": "ca.crt"},
        "apiKey": {"enabled": True},
    },
    "secrets": {
        "existingSecret": "",
        "databaseUrl": "postgresql://ordersaga:pw@db.internal:5432/ordersaga",
        "jwtPrivateKeys": ["-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"],
        "adminPassword": "admin-pw-123",
        "temporalApiKey": "api-key",
    },
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "hosts": [{"host": "shop.example.com"}],
        "tls": [{"secretName": "shop-tls", "hosts": ["shop.example.com"]}],
    },
    "worker": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}},
    "database": {"maxConnections": 200},
    "migrations": {"initContainer": {"enabled": True}},
    "metrics": {"serviceMonitor": {"enabled": True, "onlyIfCRDExists": False}},
    "extraConfig": {"ORDERSAGA_PAYMENT_DEADLINE_SECONDS": "45"},
}


def value_sets() -> dict[str, dict[str, Any]]:
    sets: dict[str, dict[str, Any]] = {
        "default": MINIMUM,
        "temporal-cloud": with_minimum(load_yaml(DEPLOY / "helm" / "values-temporal-cloud.yaml")),
        "full": FULL,
    }
    for env in ENVIRONMENTS:
        sets[env] = environment_values(env)
    return sets


VALUE_SETS = value_sets()


@pytest.fixture(scope="module")
def chart() -> Iterator[Chart]:
    with Chart.load(CHART) as loaded:
        yield loaded


class Rendered:
    """A rendered release, indexed by kind and name."""

    def __init__(self, chart: Chart, values: dict[str, Any]) -> None:
        self.files = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        self.docs = [
            doc
            for path, text in self.files.items()
            if path.endswith(".yaml")
            for doc in yaml_documents(text)
        ]

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [doc for doc in self.kind(kind) if doc["metadata"]["name"] == name]
        return found

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-{component}")

    def job(self, name: str) -> dict[str, Any]:
        return self.get("Job", f"{RELEASE}-{name}")


_cache: dict[str, Rendered] = {}


def rendered_set(chart: Chart, name: str) -> Rendered:
    """The release for a named value set, rendered once per test session (read-only)."""
    if name not in _cache:
        _cache[name] = Rendered(chart, VALUE_SETS[name])
    return _cache[name]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def pod_env(rendered: Rendered, workload: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """The environment a pod of ``workload`` starts with, given the Secret's data."""
    c = container(workload)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(rendered.get("ConfigMap", source["configMapRef"]["name"])["data"])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            if ref["key"] in secret:
                env[var["name"]] = secret[ref["key"]]
            else:
                assert ref.get("optional"), f"{var['name']} needs {ref['key']} in the Secret"
    return env


FAKE_SECRET = {
    "DATABASE_URL": "postgresql://ordersaga:pw@db.internal:5432/ordersaga",
    "ORDERSAGA_JWT_PRIVATE_KEYS": "",  # filled per test with a fresh key
    "TEMPORAL_API_KEY": "api-key",
}


@pytest.fixture(scope="module")
def fake_secret() -> dict[str, str]:
    return {**FAKE_SECRET, "ORDERSAGA_JWT_PRIVATE_KEYS": json.dumps([fresh_pem()])}


# --- lint and schemas ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_is_clean(name: str) -> None:
    report = lint(CHART, VALUE_SETS[name], namespace=NAMESPACE, strict=True)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_manifest_validates_against_kubernetes(chart: Chart, name: str) -> None:
    rendered = rendered_set(chart, name)
    checked = 0
    for doc in rendered.docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked against its Service below
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 10


def test_kubernetes_validation_would_catch_a_broken_manifest(chart: Chart) -> None:
    deployment = Rendered(chart, MINIMUM).deployment("api")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)
    deployment["spec"]["replicas"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over the chart's defaults (maps merge, rest replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"worker": {"replicas": "two"}}, ["worker", "replicas"]),
        ({"api": {"port": "8000"}}, ["api", "port"]),
        ({"temporal": {"address": "temporal-frontend"}}, ["temporal", "address"]),
        ({"temporal": {"tls": {"enabled": "yes"}}}, ["temporal", "tls", "enabled"]),
        ({"secrets": {"jwtPrivateKeys": "not-a-list"}}, ["secrets", "jwtPrivateKeys"]),
        ({"worker": {"autoscaling": {"maxReplicas": 0}}}, ["worker", "autoscaling", "maxReplicas"]),
        ({"replicas": 2}, []),  # an unknown top-level key: refused at the root
    ],
)
def test_values_schema_rejects_wrong_types(
    chart: Chart, values: dict[str, Any], where: list[str]
) -> None:
    # Helm refuses the values (its error type, not its wording)...
    with pytest.raises(HelmValuesError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    # ...and the chart's schema refuses them at the field the case breaks,
    # read from the validator's error path rather than from any message.
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(_merged(defaults, values)))
    assert [list(e.absolute_path) for e in errors] == [where]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"secrets": {"existingSecret": ""}}, "secrets.databaseUrl is required"),
        (
            {"secrets": {"existingSecret": "", "databaseUrl": "postgresql://db/x"}},
            "secrets.jwtPrivateKeys needs at least one",
        ),
        (
            {"worker": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
            "minReplicas must not exceed maxReplicas",
        ),
        (
            {"extraConfig": {"TEMPORAL_ADDRESS": "elsewhere:7233"}},
            "extraConfig.TEMPORAL_ADDRESS is set by the chart",
        ),
    ],
)
def test_incomplete_values_fail_with_a_clear_message(
    chart: Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(HelmRenderError, match=message):
        chart.render(with_minimum(values), name=RELEASE, namespace=NAMESPACE)


# --- workloads -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_deployments_have_resources_and_probes_on_real_ports(chart: Chart, name: str) -> None:
    rendered = rendered_set(chart, name)
    assert {d["metadata"]["name"] for d in rendered.kind("Deployment")} == {
        f"{RELEASE}-{c}" for c in COMPONENTS
    }
    for component in COMPONENTS:
        c = container(rendered.deployment(component))
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"]["port"] in ports, (component, probe)


def test_each_process_runs_its_own_command_and_port(chart: Chart) -> None:
    rendered = Rendered(chart, MINIMUM)
    api, auth, worker = (container(rendered.deployment(c)) for c in COMPONENTS)
    assert api["args"] == ["api", "--host", "0.0.0.0", "--port", "8000"]
    assert auth["args"] == ["auth", "--host", "0.0.0.0", "--port", "8001"]
    assert worker["args"] == ["worker"]
    assert {p["containerPort"] for p in worker["ports"]} == {9000}
    for c in (api, auth, worker):
        assert "command" not in c, "the image's entry point is `ordersaga`"


def test_replicas_are_independent(chart: Chart) -> None:
    values = {
        "api": {"replicas": 3},
        "auth": {"replicas": 1},
        "worker": {"replicas": 7},
        "database": {"maxConnections": 200},
    }
    rendered = Rendered(chart, with_minimum(values))
    replicas = {c: rendered.deployment(c)["spec"]["replicas"] for c in COMPONENTS}
    assert replicas == {"api": 3, "auth": 1, "worker": 7}
    assert rendered.kind("HorizontalPodAutoscaler") == []


def test_worker_autoscaling_owns_the_worker_replica_count(chart: Chart) -> None:
    rendered = Rendered(chart, FULL)
    (hpa,) = rendered.kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-worker"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert "replicas" not in rendered.deployment("worker")["spec"]
    assert rendered.deployment("api")["spec"]["replicas"] == 2


def test_workers_get_time_to_finish_in_flight_activities(chart: Chart) -> None:
    rendered = Rendered(chart, MINIMUM)
    worker = rendered.deployment("worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] > PAYMENT_DEADLINE
    # No preStop delay: the worker drains on SIGTERM itself.
    assert "lifecycle" not in container(rendered.deployment("worker"))


def test_pods_are_hardened(chart: Chart) -> None:
    rendered = Rendered(chart, FULL)
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        pod = workload["spec"]["template"]["spec"]
        c = container(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "a read-only root needs a writable /tmp"


def test_services_pdbs_and_monitors_select_real_pods_and_ports(chart: Chart) -> None:
    rendered = Rendered(chart, FULL)
    deployments = rendered.kind("Deployment")
    services = rendered.kind("Service")
    for service in services:
        (target,) = [d for d in deployments if selects(service["spec"]["selector"], d)]
        port_names = {p["name"] for p in container(target)["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, service["metadata"]["name"]
    for pdb in rendered.kind("PodDisruptionBudget"):
        (target,) = [d for d in deployments if selects(pdb["spec"]["selector"]["matchLabels"], d)]
        assert pdb["spec"]["maxUnavailable"] == 1
    monitors = rendered.kind("ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {f"{RELEASE}-{c}" for c in COMPONENTS}
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        (service,) = [
            s
            for s in services
            if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_pdbs_can_be_turned_off_and_monitors_are_optional(chart: Chart) -> None:
    rendered = rendered_set(chart, "dev")
    assert {p["metadata"]["name"] for p in rendered.kind("PodDisruptionBudget")} == {
        f"{RELEASE}-worker"
    }
    assert rendered.kind("ServiceMonitor") == []
    assert rendered.kind("Ingress") == []


def test_ingress_sends_auth_routes_to_the_auth_service(chart: Chart) -> None:
    rendered = Rendered(chart, FULL)
    (ingress,) = rendered.kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    backends = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert backends == {
        "/auth": f"{RELEASE}-auth",
        "/users": f"{RELEASE}-auth",
        "/.well-known": f"{RELEASE}-auth",
        "/": f"{RELEASE}-api",
    }
    service_names = {s["metadata"]["name"] for s in rendered.kind("Service")}
    assert set(backends.values()) <= service_names
    assert ingress["spec"]["tls"][0]["secretName"] == "shop-tls"


# --- hooks, config and secrets -----------------------------------------------------


def hook(doc: dict[str, Any]) -> tuple[str, int] | None:
    annotations = doc["metadata"].get("annotations", {})
    if "helm.sh/hook" not in annotations:
        return None
    return annotations["helm.sh/hook"], int(annotations.get("helm.sh/hook-weight", "0"))


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(chart: Chart) -> None:
    rendered = Rendered(chart, FULL)
    migrate = rendered.job("migrate")
    search_attributes = rendered.job("search-attributes")
    secret = rendered.get("Secret", f"{RELEASE}-secrets")
    assert hook(migrate) == ("pre-install,pre-upgrade", 0)
    assert hook(search_attributes) == ("pre-install,pre-upgrade", 5)
    # The hooks read the Secret, so it must exist first.
    secret_hook = hook(secret)
    assert secret_hook is not None and secret_hook[1] < 0
    assert container(search_attributes)["command"] == ["ordersaga", "register-search-attributes"]
    # The Deployments' ConfigMap is an ordinary resource; the Jobs take the settings inline.
    assert hook(rendered.get("ConfigMap", f"{RELEASE}-config")) is None
    for job in (migrate, search_attributes):
        assert "envFrom" not in container(job)
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_search_attributes_job_is_off_for_temporal_cloud(chart: Chart) -> None:
    rendered = rendered_set(chart, "temporal-cloud")
    assert [j["metadata"]["name"] for j in rendered.kind("Job")] == [f"{RELEASE}-migrate"]


def run_migrate_script(
    chart: Chart, tmp_path: Path, env: dict[str, str], fail_migrate: bool = False
) -> tuple[int, list[str]]:
    """Run the migrate Job's command with a stand-in `ordersaga` that logs its calls."""
    command = container(Rendered(chart, MINIMUM).job("migrate"))["command"]
    log = tmp_path / "calls"
    fake = tmp_path / "bin" / "ordersaga"
    fake.parent.mkdir(parents=True)
    status = "1" if fail_migrate else "0"
    fake.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> "$CALLS"\n[ "$1" = migrate ] && exit {status}\nexit 0\n'
    )
    fake.chmod(0o755)
    path = f"{fake.parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(
        command, env={**env, "PATH": path, "CALLS": str(log)}, capture_output=True, timeout=30
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, calls


def test_migrate_job_bootstraps_the_admin_and_never_resets_it(chart: Chart, tmp_path: Path) -> None:
    """Every sync runs the hook: it may only bootstrap (a no-op once an admin
    exists, tests/tooling/test_cli.py), never `create-admin`, which resets the password."""
    env = {"ORDERSAGA_ADMIN_EMAIL": "boss@example.com", "ORDERSAGA_ADMIN_PASSWORD": "s3cret pw"}
    code, calls = run_migrate_script(chart, tmp_path / "a", env)
    assert (code, calls) == (0, ["migrate", "bootstrap-admin"])
    # The password reaches the command through the environment only.
    assert all("s3cret" not in call for call in calls)
    code, calls = run_migrate_script(chart, tmp_path / "b", env, fail_migrate=True)
    assert code != 0 and calls == ["migrate"], "a failed migration must fail the hook"
    command = " ".join(container(Rendered(chart, MINIMUM).job("migrate"))["command"])
    assert "create-admin" not in command


def test_an_existing_secret_is_used_by_name(chart: Chart) -> None:
    rendered = Rendered(chart, with_minimum({"secrets": {"existingSecret": "my-secrets"}}))
    assert rendered.kind("Secret") == []
    refs = [
        var["valueFrom"]["secretKeyRef"]["name"]
        for workload in rendered.kind("Deployment") + rendered.kind("Job")
        for var in container(workload).get("env", [])
        if "valueFrom" in var
    ]
    assert refs and set(refs) == {"my-secrets"}


def test_the_chart_secret_holds_every_key_the_pods_need(chart: Chart) -> None:
    rendered = Rendered(chart, FULL)
    secret = rendered.get("Secret", f"{RELEASE}-secrets")
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        for var in container(workload).get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"]
                assert ref["key"] in secret["data"] or ref.get("optional"), ref


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_pod_starts_with_valid_production_settings(
    chart: Chart, name: str, fake_secret: dict[str, str]
) -> None:
    rendered = rendered_set(chart, name)
    known = setting_names()
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        label = workload["metadata"]["name"]
        env = pod_env(rendered, workload, fake_secret)
        assert not set(env) - known, f"{label}: variables no setting reads"
        settings = settings_from_env(env)  # raises if production mode is unsatisfied
        assert settings.mode == "production"
        assert settings.temporal_address == VALUE_SETS[name].get("temporal", {}).get(
            "address", "temporal-frontend.temporal.svc.cluster.local:7233"
        )
        is_auth = label.endswith("-auth")
        assert bool(settings.jwt_private_keys) is is_auth, "only auth holds signing keys"
        if not is_auth:
            assert settings.serve_auth is False
            assert settings.jwks_url is not None
            host = urlsplit(settings.jwks_url).hostname or ""
            assert host.split(".")[:2] == [f"{RELEASE}-auth", NAMESPACE]


def test_worker_health_port_matches_its_container_port(
    chart: Chart, fake_secret: dict[str, str]
) -> None:
    rendered = Rendered(chart, with_minimum({"worker": {"healthPort": 9200}}))
    worker = rendered.deployment("worker")
    settings = settings_from_env(pod_env(rendered, worker, fake_secret))
    assert settings.worker_health_port == 9200
    assert [p["containerPort"] for p in container(worker)["ports"]] == [9200]


def tls_files(rendered: Rendered, workload: dict[str, Any]) -> dict[str, str]:
    """Mounted path -> Secret name, for the Secret-backed volumes of a workload."""
    pod = workload["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    return {
        m["mountPath"]: secrets[m["name"]]
        for m in container(workload)["volumeMounts"]
        if m["name"] in secrets
    }


def test_temporal_client_certificates_come_from_a_mounted_secret(
    chart: Chart, fake_secret: dict[str, str]
) -> None:
    rendered = Rendered(chart, FULL)
    for workload in (
        rendered.deployment("api"),
        rendered.deployment("worker"),
        rendered.job("search-attributes"),
    ):
        settings = settings_from_env(pod_env(rendered, workload, fake_secret))
        mounts = tls_files(rendered, workload)
        assert settings.temporal_tls is True
        for path in (
            settings.temporal_tls_client_cert_path,
            settings.temporal_tls_client_key_path,
            settings.temporal_tls_server_ca_cert_path,
        ):
            assert path is not None and mounts.get(str(path.parent)) == "temporal-client"
        assert settings.temporal_api_key is not None
        assert settings.temporal_api_key.get_secret_value() == "api-key"
    # The auth service never talks to Temporal and gets none of its credentials.
    auth = rendered.deployment("auth")
    assert tls_files(rendered, auth) == {}
    assert "TEMPORAL_API_KEY" not in {v["name"] for v in container(auth)["env"]}


def test_temporal_cloud_example(chart: Chart, fake_secret: dict[str, str]) -> None:
    values = VALUE_SETS["temporal-cloud"]
    rendered = Rendered(chart, values)
    worker = rendered.deployment("worker")
    settings = settings_from_env(pod_env(rendered, worker, fake_secret))
    assert settings.temporal_tls is True
    assert settings.temporal_namespace == values["temporal"]["namespace"]
    assert settings.temporal_tls_client_cert_path is not None
    assert settings.temporal_tls_server_ca_cert_path is None  # Cloud uses public roots
    assert settings.temporal_api_key is None
    # The same file switched to API-key authentication.
    api_key = {
        "temporal": {
            "address": "us-east-1.aws.api.temporal.io:7233",
            "tls": {"enabled": True, "existingSecret": ""},
            "apiKey": {"enabled": True},
        }
    }
    rendered = Rendered(chart, Chart.load(CHART).merge_values({**values, **api_key}))
    worker = rendered.deployment("worker")
    settings = settings_from_env(pod_env(rendered, worker, fake_secret))
    assert settings.temporal_tls is True
    assert settings.temporal_tls_client_cert_path is None
    assert settings.temporal_api_key is not None
    assert tls_files(rendered, worker) == {}


def test_config_changes_roll_the_pods(chart: Chart) -> None:
    def checksum(values: dict[str, Any]) -> str:
        deployment = Rendered(chart, with_minimum(values)).deployment("worker")
        annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/config"]

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"logLevel": "DEBUG"})


# --- environments ------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_image_tag_reaches_every_pod(chart: Chart, env: str) -> None:
    values = VALUE_SETS[env]
    rendered = rendered_set(chart, env)
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        assert container(workload)["image"] == image


def test_extra_config_reaches_every_pod_and_job(chart: Chart, fake_secret: dict[str, str]) -> None:
    rendered = Rendered(chart, FULL)
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        settings = settings_from_env(pod_env(rendered, workload, fake_secret))
        assert settings.payment_deadline_seconds == 45, workload["metadata"]["name"]
