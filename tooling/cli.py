"""The ``ordersaga`` command: the dev stack, each process alone, and admin chores.

Every command reads its settings from the environment (and ``.env``) and takes
``--data-dir``. Beside a running ``ordersaga dev`` with the same data
directory, a command joins that stack: it uses its database, Temporal server,
SMTP sink and signing key.

Exit codes: 0 done, 1 failed while running, 2 the invocation or the settings
are wrong (the message says what to change), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core.settings import Settings
from tooling.commands.admin import (
    cmd_audit,
    cmd_bench,
    cmd_bench_median,
    cmd_bootstrap_admin,
    cmd_create_admin,
    cmd_migrate,
    cmd_register_search_attributes,
    cmd_seed,
)
from tooling.commands.common import CliError, load_settings
from tooling.commands.run import cmd_api, cmd_auth, cmd_dev, cmd_worker

log = logging.getLogger("ordersaga.cli")


# --- parser -----------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range (1-65535): {port}")
    return port


def _metrics_port_arg(text: str) -> int:
    # 0 is allowed here: it turns the metrics page off.
    return 0 if text.strip() == "0" else _port(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
    return value


Command = Callable[[Settings, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: a --data-dir given before the command must not be reset by the
    # sub-parser's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="the dev stack's data directory (default: ORDERSAGA_DATA_DIR or .ordersaga)",
    )
    parser = argparse.ArgumentParser(
        prog="ordersaga",
        description="E-commerce order backend whose checkout is a durable Temporal saga.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, command: Command, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(handler=command)
        return p

    dev = add("dev", cmd_dev, "run the whole stack (PostgreSQL, Temporal, SMTP sink, worker, API)")
    dev.add_argument(
        "--api-port", type=_port, default=None, help="default: ORDERSAGA_API_PORT, 8000"
    )
    dev.add_argument("--temporal-port", type=_port, default=7233, help="Temporal's gRPC port")
    dev.add_argument("--ui-port", type=_port, default=8233, help="the Temporal Web UI")
    dev.add_argument(
        "--smtp-port", type=_port, default=None, help="default: ORDERSAGA_SMTP_PORT, 8025"
    )
    dev.add_argument(
        "--worker-port",
        type=_port,
        default=None,
        help="the worker's /healthz, /readyz and /metrics (default: 9000)",
    )
    dev.add_argument(
        "--api-metrics-port",
        type=_metrics_port_arg,
        default=None,
        help="the API's /metrics (default: ORDERSAGA_API_METRICS_PORT, 9100; 0 = none)",
    )
    dev.add_argument(
        "--no-worker", action="store_true", help="start no worker (run `ordersaga worker` yourself)"
    )

    for name, command, what in (
        ("api", cmd_api, "run the API alone (default port: ORDERSAGA_API_PORT, 8000)"),
        ("auth", cmd_auth, "run the auth service alone (default port: ORDERSAGA_AUTH_PORT, 8001)"),
    ):
        p = add(name, command, what)
        p.add_argument("--port", type=_port, default=None)
        p.add_argument(
            "--metrics-port",
            type=_metrics_port_arg,
            default=None,
            help=f"/metrics, apart from the public port (default: ORDERSAGA_{name.upper()}"
            f"_METRICS_PORT, {9100 if name == 'api' else 9101}; 0 = no metrics)",
        )
        p.add_argument("--host", default=None, help="default 127.0.0.1 in dev, 0.0.0.0 otherwise")

    add("worker", cmd_worker, "run a Temporal worker on the orders task queue")
    add("migrate", cmd_migrate, "apply the database migrations")
    add("seed", cmd_seed, "load the demo catalog (idempotent)")
    admin = add(
        "create-admin",
        cmd_create_admin,
        "create an admin account, or promote a user and set its password (explicit resets)",
    )
    admin.add_argument("email")
    admin.add_argument("--password", required=True)
    add(
        "bootstrap-admin",
        cmd_bootstrap_admin,
        "create ORDERSAGA_ADMIN_EMAIL as the first admin with ORDERSAGA_ADMIN_PASSWORD, "
        "only if no admin exists (safe on every deploy)",
    )
    audit = add(
        "audit",
        cmd_audit,
        "check stock, money, notification and progress invariants (exit 1 on any violation)",
    )
    audit.add_argument(
        "--with-temporal",
        action="store_true",
        help="also check that every order not yet final has a running workflow "
        "that agrees with the database on its status",
    )
    bench = add(
        "bench",
        cmd_bench,
        "benchmark the saga against its ceilings on a fresh embedded stack "
        "(exit 1 if the books do not balance)",
    )
    bench.add_argument(
        "--quick", action="store_true", help="a small run (under a minute) for a smoke test"
    )
    bench.add_argument(
        "--orders", type=_positive_int, default=None, help="requests per variant at --concurrency"
    )
    bench.add_argument(
        "--concurrency", type=_positive_int, default=None, help="requests in flight (default 16)"
    )
    bench.add_argument(
        "--single-orders",
        type=_positive_int,
        default=None,
        help="requests per variant at concurrency 1",
    )
    bench.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        help="open-loop orders per second (default: 70%% of the saga's closed-loop throughput)",
    )
    bench.add_argument(
        "--open-seconds", type=_positive_float, default=None, help="open-loop duration"
    )
    bench.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the JSON results (default: bench-results.json in the cwd, or in --data-dir)",
    )
    bench.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy flame graphs of the API and the worker during the saga's closed loop "
        "at C, into DIR (the run's figures are then disturbed)",
    )
    median = add(
        "bench-median",
        cmd_bench_median,
        "issue 16's targets judged on the median of several bench runs' JSON files",
    )
    median.add_argument(
        "runs", type=Path, nargs="+", metavar="RUN.json", help="files from ordersaga bench --out"
    )
    add(
        "register-search-attributes",
        cmd_register_search_attributes,
        "register the workflow's search attributes on a Temporal cluster (idempotent)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; from the console script (no ``argv``), exit the process too."""
    code = run(argv)
    if argv is None:
        exit_process(code)
    return code


def exit_process(code: int) -> None:
    """Exit with ``code``, skipping interpreter finalization once the Temporal SDK is loaded.

    The SDK's Rust core keeps threads that can call into Python while the
    interpreter finalizes; that sometimes aborts the process ("Fatal Python
    error: PyGILState_Release", exit -6) after the work finished cleanly, and
    the exit code would lie. Every client, worker and server has been shut
    down by now, so only the final flush is left to do.
    """
    if "temporalio.bridge.temporal_sdk_bridge" not in sys.modules:
        return  # the usual exit, through sys.exit in the console script
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe must not change the code
            stream.flush()
    os._exit(code)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run that command; the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "data_dir", None))
        from core.logging import configure_logging

        try:
            configure_logging(settings, process=args.command)
        except ValueError as err:
            raise CliError(f"log_level: {err}", exit_code=2) from None
        handler: Command = args.handler
        return handler(settings, args)
    except CliError as err:
        print(f"ordersaga: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
