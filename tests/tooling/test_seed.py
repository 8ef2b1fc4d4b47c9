import asyncio
from dataclasses import asdict

from sqlalchemy import func, select

from api.schemas.catalog import ProductCreate
from core.db import SessionFactory
from core.models import MovementKind, Product, StockMovement
from tests.support.factories import create_product
from tooling.audit import run_audit
from tooling.seed import DEMO_PRODUCTS, seed_catalog


def test_demo_catalog_is_a_dozen_valid_products_across_categories() -> None:
    assert 10 <= len(DEMO_PRODUCTS) <= 15
    assert len({p.sku for p in DEMO_PRODUCTS}) == len(DEMO_PRODUCTS)
    assert len({p.category for p in DEMO_PRODUCTS}) >= 3
    assert sum(p.stock > 0 for p in DEMO_PRODUCTS) >= 10
    for product in DEMO_PRODUCTS:
        # The seed obeys the same rules as the admin API (integer cents, known currency).
        ProductCreate.model_validate(asdict(product))
        assert type(product.price) is int and product.price > 0
        assert product.currency == "USD"


async def test_seed_inserts_every_demo_product_with_its_initial_stock(
    sessions: SessionFactory,
) -> None:
    assert await seed_catalog(sessions) == len(DEMO_PRODUCTS)

    async with sessions() as session:
        products = {p.sku: p for p in await session.scalars(select(Product))}
        movements = (await session.scalars(select(StockMovement))).all()
    assert set(products) == {p.sku for p in DEMO_PRODUCTS}
    for demo in DEMO_PRODUCTS:
        stored = products[demo.sku]
        assert (stored.name, stored.price, stored.currency, stored.stock, stored.active) == (
            demo.name,
            demo.price,
            demo.currency,
            demo.stock,
            True,
        )
    assert len(movements) == len(DEMO_PRODUCTS)
    assert {(m.product_id, m.kind, m.delta) for m in movements} == {
        (products[d.sku].id, MovementKind.INITIAL, d.stock) for d in DEMO_PRODUCTS
    }
    report = await run_audit(sessions)
    assert report.violations == []


async def test_seeding_again_changes_nothing(sessions: SessionFactory) -> None:
    await seed_catalog(sessions)
    async with sessions() as session, session.begin():
        # An admin's later change must survive a re-seed.
        mug = await session.scalar(select(Product).where(Product.sku == "HOME-MUG"))
        assert mug is not None
        mug.price = 1499

    assert await seed_catalog(sessions) == 0

    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == len(DEMO_PRODUCTS)
        assert await session.scalar(select(func.count()).select_from(StockMovement)) == len(
            DEMO_PRODUCTS
        )
        price = await session.scalar(select(Product.price).where(Product.sku == "HOME-MUG"))
    assert price == 1499


async def test_seed_leaves_an_existing_sku_alone_and_adds_the_rest(
    sessions: SessionFactory,
) -> None:
    existing = await create_product(sessions, sku=DEMO_PRODUCTS[0].sku, price=1, stock=2)

    assert await seed_catalog(sessions) == len(DEMO_PRODUCTS) - 1

    async with sessions() as session:
        kept = await session.get(Product, existing.id)
        initial_rows = await session.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(StockMovement.product_id == existing.id)
        )
    assert kept is not None and (kept.price, kept.stock) == (1, 2)
    assert initial_rows == 1


async def test_concurrent_seeds_insert_each_product_once(sessions: SessionFactory) -> None:
    counts = await asyncio.gather(seed_catalog(sessions), seed_catalog(sessions))

    assert sum(counts) == len(DEMO_PRODUCTS)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == len(DEMO_PRODUCTS)
        assert await session.scalar(select(func.count()).select_from(StockMovement)) == len(
            DEMO_PRODUCTS
        )
