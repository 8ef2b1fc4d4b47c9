"""Test data builders: users with tokens, products."""

from __future__ import annotations

import uuid

from argon2 import PasswordHasher

from api.keys import signing_keys
from api.tokens import TokenIssuer
from core.db import SessionFactory
from core.models import MovementKind, Product, Role, StockMovement, User
from core.settings import Settings

DEFAULT_PASSWORD = "correct-horse-battery"

# Cheap parameters: tests create many users; production uses argon2's defaults.
_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def create_user(
    sessions: SessionFactory,
    *,
    email: str | None = None,
    role: Role = Role.CUSTOMER,
    password: str = DEFAULT_PASSWORD,
    name: str = "Test User",
) -> User:
    user = User(
        email=email or f"user-{uuid.uuid4().hex[:10]}@example.com",
        password_hash=_hasher.hash(password),
        name=name,
        role=role,
    )
    async with sessions() as session, session.begin():
        session.add(user)
    return user


def auth_header(settings: Settings, user: User) -> dict[str, str]:
    """A valid Bearer header for ``user``, signed with the test key."""
    issuer = TokenIssuer(
        signing_keys(settings)[0],
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    return {"Authorization": f"Bearer {issuer.issue(user).access_token}"}


async def create_product(
    sessions: SessionFactory,
    *,
    sku: str | None = None,
    price: int = 1999,
    stock: int = 10,
    currency: str = "USD",
    category: str = "test",
    active: bool = True,
) -> Product:
    product = Product(
        sku=sku or f"SKU-{uuid.uuid4().hex[:8].upper()}",
        name="Test product",
        description="",
        category=category,
        price=price,
        currency=currency,
        stock=stock,
        active=active,
    )
    async with sessions() as session, session.begin():
        session.add(product)
        await session.flush()
        session.add(StockMovement(product_id=product.id, kind=MovementKind.INITIAL, delta=stock))
    return product
