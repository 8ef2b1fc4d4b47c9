"""Login throttling per (account, client address), with a ceiling per account and per address.

Clients are told apart by the address the server sees (``request.client``):
each test client below is one address, all on one app and one database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update
from starlette.requests import Request

from api.auth.throttle import Policy, Tally, client_address, retry_after
from api.main import create_app
from core.db import SessionFactory
from core.models import LoginFailure
from core.settings import Settings
from tests.support.factories import DEFAULT_PASSWORD, create_user

WRONG = "definitely-wrong"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"

At = Callable[[str], httpx.AsyncClient]


@asynccontextmanager
async def addresses(settings: Settings, **overrides: Any) -> AsyncIterator[At]:
    """``at(address)``: a client of one app, seen by it as coming from ``address``."""
    app = create_app(settings.model_copy(update=overrides))
    clients: dict[str, httpx.AsyncClient] = {}
    async with LifespanManager(app) as manager:

        def at(address: str) -> httpx.AsyncClient:
            if address not in clients:
                transport = httpx.ASGITransport(app=manager.app, client=(address, 40000))
                clients[address] = httpx.AsyncClient(transport=transport, base_url="http://t")
            return clients[address]

        try:
            yield at
        finally:
            for client in clients.values():
                await client.aclose()


@pytest.fixture
async def at(settings: Settings, sessions: SessionFactory) -> AsyncIterator[At]:
    async with addresses(settings) as at:
        yield at


async def _login(api: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await api.post("/auth/login", json={"email": email, "password": password})


async def _fail(api: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        assert (await _login(api, email, WRONG)).status_code == 401


def _assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["type"] == "login-throttled"
    return int(response.headers["retry-after"])


async def _failures(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(LoginFailure)) or 0


async def _age_failures(sessions: SessionFactory, by: timedelta) -> None:
    # Moving the failures into the past stands in for waiting.
    async with sessions() as session, session.begin():
        await session.execute(update(LoginFailure).values(at=LoginFailure.at - by))


# --- the owner is not locked out by someone else's guesses ------------------------


async def test_a_backed_off_attacker_does_not_lock_the_owner_out(
    at: At, sessions: SessionFactory, settings: Settings
) -> None:
    await create_user(sessions, email="victim@example.com")
    await _fail(at(ATTACKER), "victim@example.com", settings.login_max_failures)

    # The attacker's address waits, even with the right password...
    for answer in (
        await _login(at(ATTACKER), "victim@example.com", DEFAULT_PASSWORD),
        await at(ATTACKER).post(
            "/auth/token", data={"username": "victim@example.com", "password": DEFAULT_PASSWORD}
        ),
    ):
        wait = _assert_throttled(answer)
        assert 0 < wait <= settings.login_backoff_base_seconds
    # ...and the owner, from their own address, is not affected.
    assert (await _login(at(OWNER), "victim@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_the_attackers_back_off_doubles_up_to_the_lockout(
    at: At, sessions: SessionFactory, settings: Settings
) -> None:
    await create_user(sessions, email="target@example.com")
    await _fail(at(ATTACKER), "target@example.com", settings.login_max_failures)

    waits = []
    for _ in range(7):
        waits.append(_assert_throttled(await _login(at(ATTACKER), "target@example.com", WRONG)))
        # Attempts while waiting are not counted: the back-off has a fixed end.
        await _age_failures(sessions, timedelta(seconds=waits[-1] + 1))
        await _fail(at(ATTACKER), "target@example.com", 1)

    assert all(later > earlier for earlier, later in zip(waits[:5], waits[1:6], strict=True))
    assert waits[0] <= settings.login_backoff_base_seconds
    assert waits[-1] <= settings.login_lockout_seconds
    assert waits[-1] > waits[0] * 16  # it really grew, and kept growing to the cap
    assert (await _login(at(OWNER), "target@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_the_back_off_ends(at: At, sessions: SessionFactory, settings: Settings) -> None:
    await create_user(sessions, email="later@example.com")
    await _fail(at(ATTACKER), "later@example.com", settings.login_max_failures)
    _assert_throttled(await _login(at(ATTACKER), "later@example.com", DEFAULT_PASSWORD))
    await _age_failures(sessions, timedelta(seconds=settings.login_backoff_base_seconds + 1))
    assert (await _login(at(ATTACKER), "later@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_a_success_clears_only_its_own_addresses_failures(
    at: At, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="mixed@example.com")
    await _fail(at(ATTACKER), "mixed@example.com", 4)
    await _fail(at(OWNER), "mixed@example.com", 4)
    assert (await _login(at(OWNER), "mixed@example.com", DEFAULT_PASSWORD)).status_code == 200
    assert await _failures(sessions) == 4  # the attacker's stay
    await _fail(at(ATTACKER), "mixed@example.com", 1)
    _assert_throttled(await _login(at(ATTACKER), "mixed@example.com", WRONG))


# --- distributed guessing and credential stuffing are still stopped ---------------


async def test_the_account_ceiling_stops_a_distributed_attack(
    settings: Settings, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="popular@example.com")
    async with addresses(settings, login_account_max_failures=12) as at:
        # Each address gets its own allowance: the second one is not refused
        # because of the first (one lock per account would refuse it here).
        await _fail(at("192.0.2.1"), "popular@example.com", 5)
        await _fail(at("192.0.2.2"), "popular@example.com", 5)
        await _fail(at("192.0.2.3"), "popular@example.com", 2)

        # Twelve failures: the account waits for every address, fresh ones too.
        for address in ("192.0.2.4", OWNER):
            _assert_throttled(await _login(at(address), "popular@example.com", DEFAULT_PASSWORD))
    assert await _failures(sessions) == 12


async def test_stuffing_across_accounts_from_one_address_is_throttled(
    settings: Settings, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="someone@example.com")
    async with addresses(settings, login_address_max_failures=6) as at:
        for n in range(6):
            await _fail(at(ATTACKER), f"leaked-{n}@example.com", 1)

        # One failure per account, but six from one address: it waits on
        # every account, whatever it sends; other addresses do not.
        _assert_throttled(await _login(at(ATTACKER), "someone@example.com", DEFAULT_PASSWORD))
        assert (await _login(at(OWNER), "someone@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_concurrent_guesses_are_counted_one_by_one(at: At, sessions: SessionFactory) -> None:
    # Ten guesses at once must not all be checked before the first failure is
    # recorded: attempts on one account are serialized, so exactly five get a verdict.
    await create_user(sessions, email="burst@example.com")
    answers = await asyncio.gather(
        *(_login(at(ATTACKER), "burst@example.com", WRONG) for _ in range(10))
    )
    assert sorted(a.status_code for a in answers) == [401] * 5 + [429] * 5
    assert await _failures(sessions) == 5


async def test_wrong_current_password_counts_towards_the_back_off(
    at: At, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="changer@example.com")
    login = await _login(at(OWNER), "changer@example.com", DEFAULT_PASSWORD)
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    async def change(current: str) -> httpx.Response:
        return await at(OWNER).post(
            "/users/me/password",
            json={"current_password": current, "new_password": "a-brand-new-one"},
            headers=headers,
        )

    for _ in range(5):
        assert (await change(WRONG)).status_code == 403
    _assert_throttled(await change(DEFAULT_PASSWORD))


async def test_unknown_emails_back_off_alike_and_are_not_stored_as_text(
    at: At, sessions: SessionFactory
) -> None:
    # Known and unknown emails must behave the same, or the throttle would
    # reveal which addresses have accounts.
    await create_user(sessions, email="real@example.com")
    known: list[httpx.Response] = []
    unknown: list[httpx.Response] = []
    for _ in range(6):
        known.append(await _login(at(ATTACKER), "real@example.com", WRONG))
        unknown.append(await _login(at(ATTACKER), "ghost@example.com", WRONG))
    assert [r.status_code for r in known] == [401] * 5 + [429]
    assert [r.status_code for r in unknown] == [401] * 5 + [429]
    for mine, theirs in zip(known, unknown, strict=True):
        assert mine.json() == theirs.json()
    async with sessions() as session:
        accounts = set(await session.scalars(select(LoginFailure.account)))
    assert len(accounts) == 2
    assert all(len(a) == 64 and "@" not in a for a in accounts)


# --- the rule itself ------------------------------------------------------------

POLICY = Policy(
    pair_allowance=5,
    pair_window=timedelta(days=1),
    backoff_base=timedelta(seconds=30),
    backoff_max=timedelta(minutes=15),
    account_allowance=50,
    address_allowance=20,
    ceiling_window=timedelta(hours=1),
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_back_off_doubles_from_the_allowance_up_to_the_cap() -> None:
    waits = [POLICY.backoff(n, 5) for n in range(4, 12)]
    assert waits[0] is None
    assert [w.total_seconds() for w in waits[1:] if w is not None] == [
        30,
        60,
        120,
        240,
        480,
        900,
        900,
    ]
    assert POLICY.backoff(10**6, 5) == POLICY.backoff_max  # no overflow


def test_the_longest_wait_of_all_scopes_wins() -> None:
    pair = Tally(failures=6, latest=T0, allowance=5)  # 60 s
    account = Tally(failures=52, latest=T0 - timedelta(seconds=10), allowance=50)  # 120 s
    address = Tally(failures=3, latest=T0, allowance=20)  # within its allowance
    assert retry_after([pair, account, address], T0, POLICY) == 110
    assert retry_after([pair, address], T0 + timedelta(seconds=59.5), POLICY) == 1
    assert retry_after([pair, address], T0 + timedelta(seconds=60), POLICY) is None
    assert retry_after([address], T0, POLICY) is None


def _request_from(host: str) -> Request:
    return Request({"type": "http", "client": (host, 1234), "headers": []})


def test_clients_are_told_apart_by_address_and_ipv6_by_its_64() -> None:
    assert client_address(_request_from("203.0.113.9")) == "203.0.113.9"
    assert client_address(_request_from("2001:db8:1:2::1")) == client_address(
        _request_from("2001:db8:1:2:ffff::9")
    )
    assert client_address(_request_from("2001:db8:1:2::1")) != client_address(
        _request_from("2001:db8:1:3::1")
    )
    assert client_address(_request_from("::ffff:203.0.113.9")) == "203.0.113.9"
