"""The dev stack's first start: the demo catalog and an admin whose password is shown once."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from core.db import SessionFactory
from core.models import User
from core.settings import Settings
from tooling.processes import ProcessError


async def seed_first_start(settings: Settings, sessions: SessionFactory) -> None:
    """On a fresh database: the demo catalog and the admin, whose password is shown once."""
    email = settings.admin_email.strip().lower()
    async with sessions() as session:
        seeded = await session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )
    if seeded:
        return  # the admin exists, so its password was printed before: never again
    from api.auth.accounts import WeakPassword, create_or_promote_admin
    from tooling.seed import seed_catalog

    created = await seed_catalog(sessions)
    configured = settings.admin_password
    password = configured.get_secret_value() if configured else secrets.token_urlsafe(12)
    try:
        await create_or_promote_admin(sessions, email, password)
    except WeakPassword as err:
        raise ProcessError(f"ORDERSAGA_ADMIN_PASSWORD is refused: {err}", exit_code=2) from None
    print(f"ordersaga: seeded the demo catalog ({created} products)")
    if configured:
        print(f"ordersaga: admin account {email} (password from ORDERSAGA_ADMIN_PASSWORD)")
    else:
        print(
            "\n  Admin account (shown only this once; keep it):\n"
            f"    email     {email}\n"
            f"    password  {password}\n",
            flush=True,
        )
