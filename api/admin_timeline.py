"""Timeline lines for what an admin did to an order: ``admin.<action>``, naming the admin.

Written by the API, not the saga: the workflow's own lines do not say who
asked (a cancel carries the requester's id into the failure reason; ship and
deliver carry nobody), and changing workflow code for it would need a
version patch and new replay histories. The line holds the admin's id and
email, never a token.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from activities.timeline import add_event
from api.tokens import Principal
from core.db import SessionFactory
from core.models import User


async def record_admin_action(
    sessions: SessionFactory, order_id: uuid.UUID, admin: Principal, action: str, what: str = ""
) -> None:
    """Add an ``admin.<action>`` line to the order's timeline."""
    async with sessions() as session, session.begin():
        email = await session.scalar(select(User.email).where(User.id == admin.user_id))
        who = f"by admin {admin.user_id}" + (f" ({email})" if email else "")
        detail = f"{what} {who}" if what else who
        await add_event(session, order_id, f"admin.{action}", detail)
