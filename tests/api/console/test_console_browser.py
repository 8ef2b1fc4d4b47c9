"""The console in a real browser: an admin ships and delivers what a customer bought.

Chromium drives the real app (tests/support/browser.py: uvicorn, a real
worker on the Temporal dev server, PostgreSQL). The customer and the admin
each have their own browser context, as two people on two machines.
Controls are found by role and accessible name; every wait is bounded
(Playwright's expect, or tests/support/polling.py where a page must be
reloaded to show news).
"""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, BrowserContext, Page, expect

from core.db import SessionFactory
from core.models.users import Role
from tests.support.browser import DESKTOP, PHONE, SAGA_MS, Shop, shot
from tests.support.e2e import ADDRESS
from tests.support.factories import DEFAULT_PASSWORD, create_user
from tests.support.polling import poll_until

ORDER_URL = re.compile(r"/shop/orders/([0-9a-f-]{36})$")


async def _buy(page: Page, card: str) -> str:
    """Register, buy a kettle with ``card`` (its label), and return the order's id."""
    await page.goto("/")
    await page.get_by_role("link", name="Register").click()
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("Email").fill(f"ada-{uuid.uuid4().hex[:8]}@example.com")
    await page.get_by_label("Password").fill("analytical-engine-1843")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await page.get_by_role("link", name="Gooseneck Kettle").click()
    await page.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_role("heading", name="Your cart")).to_be_visible()
    await page.get_by_role("link", name="Checkout").click()
    await page.get_by_label("Name").fill(ADDRESS["name"])
    await page.get_by_label("Address line 1").fill(ADDRESS["line1"])
    await page.get_by_label("City").fill(ADDRESS["city"])
    await page.get_by_label("Postal code").fill(ADDRESS["postal_code"])
    await page.get_by_label("Country").fill(ADDRESS["country"])
    await page.get_by_label(card).check()
    await page.get_by_role("button", name="Place order").click()
    await expect(page).to_have_url(ORDER_URL)
    found = ORDER_URL.search(page.url)
    assert found is not None
    return found.group(1)


async def _admin_page(browser: Browser, shop: Shop, sessions: SessionFactory) -> BrowserContext:
    """A second browser, logged in as a new admin through the shop's login page."""
    admin = await create_user(sessions, role=Role.ADMIN)
    context = await browser.new_context(
        base_url=shop.url, viewport={"width": DESKTOP["width"], "height": DESKTOP["height"]}
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    await page.goto("/shop/login")
    await page.get_by_label("Email").fill(admin.email)
    await page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return context


async def test_an_admin_ships_and_delivers_what_a_customer_bought(
    browser: Browser, page: Page, shop: Shop, sessions: SessionFactory
) -> None:
    order_id = await _buy(page, "Visa that works")
    customer_status = page.get_by_role("status")
    await expect(customer_status).to_contain_text("Confirmed", timeout=SAGA_MS)
    name = f"Order {order_id[:8]}"

    admin_context = await _admin_page(browser, shop, sessions)
    try:
        console = admin_context.pages[0]
        await console.goto("/console")
        await expect(console.get_by_role("heading", name="Dashboard")).to_be_visible()
        await shot(console, shop, "console-dashboard")

        await (
            console.get_by_role("navigation", name="Console")
            .get_by_role("link", name="Orders", exact=True)
            .click()
        )
        await console.get_by_label("Status").select_option("confirmed")
        await console.get_by_role("button", name="Filter").click()
        await expect(console.get_by_role("link", name=name)).to_be_visible()
        await shot(console, shop, "console-orders")

        await console.get_by_role("link", name=name).click()
        await expect(console.get_by_role("heading", name=name)).to_be_visible()
        await expect(console.get_by_role("button", name="Deliver")).to_have_count(0)
        await shot(console, shop, "console-order")

        await console.get_by_label("Carrier").fill("DHL")
        await console.get_by_label("Tracking number").fill("JD014600003828")
        await console.get_by_role("button", name="Ship").click()
        await expect(console.get_by_role("status")).to_contain_text("shipped", timeout=SAGA_MS)
        await expect(console.get_by_role("button", name="Ship")).to_have_count(0)
        await expect(customer_status).to_contain_text("Shipped", timeout=SAGA_MS)

        await console.get_by_role("button", name="Deliver").click()
        await expect(console.get_by_role("status")).to_contain_text("delivered", timeout=SAGA_MS)
        await expect(console.get_by_role("button", name="Deliver")).to_have_count(0)
        await expect(customer_status).to_contain_text("Delivered", timeout=SAGA_MS)

        await console.goto("/console/mail")
        await expect(console.get_by_role("heading", name="Mail")).to_be_visible()
        await shot(console, shop, "console-mail")
    finally:
        await admin_context.close()


async def test_the_stuck_view_shows_a_timed_out_charge(
    browser: Browser, page: Page, shop: Shop, sessions: SessionFactory
) -> None:
    order_id = await _buy(page, "Timeout card (never answers)")
    name = f"Order {order_id[:8]}"
    admin_context = await _admin_page(browser, shop, sessions)
    try:
        console = admin_context.pages[0]
        # A second without progress counts as stuck here: the charge's first
        # attempt alone waits for the provider's 5-second timeout.
        await console.goto("/console/stuck?stuck_after_seconds=1")
        row = console.get_by_role("row").filter(has=console.get_by_role("link", name=name))

        async def listed_waiting_on_the_charge() -> bool:
            # The view shows what it knew when loaded: reload until it lists the order.
            await console.reload()
            # Its first attempt timed out: the view names the step and its failure.
            waiting = row.filter(has_text="charge_payment").filter(has_text="Last failure")
            return await waiting.count() == 1

        await poll_until(
            listed_waiting_on_the_charge, "the stuck view listing the charge", timeout=45
        )
        await shot(console, shop, "console-stuck")

        # The same view at phone width, and the order's page from it.
        await console.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
        await row.get_by_role("link", name=name).click()
        await expect(console.get_by_role("heading", name=name)).to_be_visible()
        await expect(console.get_by_role("heading", name="Waiting on")).to_be_visible()
    finally:
        await admin_context.close()
