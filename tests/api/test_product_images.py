"""Product images over REST: PUT, DELETE and GET /products/{id}/image, and ``image_url``.

The bytes' magic numbers decide the type (tests/api/test_images.py tests the
sniffing itself); here the routes: who may write, the 2 MiB limit, the ETag
and 304, a withdrawn product's picture, and the shop pages showing it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import func, select

from api.images import MAX_IMAGE_BYTES
from core.db import SessionFactory
from core.models import Product, ProductImage, Role
from core.settings import Settings
from tests.support.factories import auth_header, create_product, create_user
from tests.support.images import JPEG, WEBP, png, png_of_size

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
async def admin(sessions: SessionFactory, settings: Settings) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions, role=Role.ADMIN))


@pytest.fixture
async def customer(sessions: SessionFactory, settings: Settings) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions))


@pytest.fixture
async def product(sessions: SessionFactory) -> Product:
    return await create_product(sessions)


def image_path(product: Product) -> str:
    return f"/products/{product.id}/image"


async def put(
    api: httpx.AsyncClient, product: Product, data: bytes, kind: str, headers: dict[str, str]
) -> httpx.Response:
    return await api.put(
        image_path(product), content=data, headers={**headers, "Content-Type": kind}
    )


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if code is not None:
        assert response.json()["type"] == code


async def stored_images(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(ProductImage)) or 0


async def updated_at(sessions: SessionFactory) -> datetime:
    async with sessions() as session:
        return (await session.scalars(select(ProductImage.updated_at))).one()


# --- accepted -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [(png(), "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")],
    ids=["png", "jpeg", "webp"],
)
async def test_png_jpeg_and_webp_are_stored_and_served_with_their_type(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str], data: bytes, kind: str
) -> None:
    tag = f'"{hashlib.sha256(data).hexdigest()}"'

    stored = await put(api, product, data, kind, admin)

    assert stored.status_code == 201, stored.text
    assert stored.json() == {
        "url": image_path(product),
        "content_type": kind,
        "size": len(data),
        "etag": tag,
    }
    assert stored.headers["etag"] == tag
    served = await api.get(image_path(product))
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == kind
    assert served.headers["etag"] == tag
    assert served.headers["cache-control"] == "no-cache"
    assert served.headers["x-content-type-options"] == "nosniff"
    # The product names its picture, in the list and by id.
    one = await api.get(f"/products/{product.id}")
    assert one.json()["image_url"] == image_path(product)
    listed = await api.get("/products")
    assert [p["image_url"] for p in listed.json()["items"]] == [image_path(product)]


async def test_a_new_image_replaces_the_old_one_with_200(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str], sessions: SessionFactory
) -> None:
    first = await put(api, product, png(), "image/png", admin)
    before = await updated_at(sessions)
    second = await put(api, product, JPEG, "image/jpeg", admin)

    assert (first.status_code, second.status_code) == (201, 200)
    assert await updated_at(sessions) > before
    assert first.json()["etag"] != second.json()["etag"]
    served = await api.get(image_path(product))
    assert (served.content, served.headers["content-type"]) == (JPEG, "image/jpeg")
    assert await stored_images(sessions) == 1


async def test_an_image_of_exactly_2_mib_is_taken(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str]
) -> None:
    response = await put(api, product, png_of_size(MAX_IMAGE_BYTES), "image/png", admin)
    assert response.status_code == 201, response.text
    assert response.json()["size"] == MAX_IMAGE_BYTES


# --- refused --------------------------------------------------------------------


async def test_a_png_declared_as_jpeg_is_415(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str], sessions: SessionFactory
) -> None:
    response = await put(api, product, png(), "image/jpeg", admin)

    assert_problem(response, 415, "image-type-mismatch")
    assert await stored_images(sessions) == 0


async def test_a_text_file_named_png_is_415(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str], sessions: SessionFactory
) -> None:
    text = b"not a picture at all\n"
    response = await api.put(
        image_path(product),
        content=text,
        headers={
            **admin,
            "Content-Type": "image/png",
            "Content-Disposition": 'attachment; filename="cat.png"',
        },
    )

    assert_problem(response, 415, "unsupported-image")
    assert "cat.png" not in response.text
    assert await stored_images(sessions) == 0


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "image/gif"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (png(), "application/octet-stream"),
        (png(), "text/plain"),
    ],
)
async def test_other_types_are_415(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str], data: bytes, kind: str
) -> None:
    assert_problem(await put(api, product, data, kind, admin), 415, "unsupported-image")


async def test_over_2_mib_is_413_declared_or_streamed(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str], sessions: SessionFactory
) -> None:
    too_large = png_of_size(MAX_IMAGE_BYTES + 1)

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(too_large), 256 * 1024):
            yield too_large[start : start + 256 * 1024]

    declared = await put(api, product, too_large, "image/png", admin)
    request = api.build_request(
        "PUT",
        image_path(product),
        content=streamed(),
        headers={**admin, "Content-Type": "image/png"},
    )
    assert "content-length" not in request.headers
    for response in (declared, await api.send(request)):
        assert_problem(response, 413, "body-too-large")
    assert await stored_images(sessions) == 0


async def test_customers_get_403_and_visitors_401(
    api: httpx.AsyncClient,
    product: Product,
    admin: dict[str, str],
    customer: dict[str, str],
    sessions: SessionFactory,
) -> None:
    assert_problem(await put(api, product, png(), "image/png", customer), 403, "forbidden")
    assert_problem(await put(api, product, png(), "image/png", {}), 401)
    assert await stored_images(sessions) == 0
    await put(api, product, png(), "image/png", admin)
    assert_problem(await api.delete(image_path(product), headers=customer), 403, "forbidden")
    assert_problem(await api.delete(image_path(product)), 401)
    assert await stored_images(sessions) == 1


async def test_an_unknown_product_is_404(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    path = f"/products/{uuid.uuid4()}/image"
    put_response = await api.put(
        path, content=png(), headers={**admin, "Content-Type": "image/png"}
    )
    assert_problem(put_response, 404, "product-not-found")
    assert_problem(await api.delete(path, headers=admin), 404, "product-not-found")
    assert_problem(await api.get(path), 404, "product-not-found")


# --- caching --------------------------------------------------------------------


async def test_if_none_match_with_the_etag_is_304_without_the_bytes(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str]
) -> None:
    await put(api, product, png(), "image/png", admin)
    first = await api.get(image_path(product))
    tag = first.headers["etag"]

    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = await api.get(image_path(product), headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert again.headers["cache-control"] == "no-cache"

    stale = await api.get(image_path(product), headers={"If-None-Match": '"an-old-one"'})
    assert (stale.status_code, stale.content) == (200, png())
    # A new picture is a new tag: the old copy is no longer current.
    await put(api, product, JPEG, "image/jpeg", admin)
    changed = await api.get(image_path(product), headers={"If-None-Match": tag})
    assert (changed.status_code, changed.content) == (200, JPEG)


# --- delete ---------------------------------------------------------------------


async def test_delete_then_get_is_404(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str]
) -> None:
    await put(api, product, png(), "image/png", admin)

    deleted = await api.delete(image_path(product), headers=admin)

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_problem(await api.get(image_path(product)), 404, "image-not-found")
    assert_problem(await api.delete(image_path(product), headers=admin), 404, "image-not-found")
    assert (await api.get(f"/products/{product.id}")).json()["image_url"] is None


async def test_a_product_without_an_image_is_404(api: httpx.AsyncClient, product: Product) -> None:
    assert_problem(await api.get(image_path(product)), 404, "image-not-found")
    assert (await api.get(f"/products/{product.id}")).json()["image_url"] is None


# --- withdrawn products ---------------------------------------------------------


async def test_a_withdrawn_products_image_is_hidden_from_all_but_admins(
    api: httpx.AsyncClient, product: Product, admin: dict[str, str], customer: dict[str, str]
) -> None:
    await put(api, product, png(), "image/png", admin)
    assert (await api.delete(f"/products/{product.id}", headers=admin)).status_code == 204

    anonymous = await api.get(image_path(product))
    as_customer = await api.get(image_path(product), headers=customer)
    as_admin = await api.get(image_path(product), headers=admin)

    assert_problem(anonymous, 404, "product-not-found")
    assert as_customer.json() == anonymous.json()  # as if it never existed
    assert (as_admin.status_code, as_admin.content) == (200, png())
    # Only the admin may see it, so no shared cache may keep it.
    assert as_admin.headers["cache-control"] == "private, no-cache"


# --- the shop shows it ----------------------------------------------------------


async def test_the_shop_shows_the_image_or_the_lettered_placeholder(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    pictured = await create_product(sessions)
    plain = await create_product(sessions)
    await put(api, pictured, png(), "image/png", admin)

    catalog = (await api.get("/", headers=HTML)).text
    assert f'<img src="/products/{pictured.id}/image" alt="Test product"' in catalog
    assert f'src="/products/{plain.id}/image"' not in catalog
    assert catalog.count("<span>T</span>") == 1  # the placeholder of the one without

    with_image = await api.get(f"/shop/products/{pictured.id}", headers=HTML)
    assert f'src="/products/{pictured.id}/image" alt="Test product"' in with_image.text
    assert "No picture of" not in with_image.text
    assert "img-src 'self'" in with_image.headers["content-security-policy"]
    without = await api.get(f"/shop/products/{plain.id}", headers=HTML)
    assert 'aria-label="No picture of Test product"' in without.text
    assert "<img" not in without.text


# --- the document ---------------------------------------------------------------


def test_the_image_routes_document_their_statuses(settings: Settings) -> None:
    from api.main import create_app

    paths = create_app(settings).openapi()["paths"]["/products/{product_id}/image"]
    assert set(paths["put"]["responses"]) == {
        "200",
        "201",
        "401",
        "403",
        "404",
        "413",
        "415",
        "422",
    }
    assert set(paths["put"]["requestBody"]["content"]) == {"image/png", "image/jpeg", "image/webp"}
    assert set(paths["delete"]["responses"]) == {"204", "401", "403", "404", "422"}
    assert set(paths["get"]["responses"]) == {"200", "304", "401", "404", "422"}
    assert {} in paths["get"]["security"]  # a token is accepted, not needed
