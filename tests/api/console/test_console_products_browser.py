"""The console's product pages in a real browser, then the shop showing what was made there.

The app, Chromium and the fixtures are tests/support/browser.py's; controls
are found by role and accessible name, and every wait is Playwright's
bounded auto-wait.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from core.db import SessionFactory
from core.models.users import Role
from tests.support.browser import Shop, shot
from tests.support.factories import DEFAULT_PASSWORD, create_user
from tests.support.images import TOO_LARGE, png, png_of_size

WIDTH, HEIGHT = 64, 48


async def test_an_admin_creates_a_product_with_an_image_and_the_shop_shows_it(
    page: Page, shop: Shop, sessions: SessionFactory
) -> None:
    admin = await create_user(sessions, role=Role.ADMIN)
    await page.goto("/shop/login?next=/console/products")
    await page.get_by_label("Email").fill(admin.email)
    await page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Products", level=1)).to_be_visible()

    await page.get_by_role("link", name="New product").click()
    await page.get_by_label("SKU", exact=True).fill("CUP-ESPRESSO-80")
    await page.get_by_label("Name", exact=True).fill("Espresso Cup")
    await page.get_by_label("Description", exact=True).fill("Double-walled glass, 80 ml.")
    await page.get_by_label("Category", exact=True).fill("kitchen")
    await page.get_by_label("Price", exact=True).fill("12.50")
    await page.get_by_label("Currency", exact=True).select_option("USD")
    await page.get_by_label("Stock", exact=True).fill("6")
    await page.get_by_label("Image", exact=True).set_input_files(
        files=[{"name": "cup.png", "mimeType": "image/png", "buffer": png(WIDTH, HEIGHT)}]
    )
    await page.get_by_role("button", name="Create product").click()

    await expect(page.get_by_role("status")).to_have_text("The product is created.")
    await expect(page.get_by_role("heading", name="Espresso Cup", level=1)).to_be_visible()
    await expect(page.get_by_text("USD 12.50")).to_be_visible()
    await expect(page.get_by_role("img", name="Espresso Cup")).to_have_js_property(
        "naturalWidth", WIDTH
    )

    # A picture too large is refused as soon as it is chosen, before it is sent.
    too_large = page.get_by_label("Image", exact=True)
    await too_large.set_input_files(
        files=[{"name": "big.png", "mimeType": "image/png", "buffer": png_of_size(TOO_LARGE)}]
    )
    await expect(too_large).to_have_js_property(
        "validationMessage", "The image is larger than 2 MiB."
    )

    # The same page sets the stock, through the ledger.
    await page.get_by_label("Stock", exact=True).fill("9")
    await page.get_by_role("button", name="Set stock").click()
    await expect(page.get_by_role("status")).to_contain_text("The stock is set")
    await expect(page.get_by_text("9 in stock.")).to_be_visible()

    # The list (the demo catalog and this one), with its thumbnail.
    await page.get_by_role("link", name="Products", exact=True).click()
    await expect(page.get_by_role("link", name="Espresso Cup")).to_be_visible()
    await page.wait_for_load_state("load")  # the pictures too
    await shot(page, shop, "console-products")
    await page.get_by_label("Search").fill("espresso")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("status")).to_have_text("1 product")

    # The shop's product page shows the picture, loaded.
    await page.get_by_role("link", name="Espresso Cup").click()
    await page.get_by_role("link", name="See it in the shop").click()
    await expect(page.get_by_role("heading", name="Espresso Cup", level=1)).to_be_visible()
    picture = page.get_by_role("img", name="Espresso Cup")
    await expect(picture).to_be_visible()
    await expect(picture).to_have_js_property("naturalWidth", WIDTH)
    await expect(picture).to_have_js_property("complete", True)
