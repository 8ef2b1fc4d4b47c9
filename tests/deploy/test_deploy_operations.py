"""Operating the chart for real: what an operator following docs/DEPLOY.md needs.

Each test renders the chart with the values in question and checks the
manifests' structure (or the settings a pod would start with), never the
wording of an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from helm_python.chart import Chart
from helm_python.errors import HelmRenderError, HelmValuesError

from core.settings import Settings
from tests.deploy.test_deploy_helm import (
    COMPONENTS,
    FULL,
    MINIMUM,
    RELEASE,
    VALUE_SETS,
    Rendered,
    container,
    pod_env,
    rendered_set,
    with_minimum,
)
from tests.support.deploy_support import CHART, ENVIRONMENTS, argocd_app, settings_from_env

PAYMENT_DEADLINE = Settings.model_fields["payment_deadline_seconds"].default
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def chart() -> Iterator[Chart]:
    with Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def secret_data() -> dict[str, str]:
    from tests.support.deploy_support import fresh_pem

    return {
        "DATABASE_URL": "postgresql://ordersaga:pw@db.internal:5432/ordersaga",
        "ORDERSAGA_JWT_PRIVATE_KEYS": json.dumps([fresh_pem()]),
        "TEMPORAL_API_KEY": "api-key",
    }


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def annotations(workload: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = workload["spec"]["template"]["metadata"].get("annotations", {})
    return found


# --- 1. graceful shutdown -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_worker_pods_outlive_their_graceful_shutdown_which_outlives_a_charge(
    chart: Chart, name: str, secret_data: dict[str, str]
) -> None:
    rendered = rendered_set(chart, name)
    worker = rendered.deployment("worker")
    settings = settings_from_env(pod_env(rendered, worker, secret_data))
    # A charge in flight may run until the payment deadline...
    assert settings.worker_graceful_shutdown_seconds >= settings.payment_deadline_seconds
    # ...and Kubernetes must not kill the worker before it has drained.
    assert pod_spec(worker)["terminationGracePeriodSeconds"] > (
        settings.worker_graceful_shutdown_seconds
    )


def test_the_chart_refuses_a_graceful_shutdown_shorter_than_the_payment_deadline(
    chart: Chart,
) -> None:
    values = with_minimum({"extraConfig": {"ORDERSAGA_PAYMENT_DEADLINE_SECONDS": "150"}})
    with pytest.raises(HelmRenderError):
        chart.render(values, name=RELEASE, namespace="shop")
    # Raising the shutdown with it is the fix.
    chart.render(
        deep({"worker": {"gracefulShutdownSeconds": 150}}, values), name=RELEASE, namespace="shop"
    )


def deep(override: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    from tests.support.deploy_support import deep_merge

    return deep_merge(base, override)


def test_production_settings_refuse_a_shutdown_that_cuts_charges() -> None:
    env = production_env()
    assert settings_from_env(env).worker_graceful_shutdown_seconds >= PAYMENT_DEADLINE
    with pytest.raises(ValueError):
        settings_from_env({**env, "ORDERSAGA_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "30"})
    # The development stack keeps short shutdowns (tests stop workers often).
    dev = settings_from_env({"ORDERSAGA_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "1"})
    assert dev.worker_graceful_shutdown_seconds == 1


def production_env() -> dict[str, str]:
    return {
        "ORDERSAGA_MODE": "production",
        "DATABASE_URL": "postgresql://u:p@db/x",
        "TEMPORAL_ADDRESS": "temporal:7233",
        "ORDERSAGA_JWKS_URL": "http://auth:8001/.well-known/jwks.json",
        "ORDERSAGA_ADMIN_EMAIL": "admin@shop.example.com",
        "ORDERSAGA_MAIL_FROM": "orders@shop.example.com",
    }


# --- 2. immutable images ----------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        {"tag": "latest"},
        {"tag": "latest", "allowLatest": True},  # latest needs pullPolicy Always too
        {"tag": "latest", "pullPolicy": "Always"},
    ],
)
def test_the_schema_refuses_latest_unless_explicitly_allowed(
    chart: Chart, image: dict[str, Any]
) -> None:
    with pytest.raises(HelmValuesError):
        chart.render(with_minimum({"image": image}), name=RELEASE, namespace="shop")


def test_an_image_needs_a_tag_or_a_digest(chart: Chart) -> None:
    with pytest.raises(HelmRenderError):
        chart.render(with_minimum({"image": {"tag": ""}}), name=RELEASE, namespace="shop")
    rendered = Rendered(chart, with_minimum({"image": {"tag": "", "digest": DIGEST}}))
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        assert container(workload)["image"].endswith(f"/ordersaga@{DIGEST}")


@pytest.mark.parametrize("env", ["stage", "prod"])
def test_stage_and_prod_run_a_commit_sha_image(chart: Chart, env: str) -> None:
    rendered = rendered_set(chart, env)
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        c = container(workload)
        repository, _, tag = c["image"].rpartition(":")
        assert len(tag) == 40 and int(tag, 16) >= 0, c["image"]
        assert c["imagePullPolicy"] == "IfNotPresent"


def test_only_dev_follows_latest_and_it_always_pulls(chart: Chart) -> None:
    for env in ENVIRONMENTS:
        rendered = rendered_set(chart, env)
        for workload in rendered.kind("Deployment"):
            c = container(workload)
            if c["image"].endswith(":latest"):
                assert env == "dev"
                assert c["imagePullPolicy"] == "Always"


# --- 4. migrations before the app, in dev ---------------------------------------------


def test_dev_pods_migrate_before_they_start(chart: Chart, secret_data: dict[str, str]) -> None:
    rendered = rendered_set(chart, "dev")
    for component in COMPONENTS:
        deployment = rendered.deployment(component)
        (init,) = pod_spec(deployment)["initContainers"]
        assert init["args"] == ["migrate"]
        # The same build as the app, so the schema is the one this image expects.
        assert init["image"] == container(deployment)["image"]
        assert init["imagePullPolicy"] == container(deployment)["imagePullPolicy"]
        # It starts with the app's settings and the database from the Secret.
        init_as_pod = {"spec": {"template": {"spec": {"containers": [init]}}}}
        settings = settings_from_env(pod_env(rendered, init_as_pod, secret_data))
        assert settings.database_url == secret_data["DATABASE_URL"]


# --- 6. every TLS combination -------------------------------------------------------


TLS_CASES = {
    "ca-only": {
        "tls": {"existingSecret": "temporal-ca", "certKey": "", "keyKey": "", "caKey": "ca.crt"}
    },
    "mtls": {"tls": {"existingSecret": "temporal-client"}},
    "mtls-and-ca": {"tls": {"existingSecret": "temporal-client", "caKey": "ca.crt"}},
    "api-key": {"tls": {"enabled": True}, "apiKey": {"enabled": True}},
    "api-key-and-ca": {
        "tls": {"existingSecret": "temporal-ca", "certKey": "", "keyKey": "", "caKey": "ca.crt"},
        "apiKey": {"enabled": True},
    },
}


@pytest.mark.parametrize("case", sorted(TLS_CASES))
def test_every_temporal_tls_combination_mounts_exactly_the_files_it_reads(
    chart: Chart, case: str, secret_data: dict[str, str]
) -> None:
    temporal = TLS_CASES[case]
    rendered = Rendered(chart, with_minimum({"temporal": temporal}))
    tls_values = deep(temporal["tls"], {"certKey": "tls.crt", "keyKey": "tls.key", "caKey": ""})
    held = {k for k in (tls_values["certKey"], tls_values["keyKey"], tls_values["caKey"]) if k}
    for component in ("api", "worker"):
        workload = rendered.deployment(component)
        settings = settings_from_env(pod_env(rendered, workload, secret_data))
        assert settings.temporal_tls is True
        paths = [
            p
            for p in (
                settings.temporal_tls_client_cert_path,
                settings.temporal_tls_client_key_path,
                settings.temporal_tls_server_ca_cert_path,
            )
            if p is not None
        ]
        # Every file the process will read is a key the Secret holds.
        assert {p.name for p in paths} == (held if tls_values.get("existingSecret") else set())
        mounts = {m["mountPath"] for m in container(workload)["volumeMounts"]}
        assert all(str(p.parent) in mounts for p in paths)
        assert (settings.temporal_tls_client_cert_path is None) is (
            case.endswith("ca-only") or "api-key" in case
        )
        assert (settings.temporal_api_key is not None) is case.startswith("api-key")


@pytest.mark.parametrize(("cert", "key"), [("tls.crt", ""), ("", "tls.key")])
def test_half_a_client_certificate_is_refused(chart: Chart, cert: str, key: str) -> None:
    tls = {"existingSecret": "temporal-client", "certKey": cert, "keyKey": key}
    with pytest.raises(HelmValuesError):
        chart.render(with_minimum({"temporal": {"tls": tls}}), name=RELEASE, namespace="shop")


# --- 7. backlog-based worker scaling ------------------------------------------------


KEDA = {
    "worker": {"autoscaling": {"keda": {"enabled": True}, "minReplicas": 2, "maxReplicas": 8}},
    "database": {"maxConnections": 200},
}


def test_keda_scales_workers_on_the_task_queue_backlog(
    chart: Chart, secret_data: dict[str, str]
) -> None:
    rendered = Rendered(chart, with_minimum(KEDA))
    (scaled,) = rendered.kind("ScaledObject")
    worker = rendered.deployment("worker")
    settings = settings_from_env(pod_env(rendered, worker, secret_data))
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 8)
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert set(triggers) == {"temporal", "cpu"}
    temporal = triggers["temporal"]["metadata"]
    # The queue the workers poll, on the server they poll it from.
    assert temporal["taskQueue"] == settings.task_queue
    assert temporal["namespace"] == settings.temporal_namespace
    assert temporal["endpoint"] == settings.temporal_address
    assert int(temporal["targetQueueSize"]) >= 1
    # KEDA owns the replica count: no second HPA, no fixed replicas.
    assert rendered.kind("HorizontalPodAutoscaler") == []
    assert "replicas" not in worker["spec"]


def test_keda_is_off_by_default_and_exclusive_with_the_cpu_hpa(chart: Chart) -> None:
    assert Rendered(chart, MINIMUM).kind("ScaledObject") == []
    both = deep({"worker": {"autoscaling": {"enabled": True}}}, with_minimum(KEDA))
    with pytest.raises(HelmRenderError):
        chart.render(both, name=RELEASE, namespace="shop")


def test_keda_authenticates_to_temporal_like_the_workers(chart: Chart) -> None:
    values = deep(
        {"temporal": {"tls": {"existingSecret": "temporal-client"}, "apiKey": {"enabled": True}}},
        with_minimum(KEDA),
    )
    rendered = Rendered(chart, values)
    (scaled,) = rendered.kind("ScaledObject")
    (auth,) = rendered.kind("TriggerAuthentication")
    (temporal,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "temporal"]
    assert temporal["authenticationRef"]["name"] == auth["metadata"]["name"]
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        "apiKey": ("ordersaga-secrets", "TEMPORAL_API_KEY"),
        "cert": ("temporal-client", "tls.crt"),
        "key": ("temporal-client", "tls.key"),
    }


# --- 8. what the cluster must provide -------------------------------------------------


def test_service_monitors_wait_for_the_prometheus_operator_crds(chart: Chart) -> None:
    # Offline there is no monitoring.coreos.com API: by default, no monitor.
    enabled = with_minimum({"metrics": {"serviceMonitor": {"enabled": True}}})
    assert Rendered(chart, enabled).kind("ServiceMonitor") == []
    forced = deep({"metrics": {"serviceMonitor": {"onlyIfCRDExists": False}}}, enabled)
    labelled = deep({"metrics": {"serviceMonitor": {"labels": {"release": "prom"}}}}, forced)
    monitors = Rendered(chart, labelled).kind("ServiceMonitor")
    assert len(monitors) == len(COMPONENTS)
    assert all(m["metadata"]["labels"]["release"] == "prom" for m in monitors)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environments_pull_from_ghcr_with_a_pull_secret(chart: Chart, env: str) -> None:
    rendered = rendered_set(chart, env)
    for workload in rendered.kind("Deployment") + rendered.kind("Job"):
        assert pod_spec(workload)["imagePullSecrets"] == [{"name": "ghcr-pull"}]


def test_metrics_ports_are_apart_from_the_public_ones(
    chart: Chart, secret_data: dict[str, str]
) -> None:
    rendered = Rendered(chart, FULL)
    for component in ("api", "auth"):
        deployment = rendered.deployment(component)
        ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
        env = pod_env(rendered, deployment, secret_data)
        # The contract with the API: it serves /metrics on this port only.
        assert int(env[f"ORDERSAGA_{component.upper()}_METRICS_PORT"]) == ports["metrics"]
        assert ports["metrics"] != ports["http"]
    (ingress,) = rendered.kind("Ingress")
    for rule in ingress["spec"]["rules"]:
        assert {p["backend"]["service"]["port"]["name"] for p in rule["http"]["paths"]} == {"http"}


# --- 9. the database connection budget --------------------------------------------------


def worst_case_connections(
    rendered: Rendered, values: dict[str, Any], secret: dict[str, str]
) -> int:
    """Every pod at once, autoscalers at their maximum, one surge pod per Deployment."""
    total = 0
    for component in COMPONENTS:
        deployment = rendered.deployment(component)
        settings = settings_from_env(pod_env(rendered, deployment, secret))
        pods = deployment["spec"].get("replicas")
        if pods is None:
            autoscaling = values["worker"]["autoscaling"]
            pods = autoscaling["maxReplicas"]
        pods += deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        total += pods * (settings.db_pool_size + settings.db_max_overflow)
        total += pods * len(pod_spec(deployment).get("initContainers", []))
    return total + 3  # the hook: migrate, then bootstrap-admin's two


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_fits_its_connection_budget(
    chart: Chart, env: str, secret_data: dict[str, str]
) -> None:
    values = VALUE_SETS[env]
    rendered = rendered_set(chart, env)
    budget = values.get("database", {}).get("maxConnections", 100)
    assert worst_case_connections(rendered, values, secret_data) <= budget


def test_the_chart_refuses_pools_above_the_budget(chart: Chart) -> None:
    values = with_minimum({"worker": {"replicas": 30}})
    with pytest.raises(HelmRenderError):
        chart.render(values, name=RELEASE, namespace="shop")


def test_pgbouncer_mode_turns_prepared_statements_off(
    chart: Chart, secret_data: dict[str, str]
) -> None:
    rendered = Rendered(chart, with_minimum({"database": {"preparedStatements": False}}))
    for component in COMPONENTS:
        deployment = rendered.deployment(component)
        assert (
            settings_from_env(pod_env(rendered, deployment, secret_data)).db_prepared_statements
            is False
        )


# --- 10. secrets rotate with effect ------------------------------------------------------


def pod_annotations(chart: Chart, values: dict[str, Any]) -> dict[str, dict[str, str]]:
    rendered = Rendered(chart, values)
    return {c: annotations(rendered.deployment(c)) for c in COMPONENTS}


def test_a_changed_chart_secret_rolls_every_pod(chart: Chart) -> None:
    before = pod_annotations(chart, FULL)
    rotated = deep(
        {
            "secrets": {
                "jwtPrivateKeys": ["-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n"]
            }
        },
        FULL,
    )
    after = pod_annotations(chart, rotated)
    for component in COMPONENTS:
        assert before[component] != after[component], component
    assert pod_annotations(chart, FULL) == before  # stable when nothing changed


def test_a_rotation_stamp_rolls_pods_reading_an_external_secret(chart: Chart) -> None:
    before = pod_annotations(chart, MINIMUM)
    after = pod_annotations(chart, with_minimum({"secrets": {"rotation": "2026-11-25"}}))
    for component in COMPONENTS:
        assert before[component] != after[component], component


# --- 12. no placeholder addresses in production ------------------------------------------


@pytest.mark.parametrize("name", ["ORDERSAGA_ADMIN_EMAIL", "ORDERSAGA_MAIL_FROM"])
def test_production_refuses_the_placeholder_domain(name: str) -> None:
    env = production_env()
    settings_from_env(env)
    with pytest.raises(ValueError):
        settings_from_env({**env, name: "someone@ordersaga.dev"})
    # The development stack keeps its defaults.
    assert settings_from_env({}).admin_email.endswith("@ordersaga.dev")


@pytest.mark.parametrize(
    "values",
    [
        {"admin": {"email": "admin@ordersaga.dev"}},
        {"smtp": {"from": "orders@ordersaga.dev"}},
    ],
)
def test_the_chart_refuses_the_placeholder_domain(chart: Chart, values: dict[str, Any]) -> None:
    with pytest.raises(HelmValuesError):
        chart.render(deep(values, MINIMUM), name=RELEASE, namespace="shop")


@pytest.mark.parametrize("missing", ["admin", "smtp"])
def test_the_chart_needs_real_addresses(chart: Chart, missing: str) -> None:
    values = {k: v for k, v in MINIMUM.items() if k != missing}
    with pytest.raises(HelmRenderError):
        chart.render(values, name=RELEASE, namespace="shop")


# --- 5. promotion pins stage and prod ----------------------------------------------------


@pytest.mark.parametrize("env", ["stage", "prod"])
def test_stage_and_prod_run_the_chart_of_the_promoted_commit(env: str) -> None:
    source = argocd_app(env)["spec"]["source"]
    revision = source["targetRevision"]
    assert len(revision) == 40 and int(revision, 16) >= 0, "a commit, not a moving branch"
    # The image is the one built from that same commit.
    assert source["helm"]["valuesObject"]["image"]["tag"] == revision


def test_dev_alone_follows_main() -> None:
    assert argocd_app("dev")["spec"]["source"]["targetRevision"] == "main"
    assert "valuesObject" not in argocd_app("dev")["spec"]["source"]["helm"]
