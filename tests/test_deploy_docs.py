"""docs/DEPLOY.md: its commands and paths are real."""

from __future__ import annotations

import json
import os
import re
import subprocess

from api.keys import load_private_key
from tests.deploy_support import REPO, VENV_BIN, load_yaml, settings_from_env

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
