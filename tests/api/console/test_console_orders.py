"""The console's orders table, an order's page and its actions, without a browser."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from core.db import SessionFactory
from core.models import Notification, Order, OrderStatus
from core.models.notifications import NotificationStatus
from tests.api.console.console_support import HTML, make_admin, post_form
from tests.support.factories import create_user
from tests.support.order_factory import create_order

ORDER_LINK = re.compile(r'href="/console/orders/([0-9a-f-]{36})"')


def listed(page: str) -> set[str]:
    return set(ORDER_LINK.findall(page))


async def _set(sessions: SessionFactory, order_id: uuid.UUID, **values: object) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.id == order_id).values(**values))


async def _row(sessions: SessionFactory, order_id: uuid.UUID) -> Order:
    async with sessions() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return order


async def test_each_filter_narrows_the_table(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    ada = await create_user(sessions)
    bob = await create_user(sessions)
    pending = await create_order(sessions, customer=ada)
    confirmed = await create_order(sessions, customer=bob)
    flagged = await create_order(sessions, customer=bob)
    await _set(sessions, confirmed.id, status=OrderStatus.CONFIRMED)
    await _set(
        sessions,
        flagged.id,
        status=OrderStatus.CANCELLED,
        needs_attention=True,
        created_at=datetime.now(UTC) - timedelta(days=3),
    )
    everyone = {str(o.id) for o in (pending, confirmed, flagged)}
    today = datetime.now(UTC).date()

    async def table(**query: str) -> set[str]:
        answer = await console.get("/console/orders", params=query, headers=HTML)
        assert answer.status_code == 200
        return listed(answer.text)

    assert await table() == everyone
    assert await table(status="confirmed") == {str(confirmed.id)}
    assert await table(needs_attention="on") == {str(flagged.id)}
    assert await table(customer=ada.email) == {str(pending.id)}
    assert await table(created_from=today.isoformat()) == {str(pending.id), str(confirmed.id)}
    assert await table(created_to=(today - timedelta(days=1)).isoformat()) == {str(flagged.id)}
    # Blank fields, as the form sends them, mean "any".
    blank = await table(status="", customer="", created_from="", created_to="")
    assert blank == everyone


async def test_the_table_is_newest_first_and_pages(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    customer = await create_user(sessions)
    older = await create_order(sessions, customer=customer)
    newer = await create_order(sessions, customer=customer)
    await _set(sessions, older.id, created_at=datetime.now(UTC) - timedelta(hours=1))
    page = (await console.get("/console/orders", headers=HTML)).text
    assert page.index(str(newer.id)) < page.index(str(older.id))
    # Past the last page: an empty page, not an error.
    beyond = await console.get("/console/orders", params={"page": "2"}, headers=HTML)
    assert beyond.status_code == 200
    assert listed(beyond.text) == set()


async def test_a_bad_filter_gets_a_422_page_that_does_not_repeat_it(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    marker = "zz<b>marker</b>"
    for query in (
        {"status": marker},
        {"created_from": marker},
        {"needs_attention": marker},
        {"page": marker},
        {"page": "0"},
    ):
        answer = await console.get("/console/orders", params=query, headers=HTML)
        assert answer.status_code == 422, query
        assert answer.headers["content-type"].startswith("text/html")
        assert "marker" not in answer.text


async def test_the_order_page_shows_lines_payment_notifications_timeline_and_its_saga(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    order = await create_order(sessions)
    await _set(sessions, order.id, status=OrderStatus.CONFIRMED)
    async with sessions() as session, session.begin():
        session.add(
            Notification(
                order_id=order.id,
                kind="order_confirmed",
                channel="email",
                recipient="ada@example.com",
                subject="Confirmed",
                body="Thanks",
                status=NotificationStatus.SENT,
                sent_at=datetime.now(UTC),
            )
        )
    answer = await console.get(f"/console/orders/{order.id}", headers=HTML)
    assert answer.status_code == 200
    page = answer.text
    assert "ada@example.com" in page
    assert "USD 12.50" in page
    # A confirmed order can be shipped or cancelled, not delivered.
    assert f'action="/console/orders/{order.id}/ship"' in page
    assert f'action="/console/orders/{order.id}/cancel"' in page
    assert f'action="/console/orders/{order.id}/deliver"' not in page
    # Nothing waits on a back-off (the order has no saga): no "Retry now".
    assert f'action="/console/orders/{order.id}/retry"' not in page
    # Dev settings link the Temporal Web UI.
    assert ">Open in Temporal Web UI</a>" in page


async def test_a_missing_or_malformed_order_is_a_404_page(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    for path in (f"/console/orders/{uuid.uuid4()}", "/console/orders/not-an-id"):
        answer = await console.get(path, headers=HTML)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")


async def test_a_refused_action_redirects_with_an_alert_and_changes_nothing(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    order = await create_order(sessions)
    await _set(sessions, order.id, status=OrderStatus.CONFIRMED)
    before = await _row(sessions, order.id)
    url = f"/console/orders/{order.id}"

    answer = await post_form(console, url, f"{url}/deliver", {})
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(url + "?")
    assert "alert=order-state-conflict" in location
    shown = await console.get(location, headers=HTML)
    assert shown.status_code == 200
    assert 'role="alert"' in shown.text
    after = await _row(sessions, order.id)
    assert (after.status, after.updated_at, after.carrier) == (
        before.status,
        before.updated_at,
        before.carrier,
    )


async def test_an_action_the_rules_never_allow_is_refused_without_temporal(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    order = await create_order(sessions)
    await _set(sessions, order.id, status=OrderStatus.CANCELLED)
    url = f"/console/orders/{order.id}"
    page = (await console.get(url, headers=HTML)).text
    assert "/ship" not in page and "/deliver" not in page and "/cancel" not in page
    answer = await post_form(console, url, f"{url}/ship", {"carrier": "DHL"})
    assert answer.status_code == 303
    assert "alert=order-state-conflict" in answer.headers["location"]
    assert (await _row(sessions, order.id)).carrier is None


async def test_retry_with_nothing_waiting_redirects_with_its_alert(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    order = await create_order(sessions)
    url = f"/console/orders/{order.id}"
    answer = await post_form(console, url, f"{url}/retry", {})
    assert answer.status_code == 303
    assert "alert=nothing-to-retry" in answer.headers["location"]


async def test_a_bad_ship_form_is_a_422_page_that_does_not_repeat_it(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    order = await create_order(sessions)
    await _set(sessions, order.id, status=OrderStatus.CONFIRMED)
    url = f"/console/orders/{order.id}"
    marker = "zzmarker" * 20  # longer than a carrier may be
    answer = await post_form(console, url, f"{url}/ship", {"carrier": marker})
    assert answer.status_code == 422
    assert "zzmarker" not in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert (await _row(sessions, order.id)).status is OrderStatus.CONFIRMED


async def test_an_action_without_its_csrf_token_is_refused(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    order = await create_order(sessions)
    await _set(sessions, order.id, status=OrderStatus.CONFIRMED)
    answer = await console.post(
        f"/console/orders/{order.id}/ship", data={"carrier": "DHL"}, headers=HTML
    )
    assert answer.status_code == 403
    assert (await _row(sessions, order.id)).status is OrderStatus.CONFIRMED


async def test_a_notice_or_alert_is_only_ever_a_fixed_text(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    order = await create_order(sessions)
    answer = await console.get(
        f"/console/orders/{order.id}",
        params={"notice": "zzmarker", "alert": "zzmarker", "action": "zzmarker"},
        headers=HTML,
    )
    assert answer.status_code == 200
    assert "zzmarker" not in answer.text
    assert 'role="alert"' not in answer.text


async def test_the_stuck_view_lists_flagged_orders_only(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await make_admin(console, sessions)
    flagged = await create_order(sessions)
    fine = await create_order(sessions)
    await _set(sessions, flagged.id, status=OrderStatus.CANCELLED, needs_attention=True)
    await _set(sessions, fine.id, status=OrderStatus.CONFIRMED)
    answer = await console.get("/console/stuck", headers=HTML)
    assert answer.status_code == 200
    assert listed(answer.text) == {str(flagged.id)}
    async with sessions() as session:
        assert await session.scalar(select(Order.status).where(Order.id == fine.id))
