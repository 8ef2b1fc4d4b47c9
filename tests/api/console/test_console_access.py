"""The console is for admins: customers get a 403 page, visitors the login page."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import insert, select

from core.db import SessionFactory
from core.models import CaughtMail, Order, OrderStatus
from core.models.users import Role
from tests.api.console.console_support import HTML, log_in, post_form
from tests.support.factories import create_user
from tests.support.order_factory import create_order

CONSOLE_PAGES = [
    "/console",
    "/console/orders",
    "/console/stuck",
    f"/console/orders/{uuid.uuid4()}",
    "/console/mail",
]
# The order page's forms: a customer's post is refused before anything runs.
CONSOLE_FORMS = ["ship", "deliver", "cancel", "retry"]


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


@pytest.mark.parametrize("action", CONSOLE_FORMS)
async def test_a_customer_cannot_post_a_console_action(
    api: httpx.AsyncClient, sessions: SessionFactory, action: str
) -> None:
    customer = await create_user(sessions)
    order = await create_order(sessions, customer=customer)
    await log_in(api, customer.email)
    # The CSRF token of the customer's own order page: only the role is wrong.
    answer = await post_form(
        api, f"/shop/orders/{order.id}", f"/console/orders/{order.id}/{action}", {}
    )
    assert answer.status_code == 403
    async with sessions() as session:
        assert await session.scalar(select(Order.status).where(Order.id == order.id)) is (
            OrderStatus.PENDING
        )


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


async def test_the_shop_links_admins_to_the_console_and_no_one_else(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    customer = await create_user(sessions)
    await log_in(api, customer.email)
    assert 'href="/console"' not in (await api.get("/", headers=HTML)).text
    api.cookies.clear()
    admin = await create_user(sessions, role=Role.ADMIN)
    await log_in(api, admin.email)
    assert 'href="/console"' in (await api.get("/", headers=HTML)).text
