"""The machine a run measured, so figures are never compared across machines by accident."""

from __future__ import annotations

import compileall
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from tooling.temporal_dev import temporal_binary


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    logical_cores: int
    physical_cores: int
    ram_gib: float
    os: str
    python: str
    temporal_cli: str


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _temporal_version() -> str:
    try:
        done = subprocess.run(
            [temporal_binary(), "--version"], capture_output=True, text=True, timeout=30
        )
    except Exception:  # a missing binary is reported by the stack itself
        return "temporal CLI: unknown"
    return done.stdout.strip() or "temporal CLI: unknown"


def describe_machine() -> Machine:
    return Machine(
        cpu_model=_cpu_model(),
        logical_cores=os.cpu_count() or 0,
        physical_cores=psutil.cpu_count(logical=False) or 0,
        ram_gib=psutil.virtual_memory().total / 1024**3,
        os=platform.platform(),
        python=platform.python_version(),
        temporal_cli=_temporal_version(),
    )


# The product's packages, as the image installs them.
PROJECT_PACKAGES = ("activities", "api", "core", "tooling", "workflows", "worker")


def compile_project_sources() -> None:
    """Write the .pyc of the product's own modules, whatever PYTHONDONTWRITEBYTECODE says."""
    root = Path(__file__).resolve().parents[2]
    for package in PROJECT_PACKAGES:
        compileall.compile_dir(root / package, quiet=1, workers=0)
