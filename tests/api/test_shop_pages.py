"""The shop's pages without a browser: sessions, CSRF, CSP, error pages and offline docs.

The buying flow in a real browser is in tests/api/test_shop_browser.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi.responses import Response
from sqlalchemy import func, text, update

from api.cart_store import set_line
from api.main import create_app
from api.web.csrf import CSRF_COOKIE
from api.web.session import SESSION_COOKIE, set_session
from core.db import SessionFactory
from core.models import Order, Product, User
from core.settings import Settings
from tests.support import order_factory
from tests.support.factories import DEFAULT_PASSWORD, create_product, create_user
from tooling.seed import DEMO_PRODUCTS, seed_catalog

HTML = {"Accept": "text/html,application/xhtml+xml"}
TEMPLATES = Path(__file__).parents[2] / "api" / "web" / "templates"


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def _log_in(api: httpx.AsyncClient, email: str) -> httpx.Response:
    page = await api.get("/shop/login", headers=HTML)
    return await api.post(
        "/shop/login",
        data={"csrf_token": _token(page.text), "email": email, "password": DEFAULT_PASSWORD},
        headers=HTML,
    )


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name) and tag in ("script", "link", "img"):
                self.urls.append(values[name] or "")
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1


async def test_pages_carry_a_csp_without_inline_script(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_product(sessions)
    response = await api.get("/", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    parser = _Assets()
    parser.feed(response.text)
    assert parser.inline_scripts == 0


def test_templates_hold_no_inline_script_or_handlers() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\ssrc=)", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "style=" not in text, template.name


async def test_a_form_posted_without_its_csrf_token_is_refused(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await api.get("/shop/login", headers=HTML)  # the browser has its CSRF cookie
    for data in (
        {"email": user.email, "password": DEFAULT_PASSWORD},
        {"email": user.email, "password": DEFAULT_PASSWORD, "csrf_token": "forged"},
    ):
        refused = await api.post("/shop/login", data=data, headers=HTML)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert SESSION_COOKIE not in refused.cookies
    assert (await _log_in(api, user.email)).status_code == 303


async def test_a_token_from_another_browser_is_refused(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    token = _token((await api.get("/shop/login", headers=HTML)).text)
    api.cookies.set(CSRF_COOKIE, "another-browser-secret")
    refused = await api.post(
        "/shop/login",
        data={"csrf_token": token, "email": user.email, "password": DEFAULT_PASSWORD},
        headers=HTML,
    )
    assert refused.status_code == 403


async def test_the_session_cookie_is_httponly_and_lax_and_logout_revokes_it(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    logged_in = await _log_in(api, user.email)
    assert logged_in.status_code == 303
    cookie = next(
        h for h in logged_in.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    session_value = api.cookies[SESSION_COOKIE]
    profile = await api.get("/shop/profile", headers=HTML)
    assert profile.status_code == 200

    out = await api.post("/shop/logout", data={"csrf_token": _token(profile.text)}, headers=HTML)
    assert out.status_code == 303

    # The old cookie value, sent again, no longer logs anyone in.
    api.cookies.set(SESSION_COOKIE, session_value)
    again = await api.get("/shop/profile", headers=HTML)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/shop/login")


async def test_errors_are_pages_for_browsers_and_problems_for_json_clients(
    api: httpx.AsyncClient,
) -> None:
    page = await api.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "/no/such/page" not in page.text
    problem = await api.get("/no/such/page", headers={"Accept": "application/json"})
    assert problem.status_code == 404
    assert problem.headers["content-type"] == "application/problem+json"
    missing = await api.get("/shop/products/not-a-product", headers=HTML)
    assert missing.status_code == 404
    assert "not-a-product" not in missing.text


async def test_pages_that_need_a_customer_send_visitors_to_log_in(
    api: httpx.AsyncClient,
) -> None:
    for path in ("/shop/cart", "/shop/checkout", "/shop/orders", "/shop/profile"):
        response = await api.get(path, headers=HTML)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/shop/login?next={path}"


async def test_login_never_redirects_to_another_site(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    page = await api.get("/shop/login?next=//evil.example/", headers=HTML)
    response = await api.post(
        "/shop/login",
        data={
            "csrf_token": _token(page.text),
            "email": user.email,
            "password": DEFAULT_PASSWORD,
            "next": "//evil.example/",
        },
        headers=HTML,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_docs_load_only_same_origin_assets(api: httpx.AsyncClient, path: str) -> None:
    page = await api.get(path)
    assert page.status_code == 200
    parser = _Assets()
    parser.feed(page.text)
    assert parser.urls, "the docs page loads no assets"
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await api.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    # Nothing else in the page points at another origin either.
    assert not re.search(r"https?://", page.text.replace("http://testserver", ""))


async def test_each_browser_gets_its_own_csrf_secret(api: httpx.AsyncClient) -> None:
    first = await api.get("/shop/login", headers=HTML)
    api.cookies.clear()
    second = await api.get("/shop/login", headers=HTML)
    assert first.cookies[CSRF_COOKIE] != second.cookies[CSRF_COOKIE]
    assert _token(first.text) != _token(second.text)


def test_session_cookies_are_secure_outside_dev_mode(settings: Settings) -> None:
    production = settings.model_copy(update={"mode": "production"})
    for chosen, secure in ((settings, False), (production, True)):
        response = Response()
        set_session(response, chosen, "token", 60)
        cookie = response.headers["set-cookie"]
        assert ("Secure" in cookie) is secure
        assert "HttpOnly" in cookie


async def test_catalog_filters_come_from_the_data_and_pages_are_linked(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await seed_catalog(sessions)
    page = await api.get("/", headers=HTML)
    # Every category of the data is offered, and nothing else.
    offered = set(re.findall(r'<option value="([^"]+)"', page.text))
    assert offered == {p.category for p in DEMO_PRODUCTS}

    books = await api.get("/?category=books", headers=HTML)
    names = set(re.findall(r'<h2 id="p-[^"]+"><a [^>]+>([^<]+)</a>', books.text))
    assert names == {p.name for p in DEMO_PRODUCTS if p.category == "books"}

    in_stock = await api.get("/?in_stock=1", headers=HTML)
    assert "Out of stock" not in in_stock.text
    assert "Out of stock" in page.text

    # One more than a page holds: the pages link to each other.
    await create_product(sessions, category="books")
    first = await api.get("/", headers=HTML)
    assert 'rel="next"' in first.text
    second = await api.get("/?page=2", headers=HTML)
    assert 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text
    assert len(re.findall(r'<article class="card"', second.text)) == 1
    # Text the catalog refuses is ignored, not echoed or failed on.
    odd = await api.get("/?q=%00%00", headers=HTML)
    assert odd.status_code == 200


async def test_the_cart_page_shows_repriced_and_withdrawn_products(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await _log_in(api, user.email)
    repriced = await create_product(sessions, price=1000)
    withdrawn = await create_product(sessions, price=500)
    for product in (repriced, withdrawn):
        await set_line(sessions, user.id, product.id, 1)
    async with sessions() as session, session.begin():
        await session.execute(update(Product).where(Product.id == repriced.id).values(price=1250))
        await session.execute(
            update(Product).where(Product.id == withdrawn.id).values(active=False)
        )
    cart = await api.get("/shop/cart", headers=HTML)
    assert "Price changed from USD 10.00 to USD 12.50." in cart.text
    assert "No longer for sale" in cart.text
    assert "USD 12.50" in re.sub(r"\s+", " ", cart.text)


async def test_the_cart_survives_logging_out_and_in(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    product = await create_product(sessions)
    page = await api.get("/shop/login", headers=HTML)
    await _log_in(api, user.email)
    product_page = await api.get(f"/shop/products/{product.id}", headers=HTML)
    added = await api.post(
        f"/shop/cart/items/{product.id}",
        data={"csrf_token": _token(product_page.text), "quantity": "2", "add": "1"},
        headers=HTML,
    )
    assert added.status_code == 303
    cart = await api.get("/shop/cart", headers=HTML)
    await api.post("/shop/logout", data={"csrf_token": _token(cart.text)}, headers=HTML)
    assert page.status_code == 200

    await _log_in(api, user.email)
    again = await api.get("/shop/cart", headers=HTML)
    assert 'value="2"' in again.text


async def test_someone_elses_order_page_is_not_found(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    order = await order_factory.create_order(sessions)
    stranger = await create_user(sessions)
    await _log_in(api, stranger.email)
    for path in (f"/shop/orders/{order.id}", f"/shop/orders/{order.id}/live"):
        response = await api.get(path, headers=HTML)
        assert response.status_code == 404, path
        assert str(order.id) not in response.text


async def test_my_orders_are_newest_first(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    user = await create_user(sessions)
    older = await order_factory.create_order(sessions, customer=user)
    newer = await order_factory.create_order(sessions, customer=user)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Order)
            .where(Order.id == older.id)
            .values(created_at=func.now() - text("interval '1 day'"))
        )
    await _log_in(api, user.email)
    page = (await api.get("/shop/orders", headers=HTML)).text
    assert page.index(f"/shop/orders/{newer.id}") < page.index(f"/shop/orders/{older.id}")


async def test_profile_edits_use_the_profile_rules(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await _log_in(api, user.email)
    page = await api.get("/shop/profile", headers=HTML)
    saved = await api.post(
        "/shop/profile",
        data={"csrf_token": _token(page.text), "name": "Grace Hopper", "phone": "+1 555 0100"},
        headers=HTML,
    )
    assert saved.status_code == 200
    async with sessions() as session:
        stored = await session.get(User, user.id)
        assert stored is not None
        # Kept in E.164, the form SMS providers take (spaces dropped).
        assert (stored.name, stored.phone) == ("Grace Hopper", "+15550100")

    wrong = await api.post(
        "/shop/profile/password",
        data={
            "csrf_token": _token(saved.text),
            "current_password": "not-the-password",
            "new_password": "a-brand-new-passphrase",
        },
        headers=HTML,
    )
    # The same refusal as POST /users/me/password, and nothing typed comes back.
    assert wrong.status_code == 403
    assert "not-the-password" not in wrong.text
    assert "a-brand-new-passphrase" not in wrong.text

    changed = await api.post(
        "/shop/profile/password",
        data={
            "csrf_token": _token(wrong.text),
            "current_password": DEFAULT_PASSWORD,
            "new_password": "a-brand-new-passphrase",
        },
        headers=HTML,
    )
    # Logged in afresh: the change revoked every earlier token, this one's too.
    assert changed.status_code == 303
    assert (await api.get("/shop/profile", headers=HTML)).status_code == 200


async def test_registration_refusals_never_echo_what_was_typed(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    page = await api.get("/shop/register", headers=HTML)
    refused = await api.post(
        "/shop/register",
        data={
            "csrf_token": _token(page.text),
            "name": "Marker-Name-1234",
            "email": "not-an-email-5678",
            "password": "short",
        },
        headers=HTML,
    )
    assert refused.status_code == 422
    for typed in ("Marker-Name-1234", "not-an-email-5678", 'value="short"'):
        assert typed not in refused.text


async def test_a_withdrawn_product_cannot_be_added_but_the_cart_page_says_why(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await _log_in(api, user.email)
    withdrawn = await create_product(sessions, active=False)
    cart = await api.get("/shop/cart", headers=HTML)
    refused = await api.post(
        f"/shop/cart/items/{withdrawn.id}",
        data={"csrf_token": _token(cart.text), "quantity": "1"},
        headers=HTML,
    )
    # The cart's own refusal (404 product-not-found), shown on the cart page.
    assert refused.status_code == 404
    assert "not for sale any more" in refused.text


async def test_an_unexpected_error_is_a_friendly_page_for_browsers(
    settings: Settings, sessions: SessionFactory
) -> None:
    app = create_app(settings)

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret internals")

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/boom", headers=HTML)
            problem = await client.get("/boom", headers={"Accept": "application/json"})
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "secret internals" not in page.text
    assert problem.status_code == 500
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["type"] == "internal-error"


async def test_a_login_form_postgresql_cannot_store_is_refused_as_the_json_login_would(
    api: httpx.AsyncClient,
) -> None:
    page = await api.get("/shop/login", headers=HTML)
    refused = await api.post(
        "/shop/login",
        data={"csrf_token": _token(page.text), "email": "a\x00b@example.com", "password": "x"},
        headers=HTML,
    )
    assert refused.status_code == 422
    assert "text/html" in refused.headers["content-type"]
