"""A product's picture: PUT (admin), DELETE (admin) and GET (everyone) /products/{id}/image.

The body of PUT is the image itself, sent with its ``Content-Type``: PNG,
JPEG or WebP, at most 2 MiB (the body limit lets this route, and only it,
take that much: api/body_limit.py). The type is read from the bytes' magic
numbers (api/images.py) and must agree with the declared one, so a file is
never served as something it is not.

GET answers the bytes with their type, a strong ``ETag`` (their SHA-256)
and ``Cache-Control: no-cache`` (caches keep the bytes but ask each time, so
a new picture or a withdrawal shows at once); ``If-None-Match`` gets a 304.
A withdrawn product's picture is 404 to everyone but admins, like the
product itself.

``store_image``, ``remove_image`` and ``read_image`` are the domain code;
the console's pages call them too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.body_limit import RouteBodyLimit
from api.catalog import OptionalUser, image_path, locked_product, product_not_found
from api.deps import AdminUser, SessionDep
from api.errors import ProblemError, problem_responses
from api.images import IMAGE_TYPES, MAX_IMAGE_BYTES, Image, checked_image, etag, etag_matches
from core.models import Product, ProductImage

router = APIRouter(prefix="/products", tags=["catalog"])

# The body limit's exception for PUT: the image and not a byte more.
BODY_LIMIT = RouteBodyLimit("PUT", r"/products/[^/]+/image", MAX_IMAGE_BYTES)


def _binary() -> dict[str, Any]:
    """Each image type as the bytes of that type (a fresh copy per use in the document)."""
    return {
        kind: {"schema": {"type": "string", "format": "binary", "contentMediaType": kind}}
        for kind in IMAGE_TYPES
    }


_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"the image itself: PNG, JPEG or WebP, at most {MAX_IMAGE_BYTES} bytes",
        "content": _binary(),
    }
}
_CACHE_HEADERS = {
    "ETag": {"description": "the SHA-256 of the bytes, quoted", "schema": {"type": "string"}},
    "Cache-Control": {"schema": {"type": "string"}},
}


class ProductImageInfo(BaseModel):
    """The picture a product now has."""

    url: str = Field(description="where it is served")
    content_type: str = Field(description="image/png, image/jpeg or image/webp")
    size: int = Field(description="bytes")
    etag: str = Field(description="its strong ETag: the SHA-256 of the bytes, quoted")


@dataclass(frozen=True)
class StoredImage:
    content_type: str
    etag: str
    product_active: bool
    data: bytes | None  # None when the caller's copy is current (304)


def image_not_found() -> ProblemError:
    return ProblemError(404, "this product has no image", code="image-not-found")


async def store_image(session: AsyncSession, product_id: uuid.UUID, image: Image) -> bool:
    """Give the product this picture, replacing any; True when it had none (created).

    Runs in the caller's transaction, under the product's row lock (as every
    product write), so two uploads at once end with one of them, whole.
    """
    await locked_product(session, product_id)
    values = {
        "content_type": image.content_type,
        "sha256": image.sha256,
        "size": len(image.data),
        "data": image.data,
    }
    # Whether it has one, without reading the old bytes.
    had = await session.scalar(
        select(ProductImage.product_id).where(ProductImage.product_id == product_id)
    )
    if had is None:
        session.add(ProductImage(product_id=product_id, **values))
        await session.flush()
    else:
        await session.execute(
            update(ProductImage).where(ProductImage.product_id == product_id).values(**values)
        )
    return had is None


async def remove_image(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Take the product's picture away, in the caller's transaction; 404 when it has none."""
    await locked_product(session, product_id)
    deleted = await session.execute(
        delete(ProductImage).where(ProductImage.product_id == product_id)
    )
    if deleted.rowcount == 0:  # type: ignore[attr-defined]
        raise image_not_found()


async def read_image(
    session: AsyncSession,
    product_id: uuid.UUID,
    *,
    include_withdrawn: bool,
    if_none_match: str | None = None,
) -> StoredImage:
    """The picture, without its bytes when ``if_none_match`` names it already.

    404 ``product-not-found`` for a product that is missing, or withdrawn
    and ``include_withdrawn`` is false; 404 ``image-not-found`` without one.
    """
    row = (
        await session.execute(
            select(Product.active, ProductImage.content_type, ProductImage.sha256)
            .outerjoin(ProductImage, ProductImage.product_id == Product.id)
            .where(Product.id == product_id)
        )
    ).first()
    if row is None or not (row.active or include_withdrawn):
        raise product_not_found()
    if row.sha256 is None:
        raise image_not_found()
    tag = etag(row.sha256)
    if etag_matches(if_none_match, tag):
        return StoredImage(row.content_type, tag, row.active, None)
    data = await session.scalar(
        select(ProductImage.data).where(
            ProductImage.product_id == product_id, ProductImage.sha256 == row.sha256
        )
    )
    if data is None:  # replaced or removed in between: read it again
        return await read_image(
            session, product_id, include_withdrawn=include_withdrawn, if_none_match=if_none_match
        )
    return StoredImage(row.content_type, tag, row.active, data)


def image_response(image: StoredImage, *, shared: bool) -> Response:
    """200 with the bytes, or 304 when the caller's copy is current.

    ``shared``: whether any cache may keep it; false for what only admins
    may see (a withdrawn product's picture).
    """
    headers = {
        "ETag": image.etag,
        "Cache-Control": "no-cache" if shared else "private, no-cache",
    }
    if image.data is None:
        return Response(status_code=304, headers=headers)
    return Response(image.data, media_type=image.content_type, headers=headers)


@router.put(
    "/{product_id}/image",
    responses={
        201: {"model": ProductImageInfo, "description": "The product had no image before"},
        **problem_responses(401, 403, 404, 413, 415, 422),
    },
    openapi_extra=_IMAGE_BODY,
)
async def put_image(
    product_id: uuid.UUID,
    body: Annotated[bytes, Body(media_type="image/png")],
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    response: Response,
) -> ProductImageInfo:
    """Set the product's picture (admin): the raw bytes, with their Content-Type.

    415 when the bytes are not PNG, JPEG or WebP or not the declared type;
    413 over 2 MiB.
    """
    # A body parameter, so it is read (and limited) before the token is
    # checked, as every route's body is; a non-JSON type arrives as bytes.
    image = checked_image(body, request.headers.get("content-type"))
    async with session.begin():
        created = await store_image(session, product_id, image)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = image.etag
    return ProductImageInfo(
        url=image_path(product_id),
        content_type=image.content_type,
        size=len(image.data),
        etag=image.etag,
    )


@router.delete(
    "/{product_id}/image",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_image(product_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> Response:
    """Remove the product's picture (admin); 404 when it has none."""
    async with session.begin():
        await remove_image(session, product_id)
    return Response(status_code=204)


@router.get(
    "/{product_id}/image",
    response_class=Response,
    responses={
        200: {
            "description": "The image",
            "content": _binary(),
            "headers": _CACHE_HEADERS,
        },
        304: {"description": "Not Modified: the copy If-None-Match names is current"},
        **problem_responses(401, 404, 422),
    },
    openapi_extra={"security": [{}]},  # a token is accepted, not required
)
async def get_image(
    product_id: uuid.UUID,
    session: SessionDep,
    principal: OptionalUser,
    if_none_match: Annotated[str | None, Header(max_length=4096)] = None,
) -> Response:
    """The product's picture. A withdrawn product's is 404 except to admins."""
    admin = principal is not None and principal.is_admin
    image = await read_image(
        session, product_id, include_withdrawn=admin, if_none_match=if_none_match
    )
    return image_response(image, shared=image.product_active)
