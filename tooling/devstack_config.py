"""What the dev stack is told and tells its children: options, ports and environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from tooling.processes import Port, ProcessError, python_module

LOCK_FILE = "dev.lock"
TEMPORAL_DB = "temporal.db"
TEMPORAL_LOG = "temporal.log"
STARTUP_TIMEOUT = 120.0  # seconds; the machine may be busy with other stacks


class StackError(ProcessError):
    """A one-line reason the stack cannot run. Exit code 2 means: fix the invocation."""


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    smtp_port: int = 8025
    # The worker's /healthz, /readyz and /metrics (saga outcome counters).
    worker_port: int = 9000
    # The API's /metrics, apart from its public port.
    api_metrics_port: int = 9100
    run_worker: bool = True


def ordersaga_argv(*args: str) -> list[str]:
    """Run a CLI command in a child with this interpreter (works with or without the script)."""
    return python_module("tooling.cli", *args, safe_path=False)


def dev_ports(settings: Settings, options: DevOptions) -> list[Port]:
    """The ports the stack will listen on, with the flag that changes each."""
    o = options
    ports = [
        Port(o.api_port, "API", "--api-port"),
        Port(o.smtp_port, "SMTP sink", "--smtp-port"),
    ]
    if o.api_metrics_port:
        ports.append(Port(o.api_metrics_port, "API metrics", "--api-metrics-port"))
    if o.run_worker:
        ports.append(Port(o.worker_port, "worker metrics", "--worker-port"))
    if not settings.temporal_address:
        ports += [
            Port(o.temporal_port, "Temporal", "--temporal-port"),
            Port(o.ui_port, "Temporal UI", "--ui-port"),
        ]
    return ports


def child_env(
    options: DevOptions,
    database_url: str,
    temporal_address: str,
    *,
    temporal_ui_url: str | None = None,
) -> dict[str, str]:
    """The worker's and the API's environment: this stack's servers, and ours otherwise.

    ``temporal_ui_url`` is the stack's own Temporal Web UI (its port may not
    be the default), so the progress API links each order's workflow there.
    """
    env = dict(os.environ)
    if temporal_ui_url is not None:
        env["ORDERSAGA_TEMPORAL_UI_URL"] = temporal_ui_url
    env.update(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=temporal_address,
        ORDERSAGA_DATA_DIR=str(options.data_dir),
        ORDERSAGA_SMTP_HOST="127.0.0.1",
        ORDERSAGA_SMTP_PORT=str(options.smtp_port),
        ORDERSAGA_API_PORT=str(options.api_port),
        ORDERSAGA_API_METRICS_PORT=str(options.api_metrics_port),
        ORDERSAGA_WORKER_HEALTH_PORT=str(options.worker_port),
        PYTHONUNBUFFERED="1",
    )
    # The ORDERSAGA_-prefixed spellings win over the plain ones; keep them in step.
    for name in ("DATABASE_URL", "TEMPORAL_ADDRESS"):
        env.pop(f"ORDERSAGA_{name}", None)
    return env


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
