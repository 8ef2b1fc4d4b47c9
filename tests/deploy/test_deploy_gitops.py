"""GitHub workflows, Argo CD applications and promotion by a one-line change.

The workflows are checked with actionlint and against the GitHub workflow
schema; the promote workflow's bump script is run for real on a copy of the
environment files.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helm_python.chart import Chart

from tests.support.deploy_support import (
    CHART,
    DEPLOY,
    ENVIRONMENTS,
    REPO,
    deep_merge,
    load_yaml,
    tool,
)

WORKFLOWS = REPO / ".github" / "workflows"
SHA = "3f1c2d4e5b6a79801234567890abcdef01234567"


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(WORKFLOWS / name)
    return loaded


def triggers(name: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    wf = workflow(name)
    on: dict[str, Any] = wf.get("on", wf.get(True))
    return on


def steps(name: str) -> list[dict[str, Any]]:
    (job,) = workflow(name)["jobs"].values()
    result: list[dict[str, Any]] = job["steps"]
    return result


# --- workflow files ----------------------------------------------------------------


def actionlint(*files: str) -> subprocess.CompletedProcess[str]:
    # With shellcheck, actionlint also checks the shell of every `run:` step.
    return subprocess.run(
        [tool("actionlint"), "-no-color", f"-shellcheck={tool('shellcheck')}", *files],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_workflows_pass_actionlint() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 3
    result = actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "right", "wrong", "finding"),
    [
        ("ci.yml", "runner.os", "runner.oss", "oss"),  # an expression typo
        (
            "promote.yml",
            "grep -c '^          tag: ' \"$file\"",
            "grep -c '^          tag: ' $file",
            "SC2086",
        ),
    ],
)
def test_actionlint_would_catch_a_broken_workflow(
    tmp_path: Path, name: str, right: str, wrong: str, finding: str
) -> None:
    text = (WORKFLOWS / name).read_text()
    assert right in text
    broken = tmp_path / ".github" / "workflows" / name
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(right, wrong))
    result = actionlint(str(broken))
    assert result.returncode != 0
    assert finding in result.stdout


def test_workflows_match_the_github_workflow_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_lints_and_tests_every_push() -> None:
    on = triggers("ci.yml")
    assert "push" in on and "pull_request" in on
    assert any(step.get("run") == "make test" for step in steps("ci.yml"))


def test_image_is_pushed_only_for_pushes_to_this_repository() -> None:
    """A fork's pull request from a branch named main must not publish an image."""
    (job,) = workflow("image.yml")["jobs"].values()
    guard = re.sub(r"\s+", " ", job["if"])
    # Each condition must be required (joined by &&) for a workflow_run.
    run_branch = guard.split("||", 1)[1] if "||" in guard else guard
    clauses = {c.strip(" ()") for c in run_branch.split("&&")}
    assert "github.event.workflow_run.event == 'push'" in clauses
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in clauses
    assert "github.event.workflow_run.conclusion == 'success'" in clauses


def jobs_with_package_write(name: str) -> list[dict[str, Any]]:
    wf = workflow(name)
    top = wf.get("permissions", {})
    found = []
    for job in wf["jobs"].values():
        permissions = job.get("permissions", top)
        if permissions == "write-all" or (
            isinstance(permissions, dict) and permissions.get("packages") == "write"
        ):
            found.append(job)
    return found


def test_actions_that_can_publish_packages_are_pinned_to_commits() -> None:
    checked = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in jobs_with_package_write(path.name):
            for step in job["steps"]:
                if "uses" in step:
                    action, _, ref = step["uses"].partition("@")
                    assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}: {step['uses']}"
                    checked += 1
    assert checked >= 4  # image.yml's checkout, buildx, login, build-push


def test_image_is_pushed_to_ghcr_with_the_commit_sha_and_latest() -> None:
    on = triggers("image.yml")
    assert on["workflow_run"]["branches"] == ["main"]
    assert on["workflow_run"]["workflows"] == ["CI"], "only commits that passed CI"
    (build,) = [
        s for s in steps("image.yml") if s.get("uses", "").startswith("docker/build-push-action@")
    ]
    assert build["with"]["file"] == "deploy/Dockerfile"
    assert build["with"]["push"] is True
    tags = [line.strip() for line in build["with"]["tags"].splitlines() if line.strip()]
    assert [t.rpartition(":")[2] for t in tags] == ["${{ env.COMMIT }}", "latest"]
    (name_step,) = [s for s in steps("image.yml") if s.get("id") == "name"]
    assert "ghcr.io/" in name_step["run"]
    (job,) = workflow("image.yml")["jobs"].values()
    assert "github.event.workflow_run.head_sha" in job["env"]["COMMIT"]
    assert workflow("image.yml")["permissions"]["packages"] == "write"


def test_promote_is_manual_and_opens_a_pull_request() -> None:
    inputs = triggers("promote.yml")["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == ["stage", "prod"]
    assert inputs["tag"]["required"] is True
    runs = "\n".join(s.get("run", "") for s in steps("promote.yml"))
    assert "gh pr create" in runs
    # Inputs reach scripts through the environment only (no expression splicing).
    assert "${{" not in runs


# --- promotion ------------------------------------------------------------------------


def bump_script() -> str:
    (bump,) = [s for s in steps("promote.yml") if s.get("id") == "bump"]
    script: str = bump["run"]
    return script


def run_bump(
    tmp_path: Path, environment: str, tag: str
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    workdir = tmp_path / "repo"
    shutil.copytree(DEPLOY / "argocd", workdir / "deploy" / "argocd")
    output = tmp_path / "github_output"
    output.touch()
    result = subprocess.run(
        ["bash", "-c", bump_script()],
        cwd=workdir,
        env={
            "ENVIRONMENT": environment,
            "TAG": tag,
            "GITHUB_OUTPUT": str(output),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, workdir / "deploy" / "argocd" / f"{environment}.yaml", output


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("environment", ["stage", "prod"])
def test_promotion_moves_the_chart_revision_and_the_image_together(
    tmp_path: Path, environment: str
) -> None:
    before = (DEPLOY / "argocd" / f"{environment}.yaml").read_text()
    result, changed, output = run_bump(tmp_path, environment, SHA)
    assert result.returncode == 0, result.stdout + result.stderr
    after = changed.read_text()
    assert len(changed_lines(before, after)) == 4  # two lines, each removed and added
    app = load_yaml(changed)
    source = app["spec"]["source"]
    assert source["targetRevision"] == SHA
    assert source["helm"]["valuesObject"]["image"]["tag"] == SHA
    assert f"file=deploy/argocd/{environment}.yaml" in output.read_text()
    # And the chart deploys that image everywhere.
    values = deep_merge(
        load_yaml(DEPLOY / "environments" / environment / "values.yaml"),
        source["helm"]["valuesObject"],
    )
    with Chart.load(CHART) as chart:
        files = chart.render(values, name="ordersaga", namespace=environment)
    rendered = "\n".join(files.values())
    assert f"ordersaga:{SHA}" in rendered
    assert "ordersaga:latest" not in rendered


@pytest.mark.parametrize(
    ("environment", "tag"),
    [
        ("prod", "latest"),
        ("stage", "latest"),
        ("prod", SHA[:7]),  # a short SHA names no single commit for sure
        ("prod", SHA.upper()),
        ("prod", 'x"; echo pwned; "'),
        ("prod", "$(id)"),
        ("prod", "-leading-dash"),
        ("prod", ""),
        ("dev", SHA),
        ("../prod", SHA),
    ],
)
def test_promotion_refuses_bad_input_and_changes_nothing(
    tmp_path: Path, environment: str, tag: str
) -> None:
    result, _, _ = run_bump(tmp_path, environment, tag)
    assert result.returncode != 0
    for env in ENVIRONMENTS:
        original = (DEPLOY / "argocd" / f"{env}.yaml").read_text()
        copy = tmp_path / "repo" / "deploy" / "argocd" / f"{env}.yaml"
        assert copy.read_text() == original


def test_promotion_checks_the_commit_is_on_main() -> None:
    runs = [s.get("run", "") for s in steps("promote.yml")]
    assert any("merge-base --is-ancestor" in run for run in runs)
    (checkout,) = [s for s in steps("promote.yml") if "checkout@" in s.get("uses", "")]
    assert checkout["with"]["fetch-depth"] == 0


@pytest.mark.parametrize("env", ["stage", "prod"])
def test_each_promoted_application_has_one_revision_and_one_tag_line(env: str) -> None:
    text = (DEPLOY / "argocd" / f"{env}.yaml").read_text()
    source = load_yaml(DEPLOY / "argocd" / f"{env}.yaml")["spec"]["source"]
    (revision,) = [line for line in text.splitlines() if line.startswith("    targetRevision: ")]
    (tag,) = [line for line in text.splitlines() if line.startswith("          tag: ")]
    assert revision.split(":", 1)[1].strip().strip('"') == source["targetRevision"]
    assert tag.split(":", 1)[1].strip().strip('"') == source["helm"]["valuesObject"]["image"]["tag"]
    # The values file leaves the tag to the Application.
    assert "tag" not in load_yaml(DEPLOY / "environments" / env / "values.yaml")["image"]


# --- Argo CD ------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_argocd_application_points_at_the_chart_and_its_values(env: str) -> None:
    app = load_yaml(DEPLOY / "argocd" / f"{env}.yaml")
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    assert app["kind"] == "Application"
    source = app["spec"]["source"]
    chart_dir = REPO / source["path"]
    assert chart_dir.resolve() == CHART.resolve()
    (values_file,) = source["helm"]["valueFiles"]
    resolved = (chart_dir / values_file).resolve()
    assert resolved == (DEPLOY / "environments" / env / "values.yaml").resolve()
    assert resolved.is_relative_to(REPO), "Argo CD reads value files inside the repository"
    assert app["spec"]["destination"]["namespace"] == f"ordersaga-{env}"
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is True


def test_the_app_of_apps_applies_the_promoted_applications_from_main() -> None:
    root = load_yaml(DEPLOY / "argocd" / "apps.yaml")
    source = root["spec"]["source"]
    assert source["targetRevision"] == "main"
    assert (REPO / source["path"]).resolve() == (DEPLOY / "argocd").resolve()
    assert root["spec"]["syncPolicy"]["automated"]["prune"] is True


def test_environments_are_isolated_by_namespace() -> None:
    namespaces = [
        load_yaml(DEPLOY / "argocd" / f"{env}.yaml")["spec"]["destination"]["namespace"]
        for env in ENVIRONMENTS
    ]
    assert len(set(namespaces)) == len(ENVIRONMENTS)
