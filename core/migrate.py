"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

from core.settings import Settings, get_settings
from core.stack_file import join_stack

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# A PostgreSQL advisory lock key that only ordersaga's migrations take: every
# pod of a Deployment may run `ordersaga migrate` as it starts (an init
# container), and only one may apply a migration at a time. The others wait,
# then find the schema at head and do nothing.
MIGRATION_LOCK_KEY = 0x6F7264657273  # "orders"


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
    """Migrate to ``revision`` while holding the migration lock (see MIGRATION_LOCK_KEY)."""
    from core.db import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            # A session lock, not a transaction lock: it must outlive the
            # commit of the migrations' own transaction.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                config = alembic_config(database_url)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()
            finally:
                connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
    finally:
        engine.dispose()
