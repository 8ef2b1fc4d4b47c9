"""The ``ordersaga`` command: arguments, exit codes and the chores it runs on a real database."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory, sqlalchemy_url
from core.models import Product, Role, User
from tooling.cli import build_parser, main
from tooling.seed import DEMO_PRODUCTS
from workflows import search_attributes

ORDERSAGA = str(Path(sys.executable).parent / "ordersaga")

# Settings the tests set themselves; anything inherited would leak the developer's setup in.
_SETTINGS_ENV = ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("ORDERSAGA_") or name in _SETTINGS_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORDERSAGA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    # main() configures the root logger; give pytest its own back afterwards.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it: exit code and output."""
    return subprocess.run(
        [ORDERSAGA, *args],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- arguments ------------------------------------------------------------------


def test_data_dir_is_taken_before_or_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["--data-dir", "a", "migrate"]).data_dir == Path("a")
    assert parser.parse_args(["migrate", "--data-dir", "b"]).data_dir == Path("b")
    assert not hasattr(parser.parse_args(["migrate"]), "data_dir")


def test_dev_flags_have_the_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from tooling.commands.common import load_settings
    from tooling.commands.run import dev_options

    def options(*argv: str) -> tuple[int, int, int, int, bool]:
        args = build_parser().parse_args(["dev", *argv])
        o = dev_options(load_settings(None), args)
        return (o.api_port, o.temporal_port, o.ui_port, o.smtp_port, o.run_worker)

    assert options() == (8000, 7233, 8233, 8025, True)
    assert options("--api-port", "9000", "--ui-port", "9233", "--no-worker") == (
        9000,
        7233,
        9233,
        8025,
        False,
    )
    # The API and SMTP ports also follow the settings, so `make dev` can move them.
    monkeypatch.setenv("ORDERSAGA_API_PORT", "9100")
    monkeypatch.setenv("ORDERSAGA_SMTP_PORT", "2525")
    assert options()[:4] == (9100, 7233, 8233, 2525)
    assert options("--api-port", "9200")[0] == 9200


def test_dev_worker_serves_metrics_on_its_own_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from tooling.commands.common import load_settings
    from tooling.commands.run import dev_options

    def worker_port(*argv: str) -> int:
        return dev_options(
            load_settings(None), build_parser().parse_args(["dev", *argv])
        ).worker_port

    assert worker_port() == 9000
    assert worker_port("--worker-port", "9400") == 9400
    monkeypatch.setenv("ORDERSAGA_WORKER_HEALTH_PORT", "9500")
    assert worker_port() == 9500


def test_dev_serves_the_api_metrics_on_their_own_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from tooling.commands.common import load_settings
    from tooling.commands.run import dev_options

    def metrics_port(*argv: str) -> int:
        return dev_options(
            load_settings(None), build_parser().parse_args(["dev", *argv])
        ).api_metrics_port

    assert metrics_port() == 9100
    assert metrics_port("--api-metrics-port", "9400") == 9400
    assert metrics_port("--api-metrics-port", "0") == 0
    monkeypatch.setenv("ORDERSAGA_API_METRICS_PORT", "9500")
    assert metrics_port() == 9500


def test_dev_checks_the_worker_port_only_when_it_starts_a_worker(tmp_path: Path) -> None:
    from tooling.commands.common import load_settings
    from tooling.devstack_config import DevOptions, dev_ports

    def checked(**options: object) -> set[str]:
        chosen = DevOptions(data_dir=tmp_path, **options)  # type: ignore[arg-type]
        return {port.flag for port in dev_ports(load_settings(None), chosen)}

    assert "--worker-port" in checked(worker_port=9400)
    assert "--worker-port" not in checked(worker_port=9400, run_worker=False)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["no-such-command"],
        ["dev", "--api-port", "0"],
        ["dev", "--ui-port", "70000"],
        ["api", "--port", "http"],
        ["create-admin", "root@example.com"],  # --password is required
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage: ordersaga" in capsys.readouterr().err


def test_a_command_without_a_database_or_stack_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["migrate", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "DATABASE_URL is not set and no dev stack is running" in err
    assert "ordersaga dev" in err


# --- settings refusal ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["api", "worker", "migrate"])
def test_production_mode_without_secrets_refuses_in_one_line(command: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS_ENV}
    env["ORDERSAGA_MODE"] = "production"
    result = run_cli(command, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("ordersaga: outside dev mode these settings must be given")
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert "DATABASE_URL" in result.stderr and "ORDERSAGA_JWT_PRIVATE_KEYS" in result.stderr


def test_production_mode_refuses_the_development_admin_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDERSAGA_MODE", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.internal/ordersaga")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("ORDERSAGA_JWKS_URL", "https://auth.internal/.well-known/jwks.json")
    monkeypatch.setenv("ORDERSAGA_ADMIN_PASSWORD", "change-me-admin")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "ORDERSAGA_ADMIN_PASSWORD" in err
    assert "change-me-admin" not in err  # the message names the setting, never the value


def test_dev_refuses_to_run_in_production_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDERSAGA_MODE", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.internal/ordersaga")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("ORDERSAGA_JWKS_URL", "https://auth.internal/.well-known/jwks.json")
    monkeypatch.setenv("ORDERSAGA_ADMIN_EMAIL", "admin@shop.example.com")
    monkeypatch.setenv("ORDERSAGA_MAIL_FROM", "orders@shop.example.com")
    assert main(["dev"]) == 2
    assert "does not run with ORDERSAGA_MODE=production" in capsys.readouterr().err


# --- ports ------------------------------------------------------------------------------


def test_a_port_in_use_stops_dev_before_it_starts_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "stack"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = [str(free_port()) for _ in range(3)]
        code = main(
            [
                "dev",
                "--data-dir",
                str(data_dir),
                "--api-port",
                ports[0],
                "--temporal-port",
                ports[1],
                "--ui-port",
                str(port),
                "--smtp-port",
                ports[2],
            ]
        )
    assert code == 2
    assert capsys.readouterr().err == (
        f"ordersaga: port {port} (Temporal UI) is already in use; pass --ui-port\n"
    )
    assert not data_dir.exists()  # nothing was started, not even PostgreSQL


def test_the_same_port_twice_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    port = str(free_port())
    assert main(["dev", "--api-port", port, "--smtp-port", port]) == 2
    assert "given to both the API and the SMTP sink; pass --smtp-port" in capsys.readouterr().err


def test_api_on_a_port_in_use_exits_2(database_url: str, tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL=database_url, TEMPORAL_ADDRESS="127.0.0.1:1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("api", "--port", str(port), env=env)
    assert result.returncode == 2
    assert result.stderr == f"ordersaga: port {port} (API) is already in use; pass --port\n"


# --- database chores ------------------------------------------------------------------


@pytest.fixture
def scratch_database_url(database_url: str) -> Iterator[str]:
    """An empty database on the test server, dropped afterwards."""
    name = f"cli_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(sqlalchemy_url(database_url)).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrate_builds_the_schema_on_an_empty_database(
    scratch_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", scratch_database_url)
    assert main(["migrate"]) == 0
    assert "schema is up to date" in capsys.readouterr().out
    engine = create_engine(sqlalchemy_url(scratch_database_url))
    with engine.connect() as conn:
        tables = set(
            conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        )
    engine.dispose()
    assert {"users", "products", "orders", "caught_mail", "alembic_version"} <= tables
    assert main(["migrate"]) == 0  # again: nothing to do, still fine


def test_migrate_reports_an_unreachable_database_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:@/postgres?host={tmp_path}")
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ordersaga: database error: ")
    assert err.count("\n") == 1


async def _product_count(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Product)) or 0)


async def test_seed_is_idempotent(
    sessions: SessionFactory,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["seed"]) == 0
    assert f"{len(DEMO_PRODUCTS)} new products, 0 already there" in capsys.readouterr().out
    assert await _product_count(sessions) == len(DEMO_PRODUCTS)

    assert await asyncio.to_thread(main, ["seed"]) == 0
    assert f"0 new products, {len(DEMO_PRODUCTS)} already there" in capsys.readouterr().out
    assert await _product_count(sessions) == len(DEMO_PRODUCTS)


async def _user(sessions: SessionFactory, email: str) -> User | None:
    async with sessions() as session:
        user: User | None = await session.scalar(select(User).where(User.email == email))
        return user


async def test_create_admin_makes_an_admin_then_promotes_a_customer(
    sessions: SessionFactory,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.support.factories import create_user

    monkeypatch.setenv("DATABASE_URL", database_url)
    code = await asyncio.to_thread(
        main, ["create-admin", "Root@Example.com", "--password", "a-long-secret"]
    )
    assert code == 0
    assert "root@example.com is an admin" in capsys.readouterr().out
    admin = await _user(sessions, "root@example.com")
    assert admin is not None and admin.role == Role.ADMIN

    customer = await create_user(sessions, email="shopper@example.com")
    assert customer.role == Role.CUSTOMER
    code = await asyncio.to_thread(
        main, ["create-admin", "shopper@example.com", "--password", "another-secret"]
    )
    assert code == 0
    promoted = await _user(sessions, "shopper@example.com")
    assert promoted is not None and promoted.id == customer.id and promoted.role == Role.ADMIN


async def test_create_admin_refuses_bad_input_without_echoing_the_password(
    sessions: SessionFactory,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert (
        await asyncio.to_thread(main, ["create-admin", "root@example.com", "--password", "short"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("ordersaga: weak password: ") and "short" not in err.split(":", 2)[2]

    assert (
        await asyncio.to_thread(main, ["create-admin", "not-an-email", "--password", "long-enough"])
        == 2
    )
    assert "not an email address" in capsys.readouterr().err
    assert await _user(sessions, "root@example.com") is None


# --- Temporal ------------------------------------------------------------------------


async def test_register_search_attributes_creates_them_once(tmp_path: Path) -> None:
    # A server of its own, started without the attributes (the shared one has them).
    env_server = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        ui=False,
    )
    try:
        env = {k: v for k, v in os.environ.items() if k not in _SETTINGS_ENV}
        env["TEMPORAL_ADDRESS"] = env_server.client.service_client.config.target_host
        result = await asyncio.to_thread(run_cli, "register-search-attributes", env=env)
        assert result.returncode == 0, result.stderr
        names = sorted(key.name for key in search_attributes.ALL)
        assert f"registered search attributes: {', '.join(names)}" in result.stdout
        listed = await env_server.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert {name: listed.custom_attributes[name] for name in names} == {
            "CustomerId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
            "NeedsAttention": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
            "OrderStatus": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
            "OrderTotal": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
        }

        again = await asyncio.to_thread(run_cli, "register-search-attributes", env=env)
        assert again.returncode == 0, again.stderr
        assert "already registered" in again.stdout
    finally:
        await env_server.shutdown()


def test_register_search_attributes_without_a_server_fails_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS_ENV}
    env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli("register-search-attributes", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("ordersaga: cannot register search attributes")
    assert result.stderr.count("\n") == 1


# --- the README ----------------------------------------------------------------


def test_readme_starts_with_the_two_setup_commands_and_lists_every_setting() -> None:
    from pydantic import AliasChoices

    from core.settings import Settings

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == [
        "make dev",
        "make test",
    ]
    missing = []
    for name, field_ in Settings.model_fields.items():
        alias = field_.validation_alias
        # Settings read under a tool-wide name are documented under it.
        env = alias.choices[-1] if isinstance(alias, AliasChoices) else f"ORDERSAGA_{name.upper()}"
        if f"`{env}`" not in readme:
            missing.append(env)
    assert missing == [], "add these settings to the README's table"


# --- the first administrator, bootstrapped once -------------------------------------


def _bootstrap(
    monkeypatch: pytest.MonkeyPatch, database_url: str, email: str, password: str
) -> int:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ORDERSAGA_ADMIN_EMAIL", email)
    monkeypatch.setenv("ORDERSAGA_ADMIN_PASSWORD", password)
    return main(["bootstrap-admin"])


async def test_bootstrap_admin_creates_the_first_admin_once_and_never_resets_it(
    sessions: SessionFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every deploy runs it; an admin's own password change must survive them all."""
    from api.auth.accounts import create_or_promote_admin
    from api.auth.passwords import verify_password

    code = await asyncio.to_thread(
        _bootstrap, monkeypatch, database_url, "root@example.com", "first-secret-1"
    )
    assert code == 0
    admin = await _user(sessions, "root@example.com")
    assert admin is not None and admin.role == Role.ADMIN
    # The admin changes their password (what the profile route does, in effect).
    await create_or_promote_admin(sessions, "root@example.com", "changed-by-admin")
    changed = await _user(sessions, "root@example.com")
    assert changed is not None

    # The next sync runs the bootstrap again, with the Secret's old password.
    code = await asyncio.to_thread(
        _bootstrap, monkeypatch, database_url, "root@example.com", "first-secret-1"
    )
    assert code == 0
    after = await _user(sessions, "root@example.com")
    assert after is not None
    assert after.password_hash == changed.password_hash
    assert after.token_version == changed.token_version  # their tokens still work
    assert await verify_password(after.password_hash, "changed-by-admin")


async def test_bootstrap_admin_does_nothing_while_any_admin_exists(
    sessions: SessionFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.auth.accounts import create_or_promote_admin
    from tests.support.factories import create_user

    await create_or_promote_admin(sessions, "owner@example.com", "owner-secret-1")
    customer = await create_user(sessions, email="someone@example.com")
    code = await asyncio.to_thread(
        _bootstrap, monkeypatch, database_url, "someone@example.com", "bootstrap-secret"
    )
    assert code == 0
    untouched = await _user(sessions, "someone@example.com")
    assert untouched is not None
    assert (untouched.role, untouched.password_hash) == (Role.CUSTOMER, customer.password_hash)


async def test_bootstrap_admin_without_a_password_changes_nothing(
    sessions: SessionFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ORDERSAGA_ADMIN_EMAIL", "root@example.com")
    assert await asyncio.to_thread(main, ["bootstrap-admin"]) == 0
    assert await _user(sessions, "root@example.com") is None


async def test_concurrent_bootstraps_make_one_admin(
    sessions: SessionFactory, database_url: str
) -> None:
    """Init containers of several pods may bootstrap at once; the lock lets one through."""
    from sqlalchemy import func as sql_func

    from tooling.admin_bootstrap import Outcome, bootstrap_admin

    outcomes = await asyncio.gather(
        *(bootstrap_admin(sessions, f"admin{n}@example.com", "a-long-secret-1") for n in range(4))
    )
    assert sorted(outcomes) == sorted([Outcome.CREATED] + [Outcome.ADMIN_EXISTS] * 3)
    async with sessions() as session:
        admins = await session.scalar(
            select(sql_func.count()).select_from(User).where(User.role == Role.ADMIN)
        )
    assert admins == 1


# --- migrations, one pod at a time ----------------------------------------------------


def test_migrate_waits_for_the_migration_lock(scratch_database_url: str) -> None:
    """Every pod's init container runs `migrate`; they must take turns."""
    import threading

    from core.migrate import MIGRATION_LOCK_KEY, upgrade

    engine = create_engine(sqlalchemy_url(scratch_database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        done = threading.Event()
        errors: list[BaseException] = []

        def migrate() -> None:
            try:
                upgrade(scratch_database_url)
            except BaseException as err:  # reported to the test thread below
                errors.append(err)
            finally:
                done.set()

        thread = threading.Thread(target=migrate)
        thread.start()
        # Bounded poll: the other session shows up waiting on the same lock.
        waiting = False
        for _ in range(200):
            waiting = bool(
                holder.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND pid <> pg_backend_pid()"
                    )
                )
            )
            if waiting or done.wait(0.05):
                break
        assert waiting and not done.is_set(), "migrate ran without waiting for the lock"
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
        assert done.wait(60)
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    engine.dispose()
