"""The console's product pages: every product (withdrawn too), a new one, and one product.

They call the catalog's own code: ``list_products`` and ``get_product`` as an
admin reads them over REST, ``add_product`` and ``store_image`` as POST
/products and PUT /products/{id}/image write. The actions on one product
are in product_actions.py.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog import SearchText, add_product, get_product, list_products, product_not_found
from api.deps import SessionDep
from api.errors import ProblemError
from api.pagination import Page
from api.product_images import image_response, read_image, store_image
from api.tokens import Principal
from api.web.console.access import PageAdmin
from api.web.console.product_forms import (
    IMAGE_INPUT,
    Errors,
    amount_text,
    image_of,
    new_product,
    uploaded,
)
from api.web.csrf import require_csrf
from api.web.forms import posted
from api.web.render import render
from core.models import StockMovement
from core.money import CURRENCY_EXPONENTS

router = APIRouter(include_in_schema=False)
forms = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

PER_PAGE = 20
MOVEMENTS_SHOWN = 10
_SEARCH = TypeAdapter(SearchText)
# Which products the list shows, by the ``show`` filter (GET /products's ``active``).
_SHOW = {"all": None, "active": True, "withdrawn": False}


def product_uuid(product_id: str) -> uuid.UUID:
    """A path's product id; anything that is not one is a product that does not exist."""
    try:
        return uuid.UUID(product_id)
    except ValueError:
        raise product_not_found() from None


def _search(q: str) -> str | None:
    # An empty box means "no filter"; text the API would refuse is dropped too.
    try:
        return _SEARCH.validate_python(q.strip()) if q.strip() else None
    except ValidationError:
        return None


@router.get("/console/products", response_class=HTMLResponse)
async def products_page(
    request: Request,
    admin: PageAdmin,
    session: SessionDep,
    q: str = "",
    show: str = "all",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    search = _search(q)
    show = show if show in _SHOW else "all"
    found = await list_products(
        session,
        Page(limit=PER_PAGE, offset=(page - 1) * PER_PAGE),
        admin,
        q=search,
        category=None,
        in_stock=None,
        active=_SHOW[show],
    )
    filters = {k: v for k, v in (("q", search or ""), ("show", show)) if v and v != "all"}
    return await render(
        request,
        "console/products.html",
        admin,
        products=found.items,
        total=found.total,
        q=search or "",
        show=show,
        page=page,
        pages=max(1, -(-found.total // PER_PAGE)),
        pager_query=urlencode(filters) + "&" if filters else "",
    )


async def _new_form(
    request: Request, admin: Principal, *, status_code: int = 200, errors: Errors | None = None
) -> Response:
    return await render(
        request,
        "console/product_new.html",
        admin,
        status_code=status_code,
        errors=errors or {},
        currencies=sorted(CURRENCY_EXPONENTS),
        **IMAGE_INPUT,
    )


@router.get("/console/products/new", response_class=HTMLResponse)
async def new_product_page(request: Request, admin: PageAdmin) -> Response:
    return await _new_form(request, admin)


@forms.post("/console/products", response_class=HTMLResponse)
async def create_product(request: Request, admin: PageAdmin, session: SessionDep) -> Response:
    """POST /products's rules (and PUT .../image's for the picture), in one transaction."""
    body, errors = new_product(await posted(request))
    upload = uploaded(await request.form())
    image = await image_of(upload, errors) if upload is not None else None
    if body is None or errors:
        return await _new_form(request, admin, status_code=422, errors=errors)
    try:
        async with session.begin():
            product = await add_product(session, body)
            if image is not None:
                await store_image(session, product.id, image)
    except ProblemError as err:
        if err.code != "duplicate-sku":
            raise
        taken = {"sku": "A product with this SKU exists already."}
        return await _new_form(request, admin, status_code=409, errors=taken)
    # A new address for the new product: reloading it does not post again.
    return RedirectResponse(f"/console/products/{product.id}?notice=created", status_code=303)


async def product_page(
    request: Request,
    admin: Principal,
    session: AsyncSession,
    product_id: uuid.UUID,
    *,
    status_code: int = 200,
    notice: str | None = None,
    alert: str | None = None,
    errors: Errors | None = None,
) -> Response:
    """One product as stored now, with the outcome of what was just done.

    ``notice`` and ``alert`` pick one of the template's fixed sentences;
    after a refusal the forms show the stored values, never what was typed.
    """
    product = await get_product(product_id, session, admin)
    movements = await session.scalars(
        select(StockMovement)
        .where(StockMovement.product_id == product_id)
        .order_by(StockMovement.id.desc())
        .limit(MOVEMENTS_SHOWN)
    )
    context: dict[str, Any] = {
        "product": product,
        "price_text": amount_text(product.price, product.currency),
        "movements": list(movements),
        "notice": notice,
        "alert": alert,
        "errors": errors or {},
        **IMAGE_INPUT,
    }
    return await render(request, "console/product.html", admin, status_code=status_code, **context)


@router.get("/console/products/{product_id}", response_class=HTMLResponse)
async def one_product_page(
    request: Request,
    product_id: str,
    admin: PageAdmin,
    session: SessionDep,
    notice: str | None = None,
) -> Response:
    # ``notice`` picks one of the template's sentences; it is never shown itself.
    shown = notice if notice == "created" else None
    return await product_page(request, admin, session, product_uuid(product_id), notice=shown)


@router.get("/console/products/{product_id}/image")
async def product_thumbnail(
    product_id: str,
    admin: PageAdmin,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The picture of any product, withdrawn ones too (GET /products/{id}/image as an admin)."""
    image = await read_image(
        session, product_uuid(product_id), include_withdrawn=True, if_none_match=if_none_match
    )
    return image_response(image, shared=False)
