"""Logging a browser-like client into the console (or the shop) with the page forms."""

from __future__ import annotations

import re

import httpx

from core.db import SessionFactory
from core.models import User
from core.models.users import Role
from tests.support.factories import DEFAULT_PASSWORD, create_user

HTML = {"Accept": "text/html,application/xhtml+xml"}


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/shop/login", headers=HTML)
    answer = await client.post(
        "/shop/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": DEFAULT_PASSWORD},
        headers=HTML,
    )
    assert answer.status_code == 303


async def post_form(
    client: httpx.AsyncClient, page_url: str, action: str, fields: dict[str, str]
) -> httpx.Response:
    """Post ``fields`` to ``action`` with the CSRF token of the page at ``page_url``."""
    page = await client.get(page_url, headers=HTML)
    assert page.status_code == 200
    return await client.post(
        action, data={"csrf_token": csrf_token(page.text), **fields}, headers=HTML
    )


async def make_admin(client: httpx.AsyncClient, sessions: SessionFactory) -> User:
    """A new admin, logged into ``client``."""
    admin = await create_user(sessions, role=Role.ADMIN)
    await log_in(client, admin.email)
    return admin
