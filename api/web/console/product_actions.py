"""What an admin does to one product from its console page.

Each action is the REST route's own domain code in one transaction:
``change_product`` (PATCH /products/{id}: the details, withdrawing and
reactivating, and stock as a RESTOCK of the difference under a row lock),
``store_image`` and ``remove_image`` (PUT and DELETE /products/{id}/image).
Every answer is the product page as stored afterwards, with a notice of what
was done, or the refusal in words (422 with the field errors for a form).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.body_limit import RouteBodyLimit
from api.catalog import change_product, get_product
from api.deps import SessionDep
from api.errors import ProblemError
from api.images import MAX_IMAGE_BYTES
from api.product_images import remove_image, store_image
from api.schemas.catalog import ProductUpdate
from api.tokens import Principal
from api.web.console.access import PageAdmin
from api.web.console.product_forms import (
    REQUIRED,
    Errors,
    image_of,
    product_changes,
    stock_change,
    uploaded,
)
from api.web.console.product_pages import product_page, product_uuid
from api.web.csrf import require_csrf
from api.web.forms import posted

router = APIRouter(include_in_schema=False)
forms = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

# The two forms that carry an image: the picture (2 MiB at most, refused
# in words by the page beyond that) and the rest of the form around it.
_FORM_WITH_IMAGE = MAX_IMAGE_BYTES + 64 * 1024
BODY_LIMITS = (
    RouteBodyLimit("POST", r"/console/products", _FORM_WITH_IMAGE),
    RouteBodyLimit("POST", r"/console/products/[^/]+/image", _FORM_WITH_IMAGE),
)
# Refusals of the domain code that are not about a form field, by problem type.
_ALERTS = {"image-not-found": "no-image"}

Change = Callable[[AsyncSession], Awaitable[object]]


async def _apply(
    request: Request,
    admin: Principal,
    session: AsyncSession,
    product_id: uuid.UUID,
    change: Change,
    notice: str,
) -> Response:
    """Run ``change`` in one transaction; the page with ``notice``, or with the refusal."""
    try:
        async with session.begin():
            await change(session)
    except ProblemError as err:
        alert = _ALERTS.get(err.code or "")
        if alert is None:
            raise  # a product that does not exist: the 404 page
        return await product_page(
            request, admin, session, product_id, status_code=err.status_code, alert=alert
        )
    return await product_page(request, admin, session, product_id, notice=notice)


async def _refused(
    request: Request, admin: Principal, session: AsyncSession, pid: uuid.UUID, errors: Errors
) -> Response:
    return await product_page(request, admin, session, pid, status_code=422, errors=errors)


@forms.post("/console/products/{product_id}/details", response_class=HTMLResponse)
async def save_details(
    request: Request, product_id: str, admin: PageAdmin, session: SessionDep
) -> Response:
    pid = product_uuid(product_id)
    # The price is in the product's own currency, which never changes.
    async with session.begin():
        stored = await get_product(pid, session, admin)
    body, errors = product_changes(await posted(request), stored.currency)
    if body is None:
        return await _refused(request, admin, session, pid, errors)
    return await _apply(
        request, admin, session, pid, lambda s: change_product(s, pid, body), "saved"
    )


@forms.post("/console/products/{product_id}/deactivate", response_class=HTMLResponse)
async def deactivate(
    request: Request, product_id: str, admin: PageAdmin, session: SessionDep
) -> Response:
    pid = product_uuid(product_id)
    withdraw = ProductUpdate(active=False)
    return await _apply(
        request, admin, session, pid, lambda s: change_product(s, pid, withdraw), "deactivated"
    )


@forms.post("/console/products/{product_id}/reactivate", response_class=HTMLResponse)
async def reactivate(
    request: Request, product_id: str, admin: PageAdmin, session: SessionDep
) -> Response:
    pid = product_uuid(product_id)
    for_sale = ProductUpdate(active=True)
    return await _apply(
        request, admin, session, pid, lambda s: change_product(s, pid, for_sale), "reactivated"
    )


@forms.post("/console/products/{product_id}/stock", response_class=HTMLResponse)
async def set_stock(
    request: Request, product_id: str, admin: PageAdmin, session: SessionDep
) -> Response:
    pid = product_uuid(product_id)
    body, errors = stock_change(await posted(request))
    if body is None:
        return await _refused(request, admin, session, pid, errors)
    return await _apply(
        request, admin, session, pid, lambda s: change_product(s, pid, body), "stock"
    )


@forms.post("/console/products/{product_id}/image", response_class=HTMLResponse)
async def upload_image(
    request: Request, product_id: str, admin: PageAdmin, session: SessionDep
) -> Response:
    pid = product_uuid(product_id)
    errors: Errors = {}
    upload = uploaded(await request.form())
    image = await image_of(upload, errors) if upload is not None else None
    if image is None:
        return await _refused(request, admin, session, pid, errors or {"image": REQUIRED})
    return await _apply(request, admin, session, pid, lambda s: store_image(s, pid, image), "image")


@forms.post("/console/products/{product_id}/image/remove", response_class=HTMLResponse)
async def delete_image(
    request: Request, product_id: str, admin: PageAdmin, session: SessionDep
) -> Response:
    pid = product_uuid(product_id)
    return await _apply(
        request, admin, session, pid, lambda s: remove_image(s, pid), "image-removed"
    )
