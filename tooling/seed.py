"""The demo catalog, loaded by ``ordersaga seed`` and on the dev stack's first start.

Seeding is idempotent by sku: a product that already exists is left exactly
as it is (an admin may have changed its price or stock since), so running the
seed again, or two seeds at once, never duplicates or resets anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.db import SessionFactory
from core.models import MovementKind, Product, StockMovement


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    description: str
    category: str
    price: int  # minor units (cents) of currency
    stock: int
    currency: str = "USD"


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        "BOOK-DDIA",
        "Designing Data-Intensive Applications",
        "Martin Kleppmann's guide to reliable, scalable and maintainable systems.",
        "books",
        4599,
        25,
    ),
    DemoProduct(
        "BOOK-SRE",
        "Site Reliability Engineering",
        "How Google runs production systems; paperback.",
        "books",
        3999,
        15,
    ),
    DemoProduct(
        "BOOK-REFACTOR",
        "Refactoring, 2nd edition",
        "Improving the design of existing code, with examples in JavaScript.",
        "books",
        4999,
        10,
    ),
    DemoProduct(
        "BOOK-PRAGPROG",
        "The Pragmatic Programmer",
        "20th anniversary edition, hardcover.",
        "books",
        4299,
        3,
    ),
    DemoProduct(
        "ELEC-KBD-TKL",
        "Mechanical Keyboard TKL",
        "Tenkeyless keyboard with hot-swappable brown switches and PBT keycaps.",
        "electronics",
        8900,
        40,
    ),
    DemoProduct(
        "ELEC-MOUSE",
        "Wireless Mouse",
        "Ergonomic 2.4 GHz and Bluetooth mouse, USB-C charging.",
        "electronics",
        2999,
        60,
    ),
    DemoProduct(
        "ELEC-HUB-USBC",
        "USB-C Hub 7-in-1",
        "HDMI 4K, two USB-A, SD and microSD, 100 W pass-through charging.",
        "electronics",
        3499,
        30,
    ),
    DemoProduct(
        "ELEC-HEADSET",
        "Noise-Cancelling Headphones",
        "Over-ear, 30 hours of battery, active noise cancelling.",
        "electronics",
        19900,
        8,
    ),
    DemoProduct(
        "HOME-MUG",
        "Ceramic Coffee Mug",
        "350 ml stoneware mug, dishwasher safe.",
        "home",
        1299,
        100,
    ),
    DemoProduct(
        "HOME-KETTLE",
        "Gooseneck Kettle",
        "1 litre electric kettle with temperature control for pour-over coffee.",
        "home",
        6950,
        12,
    ),
    DemoProduct(
        "HOME-LAMP",
        "LED Desk Lamp",
        "Dimmable desk lamp with adjustable colour temperature.",
        "home",
        3950,
        20,
    ),
    DemoProduct(
        "HOME-PLANT-POT",
        "Self-Watering Plant Pot",
        "Medium pot with a water reservoir for two weeks away.",
        "home",
        1899,
        0,  # sold out: shows in_stock=false in the demo
    ),
)


async def seed_catalog(sessions: SessionFactory) -> int:
    """Insert the demo products that are missing; return how many were new.

    Each new product gets its INITIAL stock movement, in the same
    transaction, so the stock ledger adds up from the first moment.
    """
    rows = [asdict(product) for product in DEMO_PRODUCTS]
    async with sessions() as session, session.begin():
        # ON CONFLICT DO NOTHING rather than read-then-insert: two seeds racing
        # (two dev stacks on one database) cannot both insert a sku.
        result = await session.execute(
            pg_insert(Product)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[Product.sku])
            .returning(Product.id, Product.stock)
        )
        created = result.all()
        if created:
            await session.execute(
                insert(StockMovement),
                [
                    {"product_id": product_id, "kind": MovementKind.INITIAL, "delta": stock}
                    for product_id, stock in created
                ],
            )
    return len(created)
