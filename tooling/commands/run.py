"""``ordersaga dev``, ``api``, ``auth`` and ``worker``: the commands that run a process."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.settings import Settings
from tooling.commands.common import CliError, join_stack, require_dev_dependencies

if TYPE_CHECKING:
    from tooling.devstack_config import DevOptions


def dev_options(settings: Settings, args: argparse.Namespace) -> DevOptions:
    from tooling.devstack_config import DevOptions

    return DevOptions(
        data_dir=settings.data_dir,
        api_port=args.api_port or settings.api_port,
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        smtp_port=args.smtp_port or settings.smtp_port,
        worker_port=args.worker_port or settings.worker_health_port or 9000,
        api_metrics_port=(
            settings.api_metrics_port if args.api_metrics_port is None else args.api_metrics_port
        ),
        run_worker=not args.no_worker,
    )


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.is_dev:
        raise CliError(
            "`ordersaga dev` is the development stack; it does not run with "
            "ORDERSAGA_MODE=production",
            exit_code=2,
        )
    require_dev_dependencies("dev")
    from tooling.devstack import run_dev
    from tooling.processes import ProcessError

    try:
        return run_dev(settings, dev_options(settings, args))
    except ProcessError as err:
        raise CliError(str(err), err.exit_code) from None


def _serve(
    app_factory: Callable[[Settings], object],
    settings: Settings,
    host: str,
    ports: tuple[int, int],
    what: str,
) -> int:
    from fastapi import FastAPI

    from api.serve import serve
    from tooling.processes import Port, ProcessError, check_ports

    port, metrics_port = ports
    wanted = [Port(port, what, "--port")]
    if metrics_port:
        wanted.append(Port(metrics_port, f"{what} metrics", "--metrics-port"))
    try:
        check_ports(wanted, host=host)
    except ProcessError as err:
        raise CliError(str(err), err.exit_code) from None
    app = app_factory(settings)
    assert isinstance(app, FastAPI)
    asyncio.run(serve(app, host=host, port=port, metrics_port=metrics_port))
    return 0


def _default_host(settings: Settings) -> str:
    # Deployments run in containers, reached from outside; dev stays on this machine.
    return "127.0.0.1" if settings.is_dev else "0.0.0.0"


def _metrics_port(args: argparse.Namespace, default: int) -> int:
    return default if args.metrics_port is None else int(args.metrics_port)


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from api.main import create_app

    settings = join_stack(settings, need_temporal=True)
    ports = (args.port or settings.api_port, _metrics_port(args, settings.api_metrics_port))
    return _serve(create_app, settings, args.host or _default_host(settings), ports, "API")


def cmd_auth(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth.app import create_auth_app

    settings = join_stack(settings)
    ports = (args.port or settings.auth_port, _metrics_port(args, settings.auth_metrics_port))
    return _serve(create_auth_app, settings, args.host or _default_host(settings), ports, "auth")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker.main import run_worker

    settings = join_stack(settings, need_temporal=True)
    return asyncio.run(run_worker(settings))
