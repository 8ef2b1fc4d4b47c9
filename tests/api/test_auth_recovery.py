"""Password reset, email verification and quiet registration, with the real dev SMTP sink.

Mail goes out from a background task through SmtpMailer to tooling/smtp_sink.py,
which stores it in caught_mail; tests read the link (and its token) from there.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from core.db import SessionFactory
from core.models import AccountToken, CaughtMail, User
from core.settings import Settings
from tests.support.caught_mail import link_token, mails_to
from tests.support.e2e import order_body
from tests.support.factories import DEFAULT_PASSWORD, auth_header, create_product, create_user

NEW_PASSWORD = "a-brand-new-secret"


@pytest.fixture
def settings(settings: Settings, sink_port: int) -> Settings:
    return settings.model_copy(update={"smtp_port": sink_port, "public_url": "https://shop.test"})


async def _login(api: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await api.post("/auth/login", json={"email": email, "password": password})


# --- password reset -----------------------------------------------------------


async def test_reset_answers_alike_for_known_and_unknown_emails(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="known@example.com")

    known = await api.post("/auth/password-reset", json={"email": "Known@Example.com"})
    unknown = await api.post("/auth/password-reset", json={"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert set(known.headers) == set(unknown.headers)
    [mail] = await mails_to(sessions, "known@example.com")
    assert mail.subject == "Reset your password"
    async with sessions() as session:
        assert (
            await session.scalar(select(CaughtMail).where(CaughtMail.rcpt_to.like("nobody%")))
            is None
        )


async def test_a_reset_link_sets_the_password_once_and_revokes_every_older_token(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="ada@example.com")
    old_token = auth_header(settings, user)
    await api.post("/auth/password-reset", json={"email": "ada@example.com"})
    await api.post("/auth/password-reset", json={"email": "ada@example.com"})
    first, second = await mails_to(sessions, "ada@example.com", 2)
    token = link_token(second, "/reset-password")

    confirmed = await api.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )

    assert confirmed.status_code == 204
    assert (await _login(api, "ada@example.com", NEW_PASSWORD)).status_code == 200
    assert (await _login(api, "ada@example.com", DEFAULT_PASSWORD)).status_code == 401
    assert (await api.get("/users/me", headers=old_token)).status_code == 401
    # Single use, and the other link mailed before dies with it.
    for spent in (token, link_token(first, "/reset-password")):
        again = await api.post(
            "/auth/password-reset/confirm",
            json={"token": spent, "new_password": "x-" + NEW_PASSWORD},
        )
        assert again.status_code == 404
        assert again.json()["type"] == "invalid-token"


async def test_only_the_tokens_hash_is_stored_and_it_expires_in_30_minutes(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="ada@example.com")
    await api.post("/auth/password-reset", json={"email": "ada@example.com"})
    token = link_token((await mails_to(sessions, "ada@example.com"))[0], "/reset-password")

    async with sessions() as session:
        [row] = list(await session.scalars(select(AccountToken)))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.token_hash != token
    assert (row.expires_at - row.created_at).total_seconds() == 30 * 60


async def test_an_expired_reset_link_is_refused(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="ada@example.com")
    await api.post("/auth/password-reset", json={"email": "ada@example.com"})
    token = link_token((await mails_to(sessions, "ada@example.com"))[0], "/reset-password")
    async with sessions() as session, session.begin():
        row = await session.get_one(AccountToken, hashlib.sha256(token.encode()).hexdigest())
        row.expires_at = row.created_at

    response = await api.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 404
    assert response.json()["type"] == "invalid-token"


async def test_reset_requests_are_throttled_per_email_and_per_address(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    allowance = settings.password_reset_max_per_email
    for _ in range(allowance):
        assert (
            await api.post("/auth/password-reset", json={"email": "a@example.com"})
        ).status_code == 202

    refused = await api.post("/auth/password-reset", json={"email": "a@example.com"})

    assert refused.status_code == 429
    assert refused.json()["type"] == "too-many-requests"
    assert int(refused.headers["Retry-After"]) > 0
    # Another email from the same address still passes until the address's cap.
    other = await api.post("/auth/password-reset", json={"email": "b@example.com"})
    assert other.status_code == 202
    for n in range(settings.password_reset_max_per_address - allowance - 1):
        await api.post("/auth/password-reset", json={"email": f"c{n}@example.com"})
    capped = await api.post("/auth/password-reset", json={"email": "fresh@example.com"})
    assert capped.status_code == 429


# --- email verification ---------------------------------------------------------


async def test_register_mails_a_link_that_verifies_the_email(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    body = {"email": "new@example.com", "password": "pass-word-long", "name": "New"}
    registered = await api.post("/auth/register", json=body)
    assert registered.status_code == 201  # dev mode: verification not required
    [mail] = await mails_to(sessions, "new@example.com")
    login = await _login(api, "new@example.com", "pass-word-long")
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await api.get("/users/me", headers=headers)).json()["email_verified"] is False

    verified = await api.post(
        "/auth/verify-email", json={"token": link_token(mail, "/verify-email")}
    )

    assert verified.status_code == 204
    assert (await api.get("/users/me", headers=headers)).json()["email_verified"] is True
    again = await api.post("/auth/verify-email", json={"token": link_token(mail, "/verify-email")})
    assert again.status_code == 404


async def test_a_signed_in_account_can_ask_for_a_new_link(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="late@example.com")

    response = await api.post("/auth/verify-email/resend", headers=auth_header(settings, user))

    assert response.status_code == 202
    [mail] = await mails_to(sessions, "late@example.com")
    assert mail.subject == "Confirm your email address"


# --- verification required --------------------------------------------------------


@pytest.fixture
def strict(settings: Settings) -> Settings:
    return settings.model_copy(update={"require_verified_email": True})


@pytest.fixture
async def strict_api(strict: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from asgi_lifespan import LifespanManager

    from api.main import create_app

    app = create_app(strict)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_with_verification_register_answers_alike_for_new_and_taken_emails(
    strict_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="taken@example.com", name="Owner")
    body = {"password": "pass-word-long", "name": "Someone"}

    new = await strict_api.post("/auth/register", json={"email": "new@example.com", **body})
    taken = await strict_api.post("/auth/register", json={"email": "taken@example.com", **body})

    assert new.status_code == taken.status_code == 202
    assert new.json() == taken.json()
    [verify] = await mails_to(sessions, "new@example.com")
    [exists] = await mails_to(sessions, "taken@example.com")
    assert verify.subject == "Confirm your email address"
    assert exists.subject == "You already have an account"
    async with sessions() as session:
        owner = await session.scalar(select(User).where(User.email == "taken@example.com"))
    assert owner is not None and owner.name == "Owner"  # untouched


async def test_registration_is_throttled_per_address(
    strict_api: httpx.AsyncClient, strict: Settings
) -> None:
    for _ in range(strict.register_max_per_address):
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": "pass-word-long", "name": "N"}
        assert (await strict_api.post("/auth/register", json=body)).status_code == 202

    body = {"email": "one-more@example.com", "password": "pass-word-long", "name": "N"}
    refused = await strict_api.post("/auth/register", json=body)

    assert refused.status_code == 429
    assert refused.json()["type"] == "too-many-requests"


async def test_checkout_refuses_an_unverified_account_when_required(
    strict_api: httpx.AsyncClient, sessions: SessionFactory, strict: Settings
) -> None:
    user = await create_user(sessions)
    product = await create_product(sessions)

    async def place() -> httpx.Response:
        headers = {**auth_header(strict, user), "Idempotency-Key": str(uuid.uuid4())}
        return await strict_api.post("/orders", json=order_body((product, 1)), headers=headers)

    refused = await place()
    async with sessions() as session, session.begin():
        (await session.get_one(User, user.id)).email_verified_at = func.now()
    allowed = await place()

    assert refused.status_code == 403
    assert refused.json()["type"] == "email-not-verified"
    assert allowed.status_code != 403  # on to checkout (no Temporal here: 503)
