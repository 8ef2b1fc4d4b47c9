"""The console is for admins: customers get a 403 page, visitors the login page."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import insert

from core.db import SessionFactory
from core.models import CaughtMail
from core.models.users import Role
from tests.api.console.console_support import HTML, log_in
from tests.support.factories import create_user

CONSOLE_PAGES = ["/console/mail"]


@pytest.mark.parametrize("path", CONSOLE_PAGES)
async def test_a_visitor_is_sent_to_log_in(api: httpx.AsyncClient, path: str) -> None:
    answer = await api.get(path, headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/shop/login?next=")


@pytest.mark.parametrize("path", CONSOLE_PAGES)
async def test_a_customer_gets_a_403_page(
    api: httpx.AsyncClient, sessions: SessionFactory, path: str
) -> None:
    customer = await create_user(sessions)
    await log_in(api, customer.email)
    answer = await api.get(path, headers=HTML)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")


async def test_the_mail_page_links_each_order_mail_to_its_order(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    admin = await create_user(sessions, role=Role.ADMIN)
    order_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        await session.execute(
            insert(CaughtMail),
            [
                {
                    "mail_from": "shop@example.com",
                    "rcpt_to": "ada@example.com",
                    "subject": "Your order is confirmed",
                    "message_id": f"<order-{order_id}-order_confirmed@example.com>",
                    "body": "Thanks",
                },
                {
                    "mail_from": "shop@example.com",
                    "rcpt_to": "bob@example.com",
                    "subject": "Reset your password",
                    "message_id": "<reset-1@example.com>",
                    "body": "Reset",
                },
            ],
        )
    await log_in(api, admin.email)
    answer = await api.get("/console/mail", headers=HTML)
    assert answer.status_code == 200
    assert f'href="/console/orders/{order_id}"' in answer.text
    assert answer.text.count('href="/console/orders/') == 1
    assert "Reset your password" in answer.text
