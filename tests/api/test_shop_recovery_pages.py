"""The storefront's account recovery pages: forgot password, reset, verify, and the profile's part.

The pages call the REST routes' own code (api/auth/recovery.py, PATCH
/users/me); mail goes through SmtpMailer to the dev sink (tooling/smtp_sink.py)
as in tests/api/test_auth_recovery.py, and the tests read the links from there.
The whole flow in a real browser is in tests/api/test_shop_browser.py.
"""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from sqlalchemy import select

from core.db import SessionFactory
from core.models import AccountToken, CaughtMail, User
from core.settings import Settings
from tests.support.caught_mail import link_token, mails_to
from tests.support.factories import DEFAULT_PASSWORD, create_user

HTML = {"Accept": "text/html,application/xhtml+xml"}
NEW_PASSWORD = "a-brand-new-secret"


@pytest.fixture
def settings(settings: Settings, sink_port: int) -> Settings:
    return settings.model_copy(update={"smtp_port": sink_port, "public_url": "https://shop.test"})


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def _post(api: httpx.AsyncClient, get: str, post: str, **data: str) -> httpx.Response:
    """Open ``get`` as a browser would, then post its form with the page's CSRF token."""
    page = await api.get(get, headers=HTML)
    return await api.post(post, data={"csrf_token": _csrf(page.text), **data}, headers=HTML)


async def _log_in(api: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD) -> None:
    response = await _post(api, "/shop/login", "/shop/login", email=email, password=password)
    assert response.status_code == 303


async def _user(sessions: SessionFactory, email: str) -> User:
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


async def test_forgot_password_answers_alike_and_mails_only_a_known_account(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="known@example.com")
    login = await api.get("/shop/login", headers=HTML)
    assert 'href="/forgot-password"' in login.text

    unknown = await _post(api, "/forgot-password", "/forgot-password", email="nobody@example.com")
    known = await _post(api, "/forgot-password", "/forgot-password", email="Known@Example.com")

    # The same page, byte for byte: whether the email has an account is not shown.
    assert unknown.status_code == known.status_code == 200
    assert unknown.text == known.text
    assert "nobody@example.com" not in unknown.text
    [mail] = await mails_to(sessions, "known@example.com")
    assert mail.subject == "Reset your password"
    async with sessions() as session:
        stray = await session.scalar(select(CaughtMail).where(CaughtMail.rcpt_to.like("nobody%")))
    assert stray is None


async def test_forgot_password_shares_the_rest_routes_throttle(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    # Spent through the REST route: the page counts on the same counter.
    for _ in range(settings.password_reset_max_per_email):
        sent = await api.post("/auth/password-reset", json={"email": "a@example.com"})
        assert sent.status_code == 202

    refused = await _post(api, "/forgot-password", "/forgot-password", email="a@example.com")

    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert int(refused.headers["Retry-After"]) > 0


async def test_a_reset_through_the_pages_sets_the_password_and_ends_the_old_session(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="ada@example.com")
    await _log_in(api, "ada@example.com")
    old_session = dict(api.cookies)
    await _post(api, "/forgot-password", "/forgot-password", email="ada@example.com")
    token = link_token((await mails_to(sessions, "ada@example.com"))[0], "/reset-password")
    link = f"/reset-password?token={token}"

    weak = await _post(api, link, "/reset-password", token=token, new_password="short")
    # The schema's rule, on its field; the link is not spent by a refusal.
    assert weak.status_code == 422
    assert 'id="e-new_password"' in weak.text
    assert 'value="short"' not in weak.text
    reset = await _post(api, link, "/reset-password", token=token, new_password=NEW_PASSWORD)

    assert reset.status_code == 303
    assert reset.headers["location"] == "/shop/login?notice=password-reset"
    notice = await api.get(reset.headers["location"], headers=HTML)
    assert 'role="status"' in notice.text
    # The session from before the reset is revoked (token_version bumped).
    api.cookies.clear()
    api.cookies.update(old_session)
    stale = await api.get("/shop/profile", headers=HTML)
    assert stale.status_code == 303
    assert stale.headers["location"].startswith("/shop/login")
    login = await api.post(
        "/auth/login", json={"email": "ada@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
    # Single use: the same link again is the friendly "invalid link" state.
    again = await _post(api, link, "/reset-password", token=token, new_password="x-" + NEW_PASSWORD)
    assert again.status_code == 404
    assert token not in again.text
    assert 'name="token"' not in again.text


@pytest.mark.parametrize("token", ["unknown", "malformed"])
async def test_a_bad_reset_link_is_a_friendly_page_that_never_shows_the_token(
    api: httpx.AsyncClient, token: str
) -> None:
    # A well-formed token nobody issued, or text that is no token at all.
    value = secrets.token_urlsafe(32) if token == "unknown" else "<b>marker-1234</b>"
    csrf = _csrf((await api.get("/forgot-password", headers=HTML)).text)
    opened = await api.get("/reset-password", params={"token": value}, headers=HTML)
    posted = await api.post(
        "/reset-password",
        data={"csrf_token": csrf, "token": value, "new_password": NEW_PASSWORD},
        headers=HTML,
    )

    assert posted.status_code == 404
    assert posted.headers["content-type"].startswith("text/html")
    assert 'href="/forgot-password"' in posted.text
    assert value not in posted.text
    if token == "malformed":
        # Not even a token's shape: no form at all, and nothing of it on the page.
        assert opened.status_code == 404
        assert "marker-1234" not in opened.text
        assert "marker-1234" not in posted.text


async def test_verify_through_the_page_and_resend_from_the_profile(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="late@example.com")
    await _log_in(api, "late@example.com")
    profile = await api.get("/shop/profile", headers=HTML)
    assert 'action="/shop/profile/verification"' in profile.text

    resent = await api.post(
        "/shop/profile/verification", data={"csrf_token": _csrf(profile.text)}, headers=HTML
    )
    assert resent.status_code == 200
    token = link_token((await mails_to(sessions, "late@example.com"))[0], "/verify-email")

    opened = await api.get(f"/verify-email?token={token}", headers=HTML)
    # Opening the link (a mail scanner does) verifies nothing: the button does.
    assert opened.status_code == 200
    assert (await _user(sessions, "late@example.com")).email_verified_at is None
    verified = await api.post(
        "/verify-email", data={"csrf_token": _csrf(opened.text), "token": token}, headers=HTML
    )

    assert verified.status_code == 200
    assert (await _user(sessions, "late@example.com")).email_verified_at is not None
    profile = await api.get("/shop/profile", headers=HTML)
    assert 'action="/shop/profile/verification"' not in profile.text
    again = await api.post(
        "/verify-email", data={"csrf_token": _csrf(opened.text), "token": token}, headers=HTML
    )
    assert again.status_code == 404
    assert token not in again.text


async def test_recovery_forms_posted_without_their_csrf_token_are_refused(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions, email="ada@example.com")
    await _log_in(api, user.email)
    token = secrets.token_urlsafe(32)
    posts = {
        "/forgot-password": {"email": user.email},
        "/reset-password": {"token": token, "new_password": NEW_PASSWORD},
        "/verify-email": {"token": token},
        "/shop/profile/verification": {},
    }
    for path, data in posts.items():
        for forged in ({}, {"csrf_token": "forged"}):
            refused = await api.post(path, data={**data, **forged}, headers=HTML)
            assert refused.status_code == 403, path
            assert refused.headers["content-type"].startswith("text/html"), path
    async with sessions() as session:
        # Refused before the route ran: no reset link was even made.
        assert await session.scalar(select(AccountToken)) is None


async def test_notification_preferences_save_and_sms_needs_a_phone(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    user = await create_user(sessions, email="ada@example.com")
    await _log_in(api, user.email)

    refused = await _post(
        api, "/shop/profile", "/shop/profile", name="Ada", notify_email="on", notify_sms="on"
    )
    # PATCH /users/me's own rule across fields, on the SMS checkbox.
    assert refused.status_code == 422
    assert 'id="e-notify_sms"' in refused.text
    stored = await _user(sessions, user.email)
    assert stored.notify_sms is False

    saved = await _post(
        api, "/shop/profile", "/shop/profile", name="Ada", phone="+44 20 7946 0958", notify_sms="on"
    )

    assert saved.status_code == 200
    stored = await _user(sessions, user.email)
    assert (stored.phone, stored.notify_email, stored.notify_sms) == ("+442079460958", False, True)
    assert re.search(r'id="f-notify_sms"[^>]*checked', saved.text)
    assert not re.search(r'id="f-notify_email"[^>]*checked', saved.text)
