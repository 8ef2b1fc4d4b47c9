"""docs/DEPLOY.md: its commands and paths are real."""

from __future__ import annotations

import json
import os
import re
import subprocess

from api.keys import load_private_key
from tests.support.deploy_support import REPO, VENV_BIN, load_yaml, settings_from_env

DOC = REPO / "docs" / "DEPLOY.md"


def test_the_key_generation_command_makes_a_usable_env_line() -> None:
    (command,) = [
        line.strip()
        for line in DOC.read_text().splitlines()
        if line.startswith("python -c") and "generate_private_key_pem" in line
    ]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["sh", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    match = re.fullmatch(r"ORDERSAGA_JWT_PRIVATE_KEYS='(.*)'", line)
    assert match, line
    (pem,) = json.loads(match[1])
    assert load_private_key(pem).kid
    # The value, as docker compose passes it from .env, is what Settings reads.
    settings = settings_from_env(
        {
            "ORDERSAGA_MODE": "production",
            "DATABASE_URL": "postgresql://u:p@db/x",
            "TEMPORAL_ADDRESS": "temporal:7233",
            "ORDERSAGA_JWT_PRIVATE_KEYS": match[1],
            "ORDERSAGA_ADMIN_EMAIL": "admin@shop.example.com",
            "ORDERSAGA_MAIL_FROM": "orders@shop.example.com",
        }
    )
    assert [k.get_secret_value() for k in settings.jwt_private_keys] == [pem]


def test_every_repository_path_the_guide_names_exists() -> None:
    text = DOC.read_text()
    # Files (with an extension) and folders (with a trailing slash); this leaves
    # out kubectl's `deploy/<name>` resources.
    pattern = r"(?<![\w/])((?:deploy|docs|\.github)/[\w./{},*-]*(?:\.\w+|/|Dockerfile))"
    paths = set(re.findall(pattern, text))
    assert paths
    for path in paths:
        if "{" in path:  # deploy/environments/{dev,stage,prod}/values.yaml
            head, options, tail = re.split(r"[{}]", path)
            expanded = [head + option + tail for option in options.split(",")]
        else:
            expanded = [path]
        for candidate in expanded:
            if "<" in candidate or "*" in candidate:
                continue
            assert (REPO / candidate).exists(), candidate


def test_the_secret_keys_the_guide_creates_are_the_ones_the_chart_reads() -> None:
    keys = load_yaml(REPO / "deploy" / "helm" / "ordersaga" / "values.yaml")["secrets"]["keys"]
    text = DOC.read_text()
    for key in ("databaseUrl", "jwtPrivateKeys", "adminPassword"):
        assert f"--from-literal={keys[key]}=" in text


# --- from an empty cluster ------------------------------------------------------------


def commands(text: str) -> list[str]:
    """The guide's shell lines, continuation lines joined, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()]


def external_secrets(env: str) -> set[str]:
    """Secrets an environment's pods need that the chart does not create."""
    from helm_python.chart import Chart

    from tests.support.deploy_support import CHART, environment_values, yaml_documents

    with Chart.load(CHART) as chart:
        files = chart.render(environment_values(env), name="ordersaga", namespace=env)
    docs = [
        d for path, text in files.items() if path.endswith(".yaml") for d in yaml_documents(text)
    ]
    made = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    needed: set[str] = set()
    for doc in docs:
        if doc["kind"] == "Ingress":
            needed |= {t["secretName"] for t in doc["spec"].get("tls", [])}
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        needed |= {s["name"] for s in pod.get("imagePullSecrets", [])}
        needed |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        for c in pod["containers"] + pod.get("initContainers", []):
            for var in c.get("env", []):
                if "valueFrom" in var:
                    needed.add(var["valueFrom"]["secretKeyRef"]["name"])
    return needed - made


def test_the_guide_creates_every_namespace_and_secret_before_installing() -> None:
    from tests.support.deploy_support import ENVIRONMENTS, argocd_app

    lines = commands(DOC.read_text())

    def first(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, pattern
        return found[0]

    install = min(first(r"^helm upgrade --install"), first(r"kubectl apply -n argocd"))
    for env in ENVIRONMENTS:
        namespace = argocd_app(env)["spec"]["destination"]["namespace"]
        created = first(rf"^kubectl create namespace {namespace}$")
        for secret in external_secrets(env):
            made = first(rf"create secret [\w-]+ {secret}\b")
            # Secrets go into a namespace, so namespaces come first.
            assert created < made < install, (env, secret)


def test_the_guide_creates_the_temporal_namespaces_of_self_hosted_environments() -> None:
    from tests.support.deploy_support import ENVIRONMENTS, environment_values

    lines = commands(DOC.read_text())
    for env in ENVIRONMENTS:
        temporal = environment_values(env)["temporal"]
        if ".tmprl.cloud" in temporal["address"]:
            continue  # Temporal Cloud namespaces are made in Cloud
        assert any(
            line.startswith(f"temporal operator namespace create -n {temporal['namespace']} ")
            for line in lines
        ), env


def test_the_guide_has_a_cloud_install_for_mtls_and_for_an_api_key() -> None:
    installs = [line for line in commands(DOC.read_text()) if "values-temporal-cloud.yaml" in line]
    mtls = [line for line in installs if ".tmprl.cloud:7233" in line]
    api_key = [
        line
        for line in installs
        if "temporal.apiKey.enabled=true" in line and ".api.temporal.io:7233" in line
    ]
    assert mtls and api_key


def test_the_settings_table_lists_the_worker_graceful_shutdown() -> None:
    table_rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    assert any("`ORDERSAGA_WORKER_GRACEFUL_SHUTDOWN_SECONDS`" in row for row in table_rows)
