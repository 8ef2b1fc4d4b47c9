"""Single-use account tokens (password reset, email verification) and requests for them.

A token is mailed to the customer and kept here only as its SHA-256: a copy of
this table cannot reset anyone's password.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class TokenPurpose(enum.StrEnum):
    PASSWORD_RESET = "password_reset"
    VERIFY_EMAIL = "verify_email"


class AccountToken(Base):
    __tablename__ = "account_tokens"
    __table_args__ = (Index("ix_account_tokens_user_purpose", "user_id", "purpose"),)

    # SHA-256 (hex) of the token the mail carried.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(TokenPurpose, name="token_purpose", values_callable=lambda e: [m.value for m in e])
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AccountRequest(Base):
    """One request that mails a token or makes an account, for their throttle.

    ``account`` is a SHA-256 of the normalized email, written for emails with
    and without an account alike, so the throttle reveals nothing.
    """

    __tablename__ = "account_requests"
    __table_args__ = (
        Index("ix_account_requests_action_account_at", "action", "account", "at"),
        Index("ix_account_requests_action_client_at", "action", "client", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # "reset", "register", "verify"
    account: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
