"""Password reset and email verification by single-use tokens sent by mail.

- ``POST /auth/password-reset`` answers 202 with one body whether the email
  has an account or not, after the same work (a token made and hashed, the
  request counted); the mail goes out after the response (account_mail.py).
- ``POST /auth/password-reset/confirm`` sets the password, bumps the
  account's token_version (every token issued before stops working) and
  spends every reset link of the account, not only this one.
- ``POST /auth/verify-email`` marks the email verified; ``/resend`` mails a
  new link to a signed-in account.

Tokens are 256 random bits, stored only as SHA-256, valid once and for
``password_reset_ttl_seconds`` (30 min) or ``email_verification_ttl_seconds``.
An unknown, used or expired token gets the same 404, so none can be told apart.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from pydantic import BaseModel, StringConstraints, field_validator
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.account_mail import reset_mail, send_account_mail, verify_mail
from api.auth.account_throttle import Limit, count_request
from api.auth.accounts import normalize_email
from api.auth.passwords import hash_password, weakness
from api.auth.profile import invalid_field
from api.auth.schemas import LoginEmail, NewPassword, _Write
from api.auth.throttle import client_address
from api.deps import CurrentUser, ResourcesDep
from api.errors import ProblemError, problem_responses
from core.models import AccountToken, TokenPurpose, User
from core.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])

# secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet.
Token = Annotated[
    str, StringConstraints(min_length=20, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
]


class PasswordResetRequest(_Write):
    email: LoginEmail


class PasswordResetConfirm(_Write):
    token: Token
    new_password: NewPassword

    @field_validator("new_password")
    @classmethod
    def _strong(cls, password: str) -> str:
        # "Not the email" needs the account, and is checked by the route.
        problem = weakness(password, None)
        if problem:
            raise ValueError(problem)
        return password


class EmailToken(_Write):
    token: Token


class Accepted(BaseModel):
    detail: str


RESET_ACCEPTED = Accepted(
    detail="if an account has this email, a link to reset its password is on its way"
)
VERIFY_ACCEPTED = Accepted(detail="a link to confirm the email address is on its way")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A token to mail, and the hash to keep."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def mail_key(purpose: TokenPurpose, token_hash: str) -> str:
    # From the hash, never the token: the key ends up in a header and logs.
    return f"account-{purpose.value}-{token_hash[:32]}"


async def store_token(
    session: AsyncSession, user: User, purpose: TokenPurpose, token_hash: str, ttl_seconds: int
) -> None:
    await session.execute(
        insert(AccountToken).values(
            token_hash=token_hash,
            user_id=user.id,
            purpose=purpose,
            expires_at=func.now() + timedelta(seconds=ttl_seconds),
        )
    )


async def redeem(session: AsyncSession, token: str, purpose: TokenPurpose) -> AccountToken:
    """Spend a valid token (locked until the transaction ends); 404 for any other."""
    row = await session.scalar(
        select(AccountToken)
        .where(
            AccountToken.token_hash == hash_token(token),
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > func.now(),
        )
        .with_for_update()
    )
    if row is None:
        # 404: no such (usable) link. One answer for unknown, used and expired.
        raise ProblemError(404, "this link is invalid, used or expired", code="invalid-token")
    row.used_at = await session.scalar(select(func.now()))
    return row


def reset_limit(settings: Settings) -> Limit:
    return Limit(
        "reset",
        settings.password_reset_max_per_email,
        settings.password_reset_max_per_address,
        timedelta(seconds=settings.account_request_window_seconds),
    )


@router.post(
    "/password-reset",
    status_code=202,
    response_model=Accepted,
    responses=problem_responses(413, 422, 429),
)
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> Accepted:
    """Mail a reset link if the email has an account; the answer is the same either way."""
    settings = resources.settings
    email = normalize_email(body.email)
    # Made for every request, so an unknown email costs what a known one does.
    token, token_hash = new_token()
    async with resources.sessions() as session, session.begin():
        await count_request(session, reset_limit(settings), client_address(request), email)
        user = await session.scalar(select(User).where(User.email == email))
        if user is not None:
            await store_token(
                session,
                user,
                TokenPurpose.PASSWORD_RESET,
                token_hash,
                settings.password_reset_ttl_seconds,
            )
    if user is not None:
        key = mail_key(TokenPurpose.PASSWORD_RESET, token_hash)
        background.add_task(
            send_account_mail, settings, reset_mail(settings, user.email, user.name, token, key)
        )
    return RESET_ACCEPTED


@router.post("/password-reset/confirm", status_code=204, responses=problem_responses(404, 413, 422))
async def confirm_password_reset(body: PasswordResetConfirm, resources: ResourcesDep) -> Response:
    """Set a new password with a mailed token; every older token and link stops working."""
    async with resources.sessions() as session, session.begin():
        spent = await redeem(session, body.token, TokenPurpose.PASSWORD_RESET)
        user = await session.get_one(User, spent.user_id, with_for_update=True)
        problem = weakness(body.new_password, user.email)
        if problem:  # raised inside the transaction: the token is not spent
            raise invalid_field("new_password", "weak_password", problem)
        user.password_hash = await hash_password(body.new_password)
        user.token_version += 1
        await session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user.id,
                AccountToken.purpose == TokenPurpose.PASSWORD_RESET,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=func.now())
        )
    return Response(status_code=204)


@router.post("/verify-email", status_code=204, responses=problem_responses(404, 413, 422))
async def verify_email(body: EmailToken, resources: ResourcesDep) -> Response:
    """Confirm the account's email with the token mailed to it."""
    async with resources.sessions() as session, session.begin():
        spent = await redeem(session, body.token, TokenPurpose.VERIFY_EMAIL)
        await session.execute(
            update(User)
            .where(User.id == spent.user_id, User.email_verified_at.is_(None))
            .values(email_verified_at=func.now())
        )
    return Response(status_code=204)


@router.post(
    "/verify-email/resend",
    status_code=202,
    response_model=Accepted,
    responses=problem_responses(401, 429),
)
async def resend_verification(
    principal: CurrentUser,
    request: Request,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> Accepted:
    """Mail a new verification link to the signed-in account (if not verified yet)."""
    settings = resources.settings
    token, token_hash = new_token()
    async with resources.sessions() as session, session.begin():
        user = await session.get(User, principal.user_id)
        if user is None:
            raise ProblemError(
                401, "the account of this token no longer exists", code="unauthorized"
            )
        limit = Limit(
            "verify",
            settings.password_reset_max_per_email,
            settings.password_reset_max_per_address,
            timedelta(seconds=settings.account_request_window_seconds),
        )
        await count_request(session, limit, client_address(request), user.email)
        if not user.email_verified:
            await queue_verification(session, background, settings, user, token, token_hash)
    return VERIFY_ACCEPTED


async def queue_verification(
    session: AsyncSession,
    background: BackgroundTasks,
    settings: Settings,
    user: User,
    token: str,
    token_hash: str,
) -> None:
    """Store a verification token for ``user`` and mail it after the response."""
    await store_token(
        session,
        user,
        TokenPurpose.VERIFY_EMAIL,
        token_hash,
        settings.email_verification_ttl_seconds,
    )
    key = mail_key(TokenPurpose.VERIFY_EMAIL, token_hash)
    background.add_task(
        send_account_mail, settings, verify_mail(settings, user.email, user.name, token, key)
    )


async def require_verified_email(principal: CurrentUser, resources: ResourcesDep) -> None:
    """Checkout's gate when ORDERSAGA_REQUIRE_VERIFIED_EMAIL is on: 403 until verified."""
    if not resources.settings.verified_email_required:
        return
    async with resources.sessions() as session:
        verified_at = await session.scalar(
            select(User.email_verified_at).where(User.id == principal.user_id)
        )
    if verified_at is None:
        raise ProblemError(
            403,
            "confirm your email address before checking out",
            code="email-not-verified",
        )


VerifiedEmail = Annotated[None, Depends(require_verified_email)]
