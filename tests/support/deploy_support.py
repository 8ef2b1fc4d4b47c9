"""Helpers for the deployment-file tests: paths, YAML, and settings from an env."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "ordersaga"
ENVIRONMENTS = ("dev", "stage", "prod")
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"

# The search attributes the saga upserts (workflows/search_attributes.py).
SEARCH_ATTRIBUTES = {
    "OrderStatus": "Keyword",
    "CustomerId": "Keyword",
    "OrderTotal": "Double",
    "NeedsAttention": "Bool",
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, maps merged key by key, as Helm merges values."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def argocd_app(env: str) -> dict[str, Any]:
    app: dict[str, Any] = load_yaml(DEPLOY / "argocd" / f"{env}.yaml")
    return app


def environment_values(env: str) -> dict[str, Any]:
    """An environment's values as Argo CD gives them to Helm: the values file,
    then the Application's own ``valuesObject`` on top."""
    values: dict[str, Any] = load_yaml(DEPLOY / "environments" / env / "values.yaml")
    helm = argocd_app(env)["spec"]["source"]["helm"]
    return deep_merge(values, helm.get("valuesObject", {}))


def fresh_pem() -> str:
    """A new Ed25519 private key in PEM, made per test so none lives in the repo."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def tool(name: str) -> str:
    """A command-line tool installed into the project's venv by uv.lock."""
    path = VENV_BIN / name
    assert path.exists(), f"{name} is missing from {VENV_BIN}; run `make install`"
    return str(path)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings exactly as a process started with only ``env`` would read them."""
    with mock.patch.dict(os.environ, dict(env), clear=True):
        return Settings(_env_file=None)  # type: ignore[call-arg]


def setting_names() -> set[str]:
    """Every environment variable name Settings reads (and the contract's)."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        names.add(f"ORDERSAGA_{field_name.upper()}")
        alias = field.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            names.update(str(choice).upper() for choice in alias.choices)
    return names


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Docker Compose's variable interpolation, enough for this repository.

    ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` (which raises
    KeyError with the message when VAR is unset or empty); ``$$`` is a
    literal ``$``.
    """

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name, "")
        if op == ":?" and not value:
            raise KeyError(f"{name}: {arg}")
        if op == ":-" and not value:
            return arg
        return value

    parts = text.split("$$")
    return "$".join(_INTERPOLATION.sub(replace, part) for part in parts)


def interpolate_tree(tree: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string in a parsed Compose file, as Compose does after parsing."""
    if isinstance(tree, str):
        return interpolate(tree, env)
    if isinstance(tree, dict):
        return {key: interpolate_tree(value, env) for key, value in tree.items()}
    if isinstance(tree, list):
        return [interpolate_tree(item, env) for item in tree]
    return tree


def yaml_documents(text: str) -> Iterator[dict[str, Any]]:
    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc
