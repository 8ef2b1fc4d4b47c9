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
import asyncio
import contextlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import EmailStr, TypeAdapter, ValidationError

from core.settings import Settings

if TYPE_CHECKING:
    from tooling.devstack import DevOptions

log = logging.getLogger("ordersaga.cli")


class CliError(Exception):
    """A one-line message for the terminal, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- settings -----------------------------------------------------------------


def settings_error(err: ValidationError) -> str:
    """Pydantic's report in one line: the field and the reason, never the value."""
    parts = []
    for error in err.errors(include_url=False, include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def load_settings(data_dir: Path | None) -> Settings:
    try:
        settings = Settings()
    except ValidationError as err:
        raise CliError(settings_error(err), exit_code=2) from None
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def join_stack(
    settings: Settings, *, need_database: bool = True, need_temporal: bool = False
) -> Settings:
    """Pin the database and Temporal of a running dev stack when they are not configured."""
    from core.stack_file import read_stack_file

    stack = read_stack_file(settings.data_dir)
    update: dict[str, object] = {}
    if stack is not None:
        if not settings.database_url:
            update["database_url"] = stack.database_url
        if not settings.temporal_address:
            update["temporal_address"] = stack.temporal_address
        if "smtp_port" not in settings.model_fields_set:
            update["smtp_port"] = stack.smtp_port
    settings = settings.model_copy(update=update)
    missing = ["DATABASE_URL"] if need_database and not settings.database_url else []
    if need_temporal and not settings.temporal_address:
        missing.append("TEMPORAL_ADDRESS")
    if missing:
        names = " and ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        raise CliError(
            f"{names} {verb} not set and no dev stack is running in {settings.data_dir}; "
            f"start one with `ordersaga dev` (same --data-dir) or set {names}",
            exit_code=2,
        )
    return settings


def _database_error(err: Exception) -> CliError:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CliError(f"database error: {first_line}")


# --- commands -------------------------------------------------------------------


def dev_options(settings: Settings, args: argparse.Namespace) -> DevOptions:
    from tooling.devstack import DevOptions

    return DevOptions(
        data_dir=settings.data_dir,
        api_port=args.api_port or settings.api_port,
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        smtp_port=args.smtp_port or settings.smtp_port,
        worker_port=args.worker_port or settings.worker_health_port or 9000,
        run_worker=not args.no_worker,
    )


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.devstack import StackError, run_dev

    if not settings.is_dev:
        raise CliError(
            "`ordersaga dev` is the development stack; it does not run with "
            "ORDERSAGA_MODE=production",
            exit_code=2,
        )
    try:
        return run_dev(settings, dev_options(settings, args))
    except StackError as err:
        raise CliError(str(err), err.exit_code) from None


def _serve(
    app_factory: Callable[[Settings], object], settings: Settings, host: str, port: int, what: str
) -> int:
    import uvicorn

    from tooling.devstack import Port, StackError, check_ports

    try:
        check_ports([Port(port, what, "--port")], host=host)
    except StackError as err:
        raise CliError(str(err), err.exit_code) from None
    # log_config=None: uvicorn's loggers go through ours (text in dev, JSON otherwise).
    uvicorn.run(app_factory(settings), host=host, port=port, log_config=None)  # type: ignore[arg-type]
    return 0


def _default_host(settings: Settings) -> str:
    # Deployments run in containers, reached from outside; dev stays on this machine.
    return "127.0.0.1" if settings.is_dev else "0.0.0.0"


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from api.main import create_app

    settings = join_stack(settings, need_temporal=True)
    port = args.port or settings.api_port
    return _serve(create_app, settings, args.host or _default_host(settings), port, "API")


def cmd_auth(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth.app import create_auth_app

    settings = join_stack(settings)
    port = args.port or settings.auth_port
    return _serve(create_auth_app, settings, args.host or _default_host(settings), port, "auth")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker.main import run_worker

    settings = join_stack(settings, need_temporal=True)
    return asyncio.run(run_worker(settings))


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from core.migrate import upgrade

    settings = join_stack(settings)
    assert settings.database_url is not None
    try:
        upgrade(settings.database_url)
    except Exception as err:  # alembic and the driver raise many kinds
        raise _database_error(err) from None
    print("ordersaga: the database schema is up to date")
    return 0


async def _with_sessions(settings: Settings, work: Callable[..., object]) -> object:
    from core.db import create_engine, create_session_factory

    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        result = work(create_session_factory(engine))
        return await result if inspect.isawaitable(result) else result
    finally:
        await engine.dispose()


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.seed import DEMO_PRODUCTS, seed_catalog

    settings = join_stack(settings)
    try:
        created = asyncio.run(_with_sessions(settings, seed_catalog))
    except Exception as err:  # the driver's errors, told in one line
        raise _database_error(err) from None
    assert isinstance(created, int)
    kept = len(DEMO_PRODUCTS) - created
    print(f"ordersaga: demo catalog seeded: {created} new products, {kept} already there")
    return 0


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth.accounts import WeakPassword, create_or_promote_admin

    try:
        email = TypeAdapter(EmailStr).validate_python(args.email)
    except ValidationError:
        raise CliError(f"not an email address: {args.email!r}", exit_code=2) from None
    settings = join_stack(settings)

    async def make(sessions: object) -> object:
        return await create_or_promote_admin(sessions, email, args.password)  # type: ignore[arg-type]

    try:
        asyncio.run(_with_sessions(settings, make))
    except WeakPassword as err:
        raise CliError(f"weak password: {err}", exit_code=2) from None
    except Exception as err:  # the driver's errors, told in one line
        raise _database_error(err) from None
    print(f"ordersaga: {email.lower()} is an admin")
    return 0


def cmd_register_search_attributes(settings: Settings, args: argparse.Namespace) -> int:
    from core.temporal import connect
    from tooling.devstack import StackError, ensure_search_attributes

    settings = join_stack(settings, need_database=False, need_temporal=True)

    async def register() -> list[str]:
        client = await connect(settings)
        return await ensure_search_attributes(client, settings.temporal_namespace)

    try:
        added = asyncio.run(register())
    except StackError as err:
        raise CliError(str(err)) from None
    except Exception as err:  # connection and RPC errors, told in one line
        raise CliError(f"cannot register search attributes: {err}") from None
    if added:
        print(f"ordersaga: registered search attributes: {', '.join(added)}")
    else:
        print("ordersaga: every search attribute is already registered")
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Check the invariants of tooling/audit.py; exit 1 on any violation."""
    from datetime import timedelta

    from core.temporal import connect
    from tooling.audit import AuditReport, run_audit

    settings = join_stack(settings, need_temporal=args.with_temporal)
    # No saga may stay pending longer than its charge may take, plus a margin
    # for the steps around it.
    stuck_after = timedelta(seconds=settings.payment_deadline_seconds) + timedelta(minutes=5)

    async def audit(sessions: object) -> AuditReport:
        temporal = await connect(settings) if args.with_temporal else None
        return await run_audit(sessions, temporal=temporal, stuck_after=stuck_after)  # type: ignore[arg-type]

    try:
        report = asyncio.run(_with_sessions(settings, audit))
    except Exception as err:  # the driver's and Temporal's errors, told in one line
        raise _database_error(err) from None
    assert isinstance(report, AuditReport)
    print(report.render())
    return 0 if report.ok else 1


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Measure the saga beside its ceilings on a fresh embedded stack; exit 1 if the books fail."""
    from dataclasses import replace

    from tooling.bench.processes import BenchError
    from tooling.bench.report import render
    from tooling.bench.run import QUICK, BenchConfig, run_bench

    config = QUICK if args.quick else BenchConfig()
    chosen = {
        name: value
        for name, value in (
            ("orders", args.orders),
            ("concurrency", args.concurrency),
            ("single_orders", args.single_orders),
            ("rate", args.rate),
            ("open_seconds", args.open_seconds),
        )
        if value is not None
    }
    config = replace(config, **chosen)
    try:
        report, out = run_bench(
            config, settings, data_dir=getattr(args, "data_dir", None), out=args.out
        )
    except BenchError as err:
        raise CliError(str(err), err.exit_code) from None
    print(render(report))
    print(f"\nordersaga: results written to {out}")
    return 0 if report.ok else 1


# --- parser -----------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range (1-65535): {port}")
    return port


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
        "--no-worker", action="store_true", help="start no worker (run `ordersaga worker` yourself)"
    )

    for name, command, what in (
        ("api", cmd_api, "run the API alone (default port: ORDERSAGA_API_PORT, 8000)"),
        ("auth", cmd_auth, "run the auth service alone (default port: ORDERSAGA_AUTH_PORT, 8001)"),
    ):
        p = add(name, command, what)
        p.add_argument("--port", type=_port, default=None)
        p.add_argument("--host", default=None, help="default 127.0.0.1 in dev, 0.0.0.0 otherwise")

    add("worker", cmd_worker, "run a Temporal worker on the orders task queue")
    add("migrate", cmd_migrate, "apply the database migrations")
    add("seed", cmd_seed, "load the demo catalog (idempotent)")
    admin = add("create-admin", cmd_create_admin, "create an admin account, or promote a user")
    admin.add_argument("email")
    admin.add_argument("--password", required=True)
    audit = add(
        "audit",
        cmd_audit,
        "check stock, money, notification and progress invariants (exit 1 on any violation)",
    )
    audit.add_argument(
        "--with-temporal",
        action="store_true",
        help="also check that every pending order has a running workflow",
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
