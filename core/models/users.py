"""Accounts, revoked tokens and failed logins (the auth service's tables)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Enum, Index, String, false, func, true
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, Timestamps, new_id


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Stored lower-cased by the service, so the unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200))
    # E.164 (+ and up to 15 digits), checked by the API.
    phone: Mapped[str | None] = mapped_column(String(40))
    # Which channels the customer wants order messages on; read by the
    # notification activity at each send, so a change applies to the next one.
    notify_email: Mapped[bool] = mapped_column(default=True, server_default=true())
    notify_sms: Mapped[bool] = mapped_column(default=False, server_default=false())
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", values_callable=lambda e: [m.value for m in e]),
        default=Role.CUSTOMER,
    )
    # Carried in every token as "ver"; a password change bumps it, which
    # revokes every token issued before.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the owner proved the mailbox is theirs (POST /auth/verify-email).
    email_verified_at: Mapped[datetime | None]

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class RevokedToken(Base):
    """Denylist of logged-out tokens, kept until the token would expire anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginFailure(Base):
    """A failed login: which account was tried, from where (api/auth/throttle.py)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_account_at", "account", "at"),
        Index("ix_login_failures_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # SHA-256 of the normalized email tried, for emails with and without an
    # account alike (so the throttle cannot tell them apart), and so no
    # address without an account is stored as text.
    account: Mapped[str] = mapped_column(String(64))
    # The client's address; an IPv6 one by its /64, which one host holds whole.
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
