"""Per-account login throttling: 5 failures in 15 minutes lock the account."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from api.auth.throttle import Policy, UnknownEmailThrottle, retry_after
from core.db import SessionFactory
from core.models import LoginFailure
from core.settings import Settings
from tests.factories import DEFAULT_PASSWORD, create_user

WRONG = "definitely-wrong"


async def _login(api: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await api.post("/auth/login", json={"email": email, "password": password})


async def _fail(api: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        assert (await _login(api, email, WRONG)).status_code == 401


async def _failures(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(LoginFailure)) or 0


async def _age_failures(sessions: SessionFactory, by: timedelta) -> None:
    # Moving the failures into the past stands in for waiting.
    async with sessions() as session, session.begin():
        await session.execute(update(LoginFailure).values(at=LoginFailure.at - by))


async def test_five_failures_lock_the_account_even_for_the_right_password(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    await create_user(sessions, email="locked@example.com")
    await _fail(api, "locked@example.com", settings.login_max_failures)
    assert await _failures(sessions) == 5

    for answer in (
        await _login(api, "locked@example.com", DEFAULT_PASSWORD),
        await api.post(
            "/auth/token", data={"username": "locked@example.com", "password": DEFAULT_PASSWORD}
        ),
        await _login(api, "locked@example.com", WRONG),
    ):
        assert answer.status_code == 429
        assert answer.json()["type"] == "login-throttled"
        assert 0 < int(answer.headers["retry-after"]) <= settings.login_lockout_seconds
    # Attempts while locked are not counted, so the lockout has a fixed end.
    assert await _failures(sessions) == 5


async def test_concurrent_guesses_are_counted_one_by_one(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    # Ten guesses at once must not all be checked before the first failure is
    # recorded: the account row is locked, so exactly five get a verdict.
    await create_user(sessions, email="burst@example.com")
    answers = await asyncio.gather(*(_login(api, "burst@example.com", WRONG) for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [401] * 5 + [429] * 5
    assert await _failures(sessions) == 5


async def test_four_failures_do_not_lock(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    await create_user(sessions, email="four@example.com")
    await _fail(api, "four@example.com", 4)
    assert (await _login(api, "four@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_success_clears_the_count(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    await create_user(sessions, email="reset@example.com")
    await _fail(api, "reset@example.com", 4)
    assert (await _login(api, "reset@example.com", DEFAULT_PASSWORD)).status_code == 200
    assert await _failures(sessions) == 0
    await _fail(api, "reset@example.com", 4)
    assert (await _login(api, "reset@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_the_lock_is_per_account(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    await create_user(sessions, email="victim@example.com")
    await create_user(sessions, email="bystander@example.com")
    await _fail(api, "victim@example.com", 5)
    assert (await _login(api, "victim@example.com", DEFAULT_PASSWORD)).status_code == 429
    assert (await _login(api, "bystander@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_the_lock_ends_after_the_lockout(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    await create_user(sessions, email="later@example.com")
    await _fail(api, "later@example.com", 5)
    assert (await _login(api, "later@example.com", DEFAULT_PASSWORD)).status_code == 429
    await _age_failures(sessions, timedelta(seconds=settings.login_lockout_seconds + 1))
    assert (await _login(api, "later@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_failures_spread_beyond_the_window_do_not_lock(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    await create_user(sessions, email="slow@example.com")
    await _fail(api, "slow@example.com", 2)
    await _age_failures(sessions, timedelta(seconds=settings.login_failure_window_seconds + 1))
    await _fail(api, "slow@example.com", 3)
    # five failures, but never five within one window
    assert (await _login(api, "slow@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_wrong_current_password_counts_towards_the_lock(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="changer@example.com")
    token = (await _login(api, "changer@example.com", DEFAULT_PASSWORD)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(5):
        response = await api.post(
            "/users/me/password",
            json={"current_password": WRONG, "new_password": "a-brand-new-one"},
            headers=headers,
        )
        assert response.status_code == 403
    response = await api.post(
        "/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a-brand-new-one"},
        headers=headers,
    )
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_unknown_emails_lock_alike_and_store_nothing(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    # Known and unknown emails must behave the same, or the lock would reveal
    # which addresses have accounts.
    await create_user(sessions, email="real@example.com")
    known, unknown = [], []
    for _ in range(6):
        known.append(await _login(api, "real@example.com", WRONG))
        unknown.append(await _login(api, "ghost@example.com", WRONG))
    assert [r.status_code for r in known] == [401] * 5 + [429]
    assert [r.status_code for r in unknown] == [401] * 5 + [429]
    for mine, theirs in zip(known, unknown, strict=True):
        assert mine.json() == theirs.json()
    assert unknown[-1].headers["retry-after"].isdigit()
    async with sessions() as session:
        owners = set(await session.scalars(select(LoginFailure.user_id)))
    assert len(owners) == 1  # only the real account's failures are stored


# --- the rule itself ------------------------------------------------------

POLICY = Policy(max_failures=5, window=timedelta(minutes=15), lockout=timedelta(minutes=15))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _times(*minutes: float) -> list[datetime]:
    return sorted((T0 + timedelta(minutes=m) for m in minutes), reverse=True)


def test_rule_locks_from_the_last_failure() -> None:
    recent = _times(0, 1, 2, 3, 4)
    assert retry_after(recent, T0 + timedelta(minutes=4), POLICY) == 15 * 60
    assert retry_after(recent, T0 + timedelta(minutes=18, seconds=59.5), POLICY) == 1
    assert retry_after(recent, T0 + timedelta(minutes=19), POLICY) is None


def test_rule_needs_all_failures_within_the_window() -> None:
    assert retry_after(_times(0, 1, 2, 3), T0 + timedelta(minutes=4), POLICY) is None
    assert retry_after(_times(0, 1, 2, 3, 15), T0 + timedelta(minutes=15), POLICY) is not None
    assert retry_after(_times(0, 1, 2, 3, 15.1), T0 + timedelta(minutes=16), POLICY) is None


def test_unknown_email_memory_is_bounded() -> None:
    throttle = UnknownEmailThrottle(POLICY, max_entries=3)
    for n in range(10):
        throttle.record_failure(f"{n}@example.com", T0)
    assert len(throttle._failures) == 3
    for _ in range(10):
        throttle.record_failure("x@example.com", T0)
    assert len(throttle._failures["x@example.com"]) == POLICY.max_failures
    assert throttle.retry_after("x@example.com", T0) == 15 * 60
