"""The image recipe: deploy/Dockerfile and .dockerignore.

No Docker engine runs here, so the image is never built; the tests check the
recipe with hadolint, check what it promises (lock file, non-root user, one
entry point), and build the wheel from exactly the files the Dockerfile copies.
"""

from __future__ import annotations

import fnmatch
import shlex
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.support.deploy_support import DEPLOY, REPO, tool

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            result.append([])
        if result:
            result[-1].append((word, rest))
    return result


def context_copies() -> list[str]:
    """Sources the build copies from the build context (not from other stages)."""
    sources = []
    for word, rest in instructions():
        if word == "COPY" and "--from=" not in rest:
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            sources.extend(args[:-1])
    return sources


def wheel_packages() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages: list[str] = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_would_catch_a_bad_recipe(tmp_path: Path) -> None:
    # Guards the test above against a hadolint that passes everything.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app && pip install x\n")
    result = subprocess.run([tool("hadolint"), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the `latest` tag


def test_multi_stage_build_from_the_lock_file() -> None:
    build, runtime = stages()
    build_runs = " ".join(rest for word, rest in build if word == "RUN")
    assert "uv sync --frozen --no-dev" in build_runs, "dependencies must come from uv.lock"
    assert "--no-editable" in build_runs, "the runtime stage must not need the source tree"
    assert "uv.lock" in context_copies()
    # The runtime stage takes the built venv and nothing from the context.
    runtime_copies = [rest for word, rest in runtime if word == "COPY"]
    assert runtime_copies and all("--from=build" in rest for rest in runtime_copies)


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    runtime = stages()[-1]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users, "the runtime stage must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot needs a numeric, non-zero UID"


def test_one_entry_point_and_the_process_chosen_by_the_command() -> None:
    runtime = dict(stages()[-1])
    assert runtime["ENTRYPOINT"] == '["ordersaga"]'
    assert runtime["CMD"].startswith('["api"')
    assert "ORDERSAGA_MODE=production" in runtime["ENV"]


def test_every_package_of_the_wheel_is_copied() -> None:
    copied = {src.rstrip("/") for src in context_copies()}
    missing = set(wheel_packages()) - copied
    assert not missing, f"deploy/Dockerfile does not COPY {sorted(missing)}"


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.removeprefix("**/"))
        for pattern in patterns
    )


def test_dockerignore_keeps_data_venvs_tests_and_caches_out() -> None:
    patterns = dockerignore_patterns()
    for path in (".ordersaga", ".venv", ".tools", "tests", ".git", ".env", ".mypy_cache"):
        assert ignored(path, patterns), f"{path} would be sent to the Docker build"
    assert ignored("core/__pycache__", patterns)


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = dockerignore_patterns()
    for source in context_copies():
        assert not ignored(source.rstrip("/"), patterns), f"{source} is copied but ignored"


@pytest.mark.timeout(120)
def test_the_copied_files_build_a_wheel_with_the_migrations(tmp_path: Path) -> None:
    """What the image installs: the wheel built from the Dockerfile's COPY set alone."""
    context = tmp_path / "context"
    context.mkdir()
    for source in context_copies():
        src = REPO / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, context / source)
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    result = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(context)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "core/migrations/env.py" in names
    assert "core/migrations/script.py.mako" in names
    assert any(n.startswith("core/migrations/versions/") and n.endswith(".py") for n in names)
    assert "ordersaga = tooling.cli:main" in scripts
