"""``ordersaga audit``: the report on stdout, exit 1 on a violation, and joining a dev stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory
from core.models import Order, OrderStatus
from core.stack_file import StackInfo, write_stack_file
from tests.support.factories import create_product, create_user

ORDERSAGA = str(Path(sys.executable).parent / "ordersaga")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERSAGA_", "TEMPORAL_")) and k != "DATABASE_URL"
    }
    env["ORDERSAGA_DATA_DIR"] = str(tmp_path / "nostack")
    env.update(extra)
    return env


def _audit(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORDERSAGA, "audit", *args],
        env=_env(tmp_path, **env),
        cwd=tmp_path,  # no stray .env
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _pending_order(
    sessions: SessionFactory, status: OrderStatus = OrderStatus.PENDING
) -> uuid.UUID:
    user = await create_user(sessions)
    order = Order(
        customer_id=user.id,
        status=status,
        currency="USD",
        total=0,  # nothing to capture: only the progress checks apply
        shipping_address={},
        idempotency_key=uuid.uuid4().hex,
        request_fingerprint="0" * 64,
    )
    async with sessions() as session, session.begin():
        session.add(order)
    return order.id


async def test_a_clean_database_exits_0_with_the_report(
    sessions: SessionFactory, database_url: str, tmp_path: Path
) -> None:
    await create_product(sessions, stock=3)

    result = _audit(tmp_path, DATABASE_URL=database_url)

    assert result.returncode == 0, result.stderr
    assert "audited 1 products and 0 orders" in result.stdout
    assert "no violations" in result.stdout


async def test_a_violation_exits_1_and_is_named(
    sessions: SessionFactory, database_url: str, tmp_path: Path
) -> None:
    product = await create_product(sessions, stock=3)
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE products SET stock = 2 WHERE id = :id"), {"id": product.id}
        )

    result = _audit(tmp_path, DATABASE_URL=database_url)

    assert result.returncode == 1
    assert "VIOLATIONS: 2" in result.stdout
    assert f"product {product.sku}: supplied 3 != stock 2" in result.stdout


async def test_joins_a_running_dev_stack_by_data_dir(
    sessions: SessionFactory, database_url: str, tmp_path: Path
) -> None:
    await create_product(sessions, stock=1)
    data_dir = tmp_path / "stack"
    data_dir.mkdir()
    # This test process stands in for the stack's supervisor (the file names a live pid).
    write_stack_file(
        data_dir,
        StackInfo(os.getpid(), database_url, "127.0.0.1:1", "http://ui", "http://api", 8025),
    )

    joined = _audit(tmp_path, "--data-dir", str(data_dir))
    alone = _audit(tmp_path)

    assert joined.returncode == 0, joined.stderr
    assert "audited 1 products" in joined.stdout
    assert alone.returncode == 2
    assert "DATABASE_URL is not set" in alone.stderr


async def test_with_temporal_finds_a_pending_order_without_a_workflow(
    sessions: SessionFactory,
    database_url: str,
    temporal_dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    order_id = await _pending_order(sessions)
    address = temporal_dev_server.client.service_client.config.target_host

    without = _audit(tmp_path, DATABASE_URL=database_url)
    with_temporal = _audit(
        tmp_path, "--with-temporal", DATABASE_URL=database_url, TEMPORAL_ADDRESS=address
    )

    assert without.returncode == 0, without.stdout
    assert with_temporal.returncode == 1, with_temporal.stderr
    assert f"order {order_id} is pending but has no running workflow" in with_temporal.stdout


async def test_with_temporal_finds_a_shipped_order_without_a_workflow(
    sessions: SessionFactory,
    database_url: str,
    temporal_dev_server: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    # Not only pending orders: a shipped one whose saga is gone can never be
    # delivered (issue 10, item 4).
    order_id = await _pending_order(sessions, OrderStatus.SHIPPED)
    address = temporal_dev_server.client.service_client.config.target_host

    without = _audit(tmp_path, DATABASE_URL=database_url)
    with_temporal = _audit(
        tmp_path, "--with-temporal", DATABASE_URL=database_url, TEMPORAL_ADDRESS=address
    )

    assert without.returncode == 0, without.stdout
    assert with_temporal.returncode == 1, with_temporal.stderr
    assert str(order_id) in with_temporal.stdout
