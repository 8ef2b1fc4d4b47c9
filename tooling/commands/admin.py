"""One-shot chores: ``migrate``, ``seed``, ``create-admin``, ``bootstrap-admin``,
``register-search-attributes``, ``audit`` and ``bench``."""

from __future__ import annotations

import argparse
import asyncio

from pydantic import EmailStr, TypeAdapter, ValidationError

from core.settings import Settings
from tooling.commands.common import (
    CliError,
    database_error,
    join_stack,
    require_dev_dependencies,
    with_sessions,
)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from core.migrate import upgrade

    settings = join_stack(settings)
    assert settings.database_url is not None
    try:
        upgrade(settings.database_url)
    except Exception as err:  # alembic and the driver raise many kinds
        raise database_error(err) from None
    print("ordersaga: the database schema is up to date")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.seed import DEMO_PRODUCTS, seed_catalog

    settings = join_stack(settings)
    try:
        created = asyncio.run(with_sessions(settings, seed_catalog))
    except Exception as err:  # the driver's errors, told in one line
        raise database_error(err) from None
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
        asyncio.run(with_sessions(settings, make))
    except WeakPassword as err:
        raise CliError(f"weak password: {err}", exit_code=2) from None
    except Exception as err:  # the driver's errors, told in one line
        raise database_error(err) from None
    print(f"ordersaga: {email.lower()} is an admin")
    return 0


def cmd_bootstrap_admin(settings: Settings, args: argparse.Namespace) -> int:
    """Create ORDERSAGA_ADMIN_EMAIL as the first admin, only while no admin exists."""
    from api.auth.accounts import WeakPassword
    from tooling.admin_bootstrap import Outcome, bootstrap_admin

    if settings.admin_password is None:
        print("ordersaga: no ORDERSAGA_ADMIN_PASSWORD given; no administrator bootstrapped")
        return 0
    password = settings.admin_password.get_secret_value()
    try:
        email = TypeAdapter(EmailStr).validate_python(settings.admin_email)
    except ValidationError:
        raise CliError("ORDERSAGA_ADMIN_EMAIL is not an email address", exit_code=2) from None
    settings = join_stack(settings)

    async def make(sessions: object) -> object:
        return await bootstrap_admin(sessions, email, password)  # type: ignore[arg-type]

    try:
        outcome = asyncio.run(with_sessions(settings, make))
    except WeakPassword as err:
        raise CliError(f"weak password: {err}", exit_code=2) from None
    except Exception as err:  # the driver's errors, told in one line
        raise database_error(err) from None
    if outcome == Outcome.CREATED:
        print(f"ordersaga: {email.lower()} is the first admin")
    else:
        print("ordersaga: an admin exists already; nothing changed (create-admin resets one)")
    return 0


def cmd_register_search_attributes(settings: Settings, args: argparse.Namespace) -> int:
    from core.temporal import connect
    from tooling.processes import ProcessError
    from tooling.temporal_dev import ensure_search_attributes

    settings = join_stack(settings, need_database=False, need_temporal=True)

    async def register() -> list[str]:
        client = await connect(settings)
        return await ensure_search_attributes(client, settings.temporal_namespace)

    try:
        added = asyncio.run(register())
    except ProcessError as err:
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
        report = asyncio.run(with_sessions(settings, audit))
    except Exception as err:  # the driver's and Temporal's errors, told in one line
        raise database_error(err) from None
    assert isinstance(report, AuditReport)
    print(report.render())
    return 0 if report.ok else 1


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Measure the saga beside its ceilings on a fresh embedded stack; exit 1 if the books fail."""
    require_dev_dependencies("bench")
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
            config,
            settings,
            data_dir=getattr(args, "data_dir", None),
            out=args.out,
            profile_dir=args.profile,
        )
    except BenchError as err:
        raise CliError(str(err), err.exit_code) from None
    print(render(report))
    print(f"\nordersaga: results written to {out}")
    return 0 if report.ok else 1


def cmd_bench_median(_settings: Settings, args: argparse.Namespace) -> int:
    """Print each target of several runs and whether their median meets it."""
    from tooling.bench.median import render_median, targets_of

    try:
        runs = [targets_of(path) for path in args.runs]
        print(render_median(args.runs, runs))
    except ValueError as err:  # a file that is no run, or runs of other targets
        raise CliError(str(err), 2) from None
    return 0
