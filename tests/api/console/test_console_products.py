"""The console's product pages without a browser: list, create, edit, sale, stock, image.

Each action runs the catalog's own code, so what the pages change is checked
in the database and through the REST API: the stock ledger, the product as
GET /products shows it, the picture GET /products/{id}/image serves.
"""

from __future__ import annotations

import html
import re
import uuid

import httpx
import pytest
from sqlalchemy import select

from core.db import SessionFactory
from core.models import MovementKind, Product, ProductImage, StockMovement
from core.models.users import Role
from tests.api.console.console_support import HTML, csrf_token, log_in, post_form
from tests.support.factories import create_product, create_user
from tests.support.images import JPEG, png, png_of_size

MARKER = "zqx7typed"
NEW = "/console/products/new"


@pytest.fixture
async def admin_api(api: httpx.AsyncClient, sessions: SessionFactory) -> httpx.AsyncClient:
    admin = await create_user(sessions, role=Role.ADMIN)
    await log_in(api, admin.email)
    return api


def form(**overrides: str) -> dict[str, str]:
    fields = {
        "sku": f"CUP-{uuid.uuid4().hex[:6].upper()}",
        "name": "Espresso Cup",
        "description": "Double-walled glass, 80 ml",
        "category": "home",
        "price": "12.50",
        "currency": "USD",
        "stock": "7",
    }
    fields.update(overrides)
    return fields


async def post_multipart(
    client: httpx.AsyncClient,
    page_url: str,
    action: str,
    fields: dict[str, str],
    files: dict[str, tuple[str, bytes, str]],
) -> httpx.Response:
    """A multipart post (a form with a file) with the CSRF token of the page at ``page_url``."""
    page = await client.get(page_url, headers=HTML)
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.text), **fields}
    return await client.post(action, data=data, files=files, headers=HTML)


async def stored(sessions: SessionFactory, product_id: uuid.UUID) -> Product:
    async with sessions() as session:
        product = await session.get(Product, product_id)
        assert product is not None
        return product


async def ledger(sessions: SessionFactory, product_id: uuid.UUID) -> list[tuple[str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(StockMovement.kind, StockMovement.delta)
            .where(StockMovement.product_id == product_id)
            .order_by(StockMovement.id)
        )
        return [(kind.value, delta) for kind, delta in rows]


def created_id(answer: httpx.Response) -> uuid.UUID:
    """The new product's id, from the redirect to its page."""
    found = re.fullmatch(
        r"/console/products/([0-9a-f-]{36})\?notice=created", answer.headers["location"]
    )
    assert found, answer.headers["location"]
    return uuid.UUID(found.group(1))


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="e-{name}">([^<]*)</p>', page)
    assert found, f"no error shown for {name}"
    return html.unescape(found.group(1))


# --- who may open it ------------------------------------------------------------


async def test_a_customer_gets_403_pages_and_changes_nothing(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions, stock=5)
    customer = await create_user(sessions)
    await log_in(api, customer.email)
    for path in ("/console/products", NEW, f"/console/products/{product.id}"):
        page = await api.get(path, headers=HTML)
        assert page.status_code == 403, path
        assert page.headers["content-type"].startswith("text/html")
    shop = await api.get("/", headers=HTML)  # a page of theirs, for a valid CSRF token
    token = csrf_token(shop.text)
    for action, fields in (
        ("/console/products", form()),
        (f"/console/products/{product.id}/stock", {"stock": "99"}),
        (f"/console/products/{product.id}/deactivate", {}),
    ):
        answer = await api.post(action, data={"csrf_token": token, **fields}, headers=HTML)
        assert answer.status_code == 403, action
    assert (await stored(sessions, product.id)).stock == 5
    assert (await stored(sessions, product.id)).active is True


async def test_a_visitor_is_sent_to_log_in(api: httpx.AsyncClient) -> None:
    answer = await api.get("/console/products", headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/shop/login?next=/console/products"


# --- the list -------------------------------------------------------------------


async def test_the_list_shows_every_product_with_price_stock_and_thumbnail(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    for_sale = await create_product(sessions, price=1250, stock=3)
    withdrawn = await create_product(sessions, price=500, currency="EUR", active=False)
    async with sessions() as session, session.begin():
        session.add(
            ProductImage(
                product_id=for_sale.id, content_type="image/png", sha256="0" * 64, size=1, data=b"x"
            )
        )

    page = await admin_api.get("/console/products", headers=HTML)

    assert page.status_code == 200
    assert 'aria-current="page">Products</a>' in page.text
    assert "2 products" in page.text
    for product in (for_sale, withdrawn):
        assert f'href="/console/products/{product.id}"' in page.text
    assert "USD 12.50" in page.text and "EUR 5.00" in page.text
    assert "Withdrawn" in page.text
    assert f'src="/console/products/{for_sale.id}/image"' in page.text
    assert f'src="/console/products/{withdrawn.id}/image"' not in page.text

    only_withdrawn = await admin_api.get("/console/products?show=withdrawn", headers=HTML)
    assert f"/console/products/{withdrawn.id}" in only_withdrawn.text
    assert f"/console/products/{for_sale.id}" not in only_withdrawn.text


async def test_the_list_searches_and_pages(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    for n in range(23):
        await create_product(sessions, sku=f"PAGE-{n:02d}")
    await create_product(sessions, sku="FIND-ME-1")

    found = await admin_api.get("/console/products?q=find-me", headers=HTML)
    assert "1 product<" in found.text and "FIND-ME-1" in found.text
    first = await admin_api.get("/console/products", headers=HTML)
    assert "Page 1 of 2" in first.text
    assert 'href="?page=2" rel="next"' in first.text
    second = await admin_api.get("/console/products?page=2", headers=HTML)
    assert (
        second.text.count('href="/console/products/')
        - second.text.count('href="/console/products/new"')
        == 4
    )
    filtered = await admin_api.get("/console/products?q=page&show=active", headers=HTML)
    assert 'href="?q=page&amp;show=active&amp;page=2" rel="next"' in filtered.text


# --- create ---------------------------------------------------------------------


async def test_create_with_an_image_writes_the_product_its_ledger_and_picture(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    fields = form(price="12.50", stock="7")
    picture = png()

    answer = await post_multipart(
        admin_api, NEW, "/console/products", fields, {"image": ("cup.png", picture, "image/png")}
    )

    assert answer.status_code == 303
    location = answer.headers["location"]
    product_id = created_id(answer)
    assert location == f"/console/products/{product_id}?notice=created"
    page = await admin_api.get(location, headers=HTML)
    assert "The product is created." in page.text
    created = await stored(sessions, product_id)
    assert (created.sku, created.price, created.currency, created.stock) == (
        fields["sku"],
        1250,
        "USD",
        7,
    )
    assert await ledger(sessions, product_id) == [("initial", 7)]
    served = await admin_api.get(f"/products/{product_id}/image")
    assert (served.status_code, served.content) == (200, picture)


async def test_create_without_an_image_and_prices_are_exact(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    for price, currency, minor in (
        ("0.10", "USD", 10),
        ("19.9", "EUR", 1990),
        ("1200", "JPY", 1200),
    ):
        answer = await post_multipart(
            admin_api,
            NEW,
            "/console/products",
            form(price=price, currency=currency),
            {"image": ("", b"", "application/octet-stream")},  # no file chosen
        )
        assert answer.status_code == 303, answer.text
        product_id = created_id(answer)
        assert (await stored(sessions, product_id)).price == minor
        assert (await admin_api.get(f"/products/{product_id}")).json()["image_url"] is None


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"price": "12.505"}, "price", "This currency has at most 2 decimals."),
        ({"price": "12,50"}, "price", "Enter an amount like 12.50, with a dot for decimals."),
        ({"price": "-1"}, "price", "Enter an amount like 12.50, with a dot for decimals."),
        ({"price": "5.5", "currency": "JPY"}, "price", "This currency has no decimals."),
        ({"price": ""}, "price", "This field is required."),
        ({"stock": "2.5"}, "stock", "Enter a whole number, like 12."),
        ({"sku": f"bad sku {MARKER}"}, "sku", "This contains characters that are not allowed."),
        ({"name": ""}, "name", "This field is required."),
        ({"currency": "XXX"}, "currency", "Please check this field."),
    ],
)
async def test_create_refusals_rerender_the_form_with_422(
    admin_api: httpx.AsyncClient,
    sessions: SessionFactory,
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    # A valid field typed alongside must not come back either.
    fields = form(description=f"typed {MARKER}", **overrides)

    answer = await post_form(admin_api, NEW, "/console/products", fields)

    assert answer.status_code == 422
    assert field_error(answer.text, field) == message
    assert 'aria-invalid="true"' in answer.text
    assert MARKER not in answer.text
    assert 'role="alert">The product was not created.' in answer.text
    async with sessions() as session:
        assert (await session.scalars(select(Product))).all() == []


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (("cat.png", b"I am text in a .png\n", "image/png"), "Choose a PNG, JPEG or WebP image."),
        (
            ("cat.png", JPEG, "image/png"),
            "The file's content is not the kind of image its type says. "
            "Choose a PNG, JPEG or WebP image.",
        ),
        (
            ("big.png", png_of_size(2 * 1024 * 1024 + 1), "image/png"),
            "The image is larger than 2 MiB.",
        ),
    ],
    ids=["text-named-png", "jpeg-named-png", "too-large"],
)
async def test_a_refused_image_creates_nothing(
    admin_api: httpx.AsyncClient,
    sessions: SessionFactory,
    upload: tuple[str, bytes, str],
    message: str,
) -> None:
    answer = await post_multipart(admin_api, NEW, "/console/products", form(), {"image": upload})

    assert answer.status_code == 422
    assert field_error(answer.text, "image") == message
    async with sessions() as session:
        assert (await session.scalars(select(Product))).all() == []


async def test_a_taken_sku_is_409_and_names_the_field(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    existing = await create_product(sessions, sku="TAKEN-1")

    answer = await post_form(admin_api, NEW, "/console/products", form(sku=existing.sku))

    assert answer.status_code == 409
    assert field_error(answer.text, "sku") == "A product with this SKU exists already."


# --- one product ----------------------------------------------------------------


async def test_edit_saves_the_details_through_the_patch_rules(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions, price=1999, currency="EUR")
    page_url = f"/console/products/{product.id}"
    assert 'value="19.99"' in (await admin_api.get(page_url, headers=HTML)).text

    answer = await post_form(
        admin_api,
        page_url,
        f"{page_url}/details",
        {"name": "Renamed", "description": "", "category": "kitchen", "price": "7.05"},
    )

    assert answer.status_code == 200
    assert "Your changes are saved." in answer.text
    assert "<h1>Renamed</h1>" in answer.text and "EUR 7.05" in answer.text
    saved = await stored(sessions, product.id)
    assert (saved.name, saved.category, saved.price, saved.currency) == (
        "Renamed",
        "kitchen",
        705,
        "EUR",
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "", "category": "x", "price": "1.00"}, "name"),
        ({"name": f"Fine {MARKER}", "category": "x", "price": "one euro"}, "price"),
        ({"name": "x" * 201, "category": "x", "price": "1.00"}, "name"),
    ],
)
async def test_a_refused_edit_is_422_and_shows_the_stored_values(
    admin_api: httpx.AsyncClient, sessions: SessionFactory, fields: dict[str, str], field: str
) -> None:
    product = await create_product(sessions, price=1999)
    page_url = f"/console/products/{product.id}"

    answer = await post_form(admin_api, page_url, f"{page_url}/details", fields)

    assert answer.status_code == 422
    assert field_error(answer.text, field)
    assert MARKER not in answer.text
    assert 'value="Test product"' in answer.text and 'value="19.99"' in answer.text
    assert (await stored(sessions, product.id)).price == 1999


async def test_deactivate_and_reactivate(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    page_url = f"/console/products/{product.id}"

    withdrawn = await post_form(admin_api, page_url, f"{page_url}/deactivate", {})

    assert withdrawn.status_code == 200
    assert "The product is withdrawn" in withdrawn.text
    assert ">Reactivate</button>" in withdrawn.text and ">Deactivate</button>" not in withdrawn.text
    assert (await stored(sessions, product.id)).active is False
    assert (await admin_api.get(f"/shop/products/{product.id}", headers=HTML)).status_code == 404

    back = await post_form(admin_api, page_url, f"{page_url}/reactivate", {})

    assert back.status_code == 200
    assert "The product is for sale again." in back.text
    assert (await stored(sessions, product.id)).active is True
    assert (await admin_api.get(f"/products/{product.id}")).status_code == 200


async def test_set_stock_writes_a_restock_movement(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions, stock=10)
    page_url = f"/console/products/{product.id}"

    lowered = await post_form(admin_api, page_url, f"{page_url}/stock", {"stock": "4"})
    raised = await post_form(admin_api, page_url, f"{page_url}/stock", {"stock": "25"})
    same = await post_form(admin_api, page_url, f"{page_url}/stock", {"stock": "25"})

    assert (lowered.status_code, raised.status_code, same.status_code) == (200, 200, 200)
    assert "The stock is set" in raised.text and "25 in stock." in raised.text
    assert (await stored(sessions, product.id)).stock == 25
    assert await ledger(sessions, product.id) == [
        (MovementKind.INITIAL.value, 10),
        (MovementKind.RESTOCK.value, -6),
        (MovementKind.RESTOCK.value, 21),
    ]
    assert "+21" in raised.text  # the ledger on the page


@pytest.mark.parametrize("value", ["-3", "2.5", "many", "", "10000000000"])
async def test_a_refused_stock_is_422_and_writes_nothing(
    admin_api: httpx.AsyncClient, sessions: SessionFactory, value: str
) -> None:
    product = await create_product(sessions, stock=10)
    page_url = f"/console/products/{product.id}"

    answer = await post_form(admin_api, page_url, f"{page_url}/stock", {"stock": value})

    assert answer.status_code == 422
    assert field_error(answer.text, "stock")
    assert await ledger(sessions, product.id) == [("initial", 10)]


async def test_upload_and_remove_the_image(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    page_url = f"/console/products/{product.id}"
    assert ">Remove image</button>" not in (await admin_api.get(page_url, headers=HTML)).text

    uploaded = await post_multipart(
        admin_api, page_url, f"{page_url}/image", {}, {"image": ("cup.jpg", JPEG, "image/jpeg")}
    )

    assert uploaded.status_code == 200
    assert "The image is uploaded." in uploaded.text
    assert f'src="/console/products/{product.id}/image" alt="Test product"' in uploaded.text
    thumbnail = await admin_api.get(f"{page_url}/image")
    assert (thumbnail.content, thumbnail.headers["content-type"]) == (JPEG, "image/jpeg")
    assert thumbnail.headers["cache-control"] == "private, no-cache"

    removed = await post_form(admin_api, page_url, f"{page_url}/image/remove", {})

    assert removed.status_code == 200
    assert "The image is removed." in removed.text
    assert (await admin_api.get(f"/products/{product.id}/image")).status_code == 404
    again = await admin_api.post(
        f"{page_url}/image/remove", data={"csrf_token": csrf_token(removed.text)}, headers=HTML
    )
    assert again.status_code == 404
    assert "This product has no image to remove." in again.text


@pytest.mark.parametrize(
    "upload",
    [("cat.png", b"plain text\n", "image/png"), ("cat.png", png(), "image/jpeg")],
    ids=["text-named-png", "png-declared-jpeg"],
)
async def test_a_refused_upload_is_422_and_keeps_the_old_image(
    admin_api: httpx.AsyncClient, sessions: SessionFactory, upload: tuple[str, bytes, str]
) -> None:
    product = await create_product(sessions)
    page_url = f"/console/products/{product.id}"
    await post_multipart(
        admin_api, page_url, f"{page_url}/image", {}, {"image": ("a.webp", JPEG, "image/jpeg")}
    )

    answer = await post_multipart(admin_api, page_url, f"{page_url}/image", {}, {"image": upload})

    assert answer.status_code == 422
    assert field_error(answer.text, "image")
    assert (await admin_api.get(f"{page_url}/image")).content == JPEG


async def test_an_upload_beyond_what_the_page_takes_is_413_and_changes_nothing(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    # Browsers refuse it before sending (static/console-image.js); a client
    # without script gets the body limit's 413, before the form is read.
    product = await create_product(sessions)
    page_url = f"/console/products/{product.id}"
    huge = ("huge.png", png_of_size(3 * 1024 * 1024), "image/png")

    answer = await post_multipart(admin_api, page_url, f"{page_url}/image", {}, {"image": huge})

    assert answer.status_code == 413
    assert (await admin_api.get(f"/products/{product.id}/image")).status_code == 404


async def test_an_upload_without_a_file_is_422(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    page_url = f"/console/products/{product.id}"
    answer = await post_form(admin_api, page_url, f"{page_url}/image", {})
    assert answer.status_code == 422
    assert field_error(answer.text, "image") == "This field is required."


async def test_a_form_without_its_csrf_token_is_refused(
    admin_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions, stock=3)
    answer = await admin_api.post(
        f"/console/products/{product.id}/stock", data={"stock": "50"}, headers=HTML
    )
    assert answer.status_code == 403
    assert (await stored(sessions, product.id)).stock == 3


@pytest.mark.parametrize(
    "path", ["/console/products/not-an-id", f"/console/products/{uuid.uuid4()}"]
)
async def test_an_unknown_product_is_a_404_page(admin_api: httpx.AsyncClient, path: str) -> None:
    answer = await admin_api.get(path, headers=HTML)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
