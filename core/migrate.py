"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.settings import Settings, get_settings
from core.stack_file import join_stack

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def resolve_database_url(settings: Settings | None = None) -> str:
    """The configured DATABASE_URL, or the dev stack's embedded server."""
    settings = settings or get_settings()
    url = settings.database_url or join_stack(settings).database_url
    if not url:
        raise RuntimeError(
            "DATABASE_URL is not set and no dev stack is running in "
            f"{settings.data_dir}; start one with `ordersaga dev` or set DATABASE_URL"
        )
    return url


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
