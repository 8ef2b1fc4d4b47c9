"""Catalog pages: the product list (search, category, in stock, pages) and a product's page.

They call the REST routes' own functions (api/catalog.py), as an anonymous
reader: what a customer sees in the shop is what GET /products shows them.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from api.catalog import CategoryFilter, SearchText, get_product, list_products
from api.deps import SessionDep
from api.errors import ProblemError
from api.pagination import Page
from api.web.render import render
from api.web.session import PageVisitor
from core.models import Product

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 12
_SEARCH = TypeAdapter(SearchText)
_CATEGORY = TypeAdapter(CategoryFilter)


async def categories(session: SessionDep) -> list[str]:
    """The categories of the products for sale, from the data."""
    rows = await session.scalars(
        select(Product.category)
        .where(Product.active.is_(True))
        .distinct()
        .order_by(Product.category)
    )
    return list(rows)


def _clean(adapter: TypeAdapter[str | None], value: str) -> str | None:
    # An empty box means "no filter"; text the API would refuse is dropped too.
    if not value.strip():
        return None
    try:
        return adapter.validate_python(value.strip())
    except ValidationError:
        return None


@router.get("/", response_class=HTMLResponse)
async def catalog(
    request: Request,
    session: SessionDep,
    visitor: PageVisitor,
    q: str = "",
    category: str = "",
    in_stock: str = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    search, chosen = _clean(_SEARCH, q), _clean(_CATEGORY, category)
    only_in_stock = in_stock == "1"
    found = await list_products(
        session,
        Page(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE),
        None,
        q=search,
        category=chosen,
        in_stock=True if only_in_stock else None,
        active=None,
    )
    pages = max(1, -(-found.total // PAGE_SIZE))
    filters = {
        "q": search or "",
        "category": chosen or "",
        "in_stock": "1" if only_in_stock else "",
    }

    def page_url(number: int) -> str:
        return "/?" + urlencode({**{k: v for k, v in filters.items() if v}, "page": number})

    return await render(
        request,
        "catalog.html",
        visitor,
        products=found.items,
        total=found.total,
        categories=await categories(session),
        filters=filters,
        page=page,
        pages=pages,
        previous_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if page < pages else None,
    )


@router.get("/shop/products/{product_id}", response_class=HTMLResponse)
async def product_page(
    request: Request, product_id: str, session: SessionDep, visitor: PageVisitor
) -> HTMLResponse:
    try:
        pid = uuid.UUID(product_id)
    except ValueError:
        raise ProblemError(404, "no product with this id", code="product-not-found") from None
    product = await get_product(pid, session, None)
    return await render(request, "product.html", visitor, product=product)
