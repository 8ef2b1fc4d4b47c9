"""A real browser over the real app: Chromium driven by Playwright, the app under uvicorn.

Shared by the storefront's and the console's browser tests. The app runs on a
free port with a real worker on the Temporal dev server and PostgreSQL
(tests/support/e2e.py). Playwright cannot download its own browser build
here, so the system's Chromium is used (``make test`` installs Debian's).

Screenshots go to ``ORDERSAGA_SCREENSHOTS`` (``make screenshots`` points it at
docs/screenshots/) or to a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.db import SessionFactory
from tests.support.e2e import free_port, running_stack
from tests.support.e2e_fixtures import dev_settings
from tooling.seed import seed_catalog

# Debian's chromium (what `make test` installs), else a Chrome already there.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Long enough for a saga on a busy 2-core machine (Playwright's expect polls until then).
SAGA_MS = 45_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Shop:
    url: str
    sessions: SessionFactory
    shots: Path


@pytest.fixture(scope="module")
async def shop(
    database_url: str,
    signing_key_pem: str,
    temporal_dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Shop]:
    """The API (pages included) under uvicorn on a free port, with a real worker."""
    settings = dev_settings(database_url, signing_key_pem, tmp_path_factory.mktemp("shop"))
    shots = Path(os.environ.get("ORDERSAGA_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    shots.mkdir(parents=True, exist_ok=True)
    async with running_stack(settings, temporal_dev_server.client, database_url) as stack:
        app = create_app(stack.settings, temporal_client=stack.temporal)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        serving = asyncio.create_task(server.serve())
        async with asyncio.timeout(30):
            while not server.started:
                if serving.done():
                    serving.result()  # raises what stopped it
                await asyncio.sleep(0.05)
        try:
            yield Shop(f"http://127.0.0.1:{port}", stack.sessions, shots)
        finally:
            server.should_exit = True
            await serving


def _chromium() -> str:
    chosen = os.environ.get("ORDERSAGA_CHROMIUM")
    if chosen:
        return chosen
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium is not installed: `make test` installs Debian's chromium package")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as playwright:
        # Playwright cannot download its own browser build here: use the system's.
        launched = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def context(
    browser: Browser, shop: Shop, sessions: SessionFactory
) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile over clean tables holding the demo catalog."""
    await seed_catalog(sessions)
    ctx = await browser.new_context(base_url=shop.url, viewport=DESKTOP)
    ctx.set_default_timeout(15_000)
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


async def shot(page: Page, shop: Shop, name: str, *, full_page: bool = True) -> None:
    await page.screenshot(path=str(shop.shots / f"{name}.png"), full_page=full_page)
