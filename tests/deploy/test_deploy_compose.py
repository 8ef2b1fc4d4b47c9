"""docker-compose.yml: valid Compose, and the stack it promises.

No Docker engine runs here: the file is validated against the Compose
specification's JSON schema (vendored by check-jsonschema, so offline), and
its structure and settings are checked as compose would resolve them.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from tests.support.deploy_support import (
    REPO,
    SEARCH_ATTRIBUTES,
    fresh_pem,
    interpolate_tree,
    load_yaml,
    setting_names,
    settings_from_env,
    tool,
)

COMPOSE = REPO / "docker-compose.yml"
# Compose stops unless .env gives each: the secrets, and the two addresses
# production mode refuses to default (no placeholder at ordersaga.dev).
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD",
    "TEMPORAL_DB_PASSWORD",
    "ORDERSAGA_JWT_PRIVATE_KEYS",
    "ORDERSAGA_ADMIN_PASSWORD",
    "ORDERSAGA_ADMIN_EMAIL",
    "ORDERSAGA_MAIL_FROM",
}
ORDERSAGA_SERVICES = ("search-attributes", "migrate", "auth", "api", "worker")
ONE_SHOT = ("temporal-schema", "temporal-namespace", "search-attributes", "migrate")


@pytest.fixture(scope="module")
def secrets_env() -> dict[str, str]:
    return {
        "POSTGRES_PASSWORD": "app-db-pw",
        "TEMPORAL_DB_PASSWORD": "temporal-db-pw",
        "ORDERSAGA_ADMIN_PASSWORD": "admin-pw-123",
        "ORDERSAGA_JWT_PRIVATE_KEYS": json.dumps([fresh_pem()]),
        "ORDERSAGA_ADMIN_EMAIL": "admin@shop.example.com",
        "ORDERSAGA_MAIL_FROM": "orders@shop.example.com",
    }


@pytest.fixture(scope="module")
def compose(secrets_env: dict[str, str]) -> dict[str, Any]:
    """The file as compose resolves it with the secrets given."""
    resolved: dict[str, Any] = interpolate_tree(load_yaml(COMPOSE), secrets_env)
    return resolved


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    """The Compose specification's schema as check-jsonschema vendors it (offline)."""
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text()
    )
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def compose_errors(tree: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in compose_validator().iter_errors(tree)]


def test_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    # The file as written, with the check-jsonschema command a developer would run...
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # ...and once interpolated, as the engine receives it.
    assert compose_errors(compose) == []


def test_the_schema_check_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    misspelt = copy.deepcopy(compose)
    misspelt["services"]["worker"]["stop_grace"] = misspelt["services"]["worker"].pop(
        "stop_grace_period"
    )
    assert compose_errors(misspelt)
    unknown_condition = copy.deepcopy(compose)
    unknown_condition["services"]["api"]["depends_on"]["auth"]["condition"] = "service_happy"
    assert compose_errors(unknown_condition)


def test_the_whole_stack_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {name: svc.get("image", "") for name, svc in services.items()}
    assert images["postgres"].startswith("postgres:")
    assert images["temporal-postgresql"].startswith("postgres:")
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "temporal-postgresql"
    for name in ORDERSAGA_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["auth"]["command"][0] == "auth"
    assert services["api"]["command"][0] == "api"
    assert services["worker"]["command"] == ["worker"]
    assert services["search-attributes"]["command"] == ["register-search-attributes"]
    assert "ordersaga migrate" in services["migrate"]["command"][0]


def test_every_up_bootstraps_the_admin_at_most_once(compose: dict[str, Any]) -> None:
    """`create-admin` would reset the admin's password on every `up`."""
    lines = [line.strip() for line in compose["services"]["migrate"]["command"][0].splitlines()]
    assert [line for line in lines if line] == ["ordersaga migrate", "ordersaga bootstrap-admin"]


def duration_seconds(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(
        float(amount) * units[unit] for amount, unit in re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    )


def test_workers_drain_a_charge_before_compose_kills_them(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    settings = settings_from_env({k: str(v) for k, v in worker["environment"].items()})
    assert settings.worker_graceful_shutdown_seconds >= settings.payment_deadline_seconds
    assert duration_seconds(worker["stop_grace_period"]) > settings.worker_graceful_shutdown_seconds


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest", f"{name} uses an unpinned image {image!r}"


def test_two_worker_replicas_without_host_ports(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "ports" not in worker, "two replicas cannot bind the same host port"
    assert "container_name" not in worker


def test_every_dependency_waits_on_health_or_completion(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends_on.items():
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
            else:
                assert condition == "service_completed_successfully", (name, target)
                assert target in ONE_SHOT, f"{target} is not a one-shot job"


def test_long_running_processes_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "temporal-postgresql", "temporal", "auth", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in ONE_SHOT:
        assert "healthcheck" not in services[name]
        assert services[name]["restart"].startswith("on-failure"), name


def test_startup_order(compose: dict[str, Any]) -> None:
    def needs(name: str) -> dict[str, str]:
        deps = compose["services"][name].get("depends_on", {})
        return {target: spec["condition"] for target, spec in deps.items()}

    assert needs("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert needs("temporal-namespace") == {"temporal": "service_healthy"}
    assert needs("search-attributes") == {"temporal-namespace": "service_completed_successfully"}
    assert needs("migrate") == {"postgres": "service_healthy"}
    for name in ("api", "worker"):
        assert needs(name)["migrate"] == "service_completed_successfully"
        assert needs(name)["search-attributes"] == "service_completed_successfully"
        assert needs(name)["auth"] == "service_healthy"  # tokens are verified from its JWKS


def test_healthchecks_probe_readyz_on_the_process_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"auth": "8001", "api": "8000", "worker": "9000"}
    for name, port in expected.items():
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in probe, name
    assert services["auth"]["command"][-1] == "8001"
    assert services["api"]["command"][-1] == "8000"
    assert services["worker"]["environment"]["ORDERSAGA_WORKER_HEALTH_PORT"] == "9000"


def test_required_secrets_stop_compose_when_missing(secrets_env: dict[str, str]) -> None:
    tree = load_yaml(COMPOSE)
    required = set(re.findall(r"\$\{([A-Z_]+):\?", json.dumps(tree)))
    assert required == REQUIRED_SECRETS
    for name in REQUIRED_SECRETS:
        without = {k: v for k, v in secrets_env.items() if k != name}
        with pytest.raises(KeyError, match=name):
            interpolate_tree(tree, without)


def test_no_secret_is_written_into_the_file() -> None:
    raw = load_yaml(COMPOSE)
    secretish = re.compile(r"PASSWORD|PWD|SECRET|PRIVATE_KEYS|API_KEY")
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secretish.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (name, key)


@pytest.mark.parametrize("name", ORDERSAGA_SERVICES)
def test_each_ordersaga_process_gets_valid_production_settings(
    compose: dict[str, Any], name: str
) -> None:
    env = {k: str(v) for k, v in compose["services"][name]["environment"].items()}
    unknown = set(env) - setting_names()
    assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"
    settings = settings_from_env(env)  # raises if production mode is not satisfied
    assert settings.mode == "production"
    services = compose["services"]
    assert settings.database_url is not None
    assert urlsplit(settings.database_url).hostname in services
    assert settings.temporal_address is not None
    assert settings.temporal_address.split(":")[0] in services
    if name == "auth":
        assert len(settings.jwt_private_keys) == 1
    else:
        assert settings.jwt_private_keys == [], "only the auth service holds signing keys"
    if name in ("api", "worker"):
        assert settings.serve_auth is False
        assert settings.jwks_url is not None
        assert urlsplit(settings.jwks_url).hostname == "auth"


def test_temporal_gets_a_namespace_and_the_search_attributes_job(
    compose: dict[str, Any],
) -> None:
    namespace_job = compose["services"]["temporal-namespace"]["command"][0]
    assert "namespace create -n default" in namespace_job
    env = compose["services"]["search-attributes"]["environment"]
    assert env["TEMPORAL_NAMESPACE"] == "default"
    # The job registers the saga's attributes; their names live in one place.
    from workflows import search_attributes

    source = Path(search_attributes.__file__).read_text()
    for attribute in SEARCH_ATTRIBUTES:
        assert attribute in source
