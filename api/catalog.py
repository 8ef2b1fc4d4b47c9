"""The product catalog: public reads, admin writes.

Visibility: anonymous callers and customers see only active products (the
``active`` filter can only narrow that, and a withdrawn product is 404 to
them by id). Admins see every product, may filter the list with
``active=true|false`` and read a withdrawn one by id (``"active": false``) to
reactivate it.

Stock is set absolutely by PATCH; the difference is written to the
``stock_movements`` ledger as a RESTOCK, under a row lock, so
initial + restocks = current + held + sold stays provable.

The writes are domain functions (``add_product``, ``change_product``) that
run inside the caller's transaction, so the console's pages
(api/web/console/) apply exactly these rules. A product's picture is
api/product_images.py's; here it is only named by ``image_url``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, StringConstraints
from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import AdminUser, ResourcesDep, SessionDep, current_principal
from api.errors import ProblemError, problem_responses
from api.pagination import PageDep
from api.schemas.catalog import ProductCreate, ProductList, ProductPublic, ProductUpdate
from api.schemas.text import NO_NUL, plain_text
from api.tokens import Principal
from core.models import MovementKind, Product, ProductImage, StockMovement

router = APIRouter(prefix="/products", tags=["catalog"])

# auto_error=False: reading the catalog needs no token, but a token that is
# sent must be valid (an admin's token widens what the list shows).
_optional_bearer = HTTPBearer(auto_error=False)


async def optional_principal(
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    return await current_principal(resources, credentials)


OptionalUser = Annotated[Principal | None, Depends(optional_principal)]

# OpenAPI: a token is accepted but not required ({} = no security at all).
_TOKEN_OPTIONAL: dict[str, Any] = {"security": [{}]}

QueryText = Annotated[str, StringConstraints(pattern=NO_NUL), AfterValidator(plain_text)]
SearchText = Annotated[
    QueryText | None,
    Query(
        min_length=1,
        max_length=200,
        description="case-insensitive text in name, sku or description",
    ),
]
CategoryFilter = Annotated[
    QueryText | None,
    Query(min_length=1, max_length=100, description="exact, case-insensitive"),
]


def _like_pattern(text: str) -> str:
    # The user's text is matched literally: % and _ are not wildcards here.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(
    query: Select[tuple[Product]],
    *,
    q: str | None,
    category: str | None,
    in_stock: bool | None,
    active: bool | None,
) -> Select[tuple[Product]]:
    if q is not None:
        pattern = _like_pattern(q)
        query = query.where(
            or_(
                Product.name.ilike(pattern, escape="\\"),
                Product.sku.ilike(pattern, escape="\\"),
                Product.description.ilike(pattern, escape="\\"),
            )
        )
    if category is not None:
        query = query.where(func.lower(Product.category) == category.lower())
    if in_stock is not None:
        query = query.where(Product.stock > 0 if in_stock else Product.stock == 0)
    if active is not None:
        query = query.where(Product.active.is_(active))
    return query


def product_not_found() -> ProblemError:
    return ProblemError(404, "no product with this id", code="product-not-found")


async def locked_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    """The product, row-locked until the caller's transaction ends; 404 when there is none."""
    # FOR UPDATE: a stock change must see the value a concurrent reservation
    # leaves behind, or the RESTOCK delta written to the ledger would be wrong.
    product = await session.scalar(
        select(Product).where(Product.id == product_id).with_for_update()
    )
    if product is None:
        raise product_not_found()
    return product


def image_path(product_id: uuid.UUID) -> str:
    return f"/products/{product_id}/image"


# Whether the product of the enclosing query has a picture (no bytes read).
HAS_IMAGE: ColumnElement[bool] = exists().where(ProductImage.product_id == Product.id)


def product_public(product: Product, *, has_image: bool) -> ProductPublic:
    public = ProductPublic.model_validate(product)
    public.image_url = image_path(product.id) if has_image else None
    return public


async def has_image(session: AsyncSession, product_id: uuid.UUID) -> bool:
    found = await session.scalar(select(exists().where(ProductImage.product_id == product_id)))
    return bool(found)


@router.get("", responses=problem_responses(401, 422), openapi_extra=_TOKEN_OPTIONAL)
async def list_products(
    session: SessionDep,
    page: PageDep,
    principal: OptionalUser,
    q: SearchText = None,
    category: CategoryFilter = None,
    in_stock: Annotated[bool | None, Query(description="true: stock > 0; false: stock = 0")] = None,
    active: Annotated[
        bool | None, Query(description="admins: filter by active; others see active only")
    ] = None,
) -> ProductList:
    """List products, ordered by name then id, filtered and paged."""
    if principal is None or not principal.is_admin:
        # Filters only narrow what a non-admin may see: active=false finds nothing.
        if active is False:
            return ProductList(items=[], total=0)
        active = True
    query = _filtered(select(Product), q=q, category=category, in_stock=in_stock, active=active)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.execute(
        query.add_columns(HAS_IMAGE)
        .order_by(Product.name, Product.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return ProductList(items=[product_public(p, has_image=image) for p, image in rows], total=total)


@router.get(
    "/{product_id}", responses=problem_responses(401, 404, 422), openapi_extra=_TOKEN_OPTIONAL
)
async def get_product(
    product_id: uuid.UUID, session: SessionDep, principal: OptionalUser
) -> ProductPublic:
    """One product. A withdrawn (inactive) one is 404 except to admins."""
    row = (
        await session.execute(select(Product, HAS_IMAGE).where(Product.id == product_id))
    ).first()
    if row is None or not (row[0].active or (principal and principal.is_admin)):
        # Customers never see a withdrawn product; their past orders carry
        # their own copy of its sku, name and price.
        raise product_not_found()
    return product_public(row[0], has_image=row[1])


async def add_product(session: AsyncSession, body: ProductCreate) -> Product:
    """Write a new product and the ledger's INITIAL entry (its opening stock).

    Runs in the caller's transaction; a taken sku is a 409 ``duplicate-sku``.
    """
    product = Product(**body.model_dump())
    session.add(product)
    try:
        await session.flush()
    except IntegrityError as err:
        if _violates(err, "uq_products_sku"):
            raise ProblemError(
                409, "a product with this sku already exists", code="duplicate-sku"
            ) from None
        raise
    session.add(StockMovement(product_id=product.id, kind=MovementKind.INITIAL, delta=body.stock))
    return product


def _violates(err: IntegrityError, constraint: str) -> bool:
    diag = getattr(err.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


async def change_product(
    session: AsyncSession, product_id: uuid.UUID, body: ProductUpdate
) -> Product:
    """Apply the fields set in ``body`` under a row lock, in the caller's transaction.

    A stock change is recorded as a RESTOCK of the difference.
    """
    changes = body.model_dump(exclude_unset=True)
    product = await locked_product(session, product_id)
    new_stock = changes.pop("stock", None)
    if new_stock is not None and new_stock != product.stock:
        session.add(
            StockMovement(
                product_id=product.id,
                kind=MovementKind.RESTOCK,
                delta=new_stock - product.stock,
            )
        )
        product.stock = new_stock
    for name, value in changes.items():
        setattr(product, name, value)
    return product


@router.post("", status_code=201, responses=problem_responses(401, 403, 409, 413, 422))
async def create_product(
    body: ProductCreate, session: SessionDep, admin: AdminUser, response: Response
) -> ProductPublic:
    """Add a product (admin). Its opening stock is the ledger's INITIAL entry."""
    async with session.begin():
        product = await add_product(session, body)
    response.headers["Location"] = f"/products/{product.id}"
    return product_public(product, has_image=False)


@router.patch("/{product_id}", responses=problem_responses(401, 403, 404, 413, 422))
async def update_product(
    product_id: uuid.UUID, body: ProductUpdate, session: SessionDep, admin: AdminUser
) -> ProductPublic:
    """Change some fields (admin). A stock change is recorded as a RESTOCK."""
    async with session.begin():
        product = await change_product(session, product_id, body)
        image = await has_image(session, product_id)
    return product_public(product, has_image=image)


@router.delete("/{product_id}", status_code=204, responses=problem_responses(401, 403, 404, 422))
async def deactivate_product(
    product_id: uuid.UUID, session: SessionDep, admin: AdminUser
) -> Response:
    """Withdraw a product (admin): it stays in the database so past orders keep it."""
    async with session.begin():
        await change_product(session, product_id, ProductUpdate(active=False))
    return Response(status_code=204)
