"""The shop in a real browser: Chromium driven by Playwright, the app served by uvicorn.

The app, the browser and the fixtures are tests/support/browser.py's.
Controls are found as a person or a screen reader finds them, by role and
accessible name, never by CSS selectors, and every wait is Playwright's
bounded auto-wait.

Screenshots of the main pages go to ``ORDERSAGA_SCREENSHOTS`` (``make
screenshots`` points it at docs/screenshots/) or to a temporary directory.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import select

from activities.payment_simulator import PaymentSimulator
from api.web.session import SESSION_COOKIE
from core.db import SessionFactory
from core.models import CaughtMail
from tests.support.browser import PHONE, SAGA_MS, Shop, shot
from tests.support.e2e import ADDRESS
from tests.support.factories import DEFAULT_PASSWORD, create_user


async def _register(page: Page) -> str:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await page.goto("/")
    await page.get_by_role("link", name="Register").click()
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("analytical-engine-1843")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return email


async def _log_in(page: Page, email: str) -> None:
    await page.goto("/")
    await page.get_by_role("link", name="Log in", exact=True).click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


async def _add_from_search(page: Page, text: str, product: str) -> None:
    await page.get_by_role("link", name="Catalog", exact=True).click()
    await page.get_by_label("Search").fill(text)
    await page.get_by_label("Search").press("Enter")
    card = page.get_by_role("article", name=product)
    await card.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_role("heading", name="Your cart")).to_be_visible()


async def _fill_address(page: Page) -> None:
    await page.get_by_label("Name").fill(ADDRESS["name"])
    await page.get_by_label("Address line 1").fill(ADDRESS["line1"])
    await page.get_by_label("City").fill(ADDRESS["city"])
    await page.get_by_label("Postal code").fill(ADDRESS["postal_code"])
    await page.get_by_label("Country").fill(ADDRESS["country"])


async def test_buy_watch_the_order_confirm_then_cancel_and_see_the_refund(
    page: Page, shop: Shop, sessions: SessionFactory
) -> None:
    await _register(page)
    await shot(page, shop, "catalog")

    await page.get_by_role("link", name="Gooseneck Kettle").click()
    await expect(page.get_by_role("heading", name="Gooseneck Kettle")).to_be_visible()
    await shot(page, shop, "product")

    await _add_from_search(page, "kettle", "Gooseneck Kettle")
    await _add_from_search(page, "mug", "Ceramic Coffee Mug")
    mug = page.get_by_role("article", name="Ceramic Coffee Mug")
    await mug.get_by_label("Quantity").fill("3")
    await mug.get_by_role("button", name="Update").click()
    await expect(
        page.get_by_role("article", name="Ceramic Coffee Mug").get_by_label("Quantity")
    ).to_have_value("3")
    await expect(page.get_by_role("link", name="Cart")).to_contain_text("4")
    await shot(page, shop, "cart")

    await page.get_by_role("link", name="Checkout").click()
    await _fill_address(page)
    await page.get_by_label("Visa that works").check()
    await shot(page, shop, "checkout")

    # The provider is down, so the order page surely opens while the order is
    # pending; once it is back, the page must show the confirmation by itself.
    provider = PaymentSimulator(sessions, timeout_seconds=5)
    await provider.set_outage(True)
    try:
        await page.get_by_role("button", name="Place order").click()
        status = page.get_by_role("status")
        await expect(status).to_contain_text("Pending")
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
    finally:
        await provider.set_outage(False)
    await expect(status).to_contain_text("Confirmed", timeout=SAGA_MS)
    assert navigations == [], "the page reloaded instead of updating itself"
    await expect(page.get_by_text("Payment: Captured")).to_be_visible()
    # The cart was emptied with the confirmation; the page's cart badge follows.
    await expect(page.get_by_role("link", name="Cart")).to_have_text("Cart")
    await shot(page, shop, "order-confirmed")

    await page.get_by_label("Reason").fill("Bought the wrong mug")
    await page.get_by_role("button", name="Cancel order").click()
    await expect(page.get_by_role("status")).to_contain_text("Cancelled", timeout=SAGA_MS)
    await expect(page.get_by_text(re.compile(r"Refunded USD \d+\.\d\d"))).to_be_visible(
        timeout=SAGA_MS
    )
    await expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)

    # The cart was emptied when the order was confirmed; my orders lists it.
    await expect(page.get_by_role("link", name="Cart")).to_have_text("Cart")
    await page.get_by_role("link", name="My orders", exact=True).click()
    await expect(page.get_by_role("cell", name="Cancelled")).to_be_visible()
    await shot(page, shop, "my-orders")


async def test_a_declined_card_ends_at_payment_failed_and_keeps_the_cart(
    page: Page, shop: Shop, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await _log_in(page, user.email)
    await _add_from_search(page, "keyboard", "Mechanical Keyboard TKL")

    await page.get_by_role("link", name="Checkout").click()
    await _fill_address(page)
    await page.get_by_label("Declined card").check()
    await page.get_by_role("button", name="Place order").click()

    await expect(page.get_by_role("status")).to_contain_text("Payment failed", timeout=SAGA_MS)
    await page.get_by_role("link", name="Cart").click()
    line = page.get_by_role("article", name="Mechanical Keyboard TKL")
    await expect(line.get_by_label("Quantity")).to_have_value("1")


async def test_after_logout_the_old_session_cookie_no_longer_works(
    browser: Browser, page: Page, context: BrowserContext, shop: Shop, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await _log_in(page, user.email)
    old = next(c for c in await context.cookies() if c.get("name") == SESSION_COOKIE)

    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()

    replay = await browser.new_context(base_url=shop.url)
    try:
        await replay.add_cookies([old])  # type: ignore[list-item]
        stolen = await replay.new_page()
        await stolen.goto("/shop/orders")
        await expect(stolen.get_by_role("heading", name="Log in")).to_be_visible()
        await expect(stolen.get_by_role("button", name="Log out")).to_have_count(0)
    finally:
        await replay.close()


async def test_a_form_posted_without_its_csrf_token_is_refused(
    page: Page, context: BrowserContext, shop: Shop, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await _log_in(page, user.email)
    await page.get_by_role("link", name="Gooseneck Kettle").click()
    action = page.url.replace("/shop/products/", "/shop/cart/items/")

    # The browser's own cookies go along; only the form's token is missing.
    refused = await context.request.post(
        action, form={"quantity": "1"}, headers={"Accept": "text/html"}
    )
    assert refused.status == 403
    assert "Not allowed" in await refused.text()

    await page.get_by_role("link", name="Cart").click()
    await expect(page.get_by_text("Your cart is empty")).to_be_visible()


async def test_keyboard_only_log_in_and_add_to_cart_at_phone_width(
    page: Page, shop: Shop, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await page.set_viewport_size(PHONE)
    await page.goto("/shop/login")
    await page.get_by_label("Email").focus()
    await page.keyboard.type(user.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(DEFAULT_PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await shot(page, shop, "catalog-phone", full_page=False)

    await page.get_by_role("link", name="Wireless Mouse").focus()
    await page.keyboard.press("Enter")
    await page.get_by_role("button", name="Add to cart").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("article", name="Wireless Mouse")).to_be_visible()


async def _reset_link_path(sessions: SessionFactory, to: str) -> str:
    """The path of the reset link mailed to ``to`` (bounded poll of the SMTP sink)."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        async with sessions() as session:
            mail = await session.scalar(select(CaughtMail).where(CaughtMail.rcpt_to == to))
        if mail is not None:
            found = re.search(r"/reset-password\?token=[A-Za-z0-9_-]+", mail.body)
            assert found, "no reset link in the mail"
            return found.group(0)
        assert asyncio.get_running_loop().time() < deadline, "no reset mail"
        await asyncio.sleep(0.1)


async def test_forgot_password_then_reset_then_log_in_with_the_new_password(
    page: Page, shop: Shop, sessions: SessionFactory
) -> None:
    user = await create_user(sessions)
    await page.goto("/shop/login")
    await page.get_by_role("link", name="Forgot password?").click()
    await page.get_by_label("Email").fill(user.email)
    await page.get_by_role("button", name="Send reset link").click()
    await expect(page.get_by_role("status")).to_be_visible()

    await page.goto(await _reset_link_path(sessions, user.email))
    await page.get_by_label("New password").fill("difference-engine-1822")
    await page.get_by_role("button", name="Reset password").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await expect(page.get_by_role("status")).to_be_visible()

    await page.get_by_label("Email").fill(user.email)
    await page.get_by_label("Password").fill("difference-engine-1822")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_api_docs_render_with_the_network_off(
    page: Page, context: BrowserContext, shop: Shop, path: str
) -> None:
    offsite: list[str] = []

    async def same_origin_only(route: Route) -> None:
        if route.request.url.startswith(shop.url):
            await route.continue_()
        else:  # the network is "off": anything else fails, as without a connection
            offsite.append(route.request.url)
            await route.abort()

    await context.route("**/*", same_origin_only)
    await page.goto(path)
    # Both UIs show the API's title once they have loaded and read /openapi.json.
    await expect(page.get_by_role("heading", name=re.compile("ordersaga")).first).to_be_visible()
    await expect(page.get_by_text("/cart/checkout").first).to_be_attached()
    assert offsite == []
