"""The committed migrations build exactly the schema the models describe."""

import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.db import sqlalchemy_url
from core.migrate import alembic_config, upgrade
from core.models import Base


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models differ from migrations; run alembic revision --autogenerate: {diff}"


def test_not_charged_backfills_ended_orders_and_survives_a_round_trip(database_url: str) -> None:
    """4c1e9d2a7f30: orders that ended before their charge lose the token (issue 10, item 3)."""
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(sqlalchemy_url(database_url)).set(database=name)
    scratch = url.render_as_string(hide_password=False)
    try:
        upgrade(scratch, "b7ad633bb43c")
        engine = create_engine(scratch)
        ended, waiting = uuid.uuid4(), uuid.uuid4()
        with engine.begin() as conn:
            user = conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, name, role, token_version)"
                    " VALUES (gen_random_uuid(), 'a@example.com', 'x', 'A', 'customer', 0)"
                    " RETURNING id"
                )
            ).scalar_one()
            for order_id, status in ((ended, "rejected"), (waiting, "pending")):
                conn.execute(
                    text(
                        "INSERT INTO orders (id, customer_id, status, currency, total,"
                        " shipping_address, idempotency_key, request_fingerprint,"
                        " needs_attention) VALUES (:id, :user, :status, 'USD', 100, '{}',"
                        " :key, :fp, false)"
                    ),
                    {
                        "id": order_id,
                        "user": user,
                        "status": status,
                        "key": str(order_id),
                        "fp": "0" * 64,
                    },
                )
                conn.execute(
                    text(
                        "INSERT INTO payments (order_id, provider, token, status, amount,"
                        " refunded_amount, currency) VALUES (:id, 'simulator', 'tok_visa',"
                        " 'pending', 100, 0, 'USD')"
                    ),
                    {"id": order_id},
                )

        upgrade(scratch)

        with engine.connect() as conn:
            result = conn.execute(
                text("SELECT order_id, status::text || ':' || coalesce(token, '') FROM payments")
            )
            rows = {row[0]: row[1] for row in result}
        assert rows == {ended: "not_charged:", waiting: "pending:tok_visa"}

        # Down (the value stays in the type, unused) and up again.
        command.downgrade(alembic_config(scratch), "b7ad633bb43c")
        upgrade(scratch)
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status::text FROM payments WHERE order_id = :id"), {"id": ended}
            ).scalar_one()
        assert status == "not_charged"
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
