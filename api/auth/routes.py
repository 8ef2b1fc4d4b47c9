"""Register, log in (form and JSON), log out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from api.app import Resources
from api.auth.account_mail import account_exists_mail, send_account_mail
from api.auth.account_throttle import Limit, count_request
from api.auth.accounts import EmailTaken, check_password, create_user, normalize_email
from api.auth.passwords import MAX_LENGTH
from api.auth.recovery import Accepted, new_token, queue_verification
from api.auth.schemas import LoginRequest, TokenResponse, UserCreate, UserPublic
from api.auth.throttle import Policy, client_address
from api.deps import CurrentUser, ResourcesDep, SessionDep
from api.errors import ProblemError, problem_responses
from api.schemas.text import NO_NUL
from api.tokens import TokenIssuer
from core.models import RevokedToken, User
from core.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])


class PasswordForm(OAuth2PasswordRequestForm):
    """OAuth2's password form, documented as a form can really carry it.

    An empty field counts as missing (422), so the document says so, and the
    lengths match LoginRequest's. A form cannot send null, only leave a
    field out, so no field is documented as nullable.
    """

    def __init__(
        self,
        *,
        grant_type: Annotated[str, Form(pattern="^password$")] = "password",
        username: Annotated[str, Form(min_length=1, max_length=320, pattern=NO_NUL)],
        password: Annotated[str, Form(min_length=1, max_length=MAX_LENGTH)],
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str, Form()] = "",
        client_secret: Annotated[str, Form()] = "",
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id or None,
            client_secret=client_secret or None,
        )


_LOGIN_ERRORS = problem_responses(401, 413, 422, 429, 503)


async def get_issuer(resources: ResourcesDep) -> TokenIssuer:
    if resources.issuer is None:
        raise ProblemError(
            503,
            "this service verifies tokens but holds no signing key to issue them",
            code="issuer-unavailable",
        )
    return resources.issuer


Issuer = Annotated[TokenIssuer, Depends(get_issuer)]


def _bad_credentials() -> ProblemError:
    # The same answer whether the email has no account or the password is
    # wrong, so the login form cannot be used to discover accounts.
    return ProblemError(
        401,
        "email or password is wrong",
        code="invalid-credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _login(
    resources: Resources, issuer: TokenIssuer, client: str, email: str, password: str
) -> TokenResponse:
    email = normalize_email(email)
    policy = Policy.from_settings(resources.settings)
    async with resources.sessions() as session:
        async with session.begin():
            user = await session.scalar(select(User).where(User.email == email).with_for_update())
            ok = await check_password(session, email, user, password, policy, client)
        # Committed: the failure is counted even though we answer 401.
    if not ok or user is None:
        raise _bad_credentials()
    token = issuer.issue(user)
    return TokenResponse(access_token=token.access_token, expires_in=token.expires_in)


@router.post(
    "/register",
    status_code=201,
    response_model=UserPublic,
    responses={
        202: {
            "model": Accepted,
            "description": "with email verification on: the same answer for new and taken "
            "emails; the mailbox's owner is told which by mail",
        },
        **problem_responses(409, 413, 422, 429),
    },
)
async def register(
    body: UserCreate, request: Request, resources: ResourcesDep, background: BackgroundTasks
) -> Any:
    """Create a customer account and mail a link to verify its email."""
    settings = resources.settings
    async with resources.sessions() as session, session.begin():
        # Each try costs a password hash (and a mail): capped per address.
        await count_request(session, _register_limit(settings), client_address(request))
    token, token_hash = new_token()
    try:
        user = await create_user(
            resources.sessions,
            email=body.email,
            password=body.password,
            name=body.name,
            phone=body.phone,
        )
    except EmailTaken as err:
        if not settings.verified_email_required:
            raise ProblemError(
                409, "an account with this email exists already", code="email-taken"
            ) from err
        # The same answer as for a new account (after the same password
        # hash, in create_user); the owner learns of the attempt by mail.
        async with resources.sessions() as session:
            owner = await session.scalar(
                select(User).where(User.email == normalize_email(body.email))
            )
        if owner is not None:
            mail = account_exists_mail(
                settings, owner.email, owner.name, f"account-exists-{token_hash[:32]}"
            )
            background.add_task(send_account_mail, settings, mail)
        return JSONResponse(_REGISTERED.model_dump(), status_code=202)
    async with resources.sessions() as session, session.begin():
        await queue_verification(session, background, settings, user, token, token_hash)
    if settings.verified_email_required:
        return JSONResponse(_REGISTERED.model_dump(), status_code=202)
    return user


_REGISTERED = Accepted(detail="check your mailbox: a link to confirm your email is on its way")


def _register_limit(settings: Settings) -> Limit:
    return Limit(
        "register",
        None,
        settings.register_max_per_address,
        timedelta(seconds=settings.account_request_window_seconds),
    )


@router.post("/token", response_model=TokenResponse, responses=_LOGIN_ERRORS)
async def token(
    form: Annotated[PasswordForm, Depends()],
    request: Request,
    resources: ResourcesDep,
    issuer: Issuer,
) -> TokenResponse:
    """OAuth2 password flow: ``username`` is the email."""
    return await _login(resources, issuer, client_address(request), form.username, form.password)


@router.post("/login", response_model=TokenResponse, responses=_LOGIN_ERRORS)
async def login(
    body: LoginRequest, request: Request, resources: ResourcesDep, issuer: Issuer
) -> TokenResponse:
    """Log in with a JSON body."""
    return await _login(resources, issuer, client_address(request), body.email, body.password)


@router.post("/logout", status_code=204, responses=problem_responses(401))
async def logout(principal: CurrentUser, session: SessionDep) -> Response:
    """Revoke the token this request carries."""
    async with session.begin():
        await session.execute(
            insert(RevokedToken)
            .values(jti=principal.jti, expires_at=principal.expires_at)
            .on_conflict_do_nothing(index_elements=[RevokedToken.jti])
        )
        # An expired token fails verification on its own; its denylist row
        # is dead weight, so every logout sweeps those away.
        await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < func.now()))
    return Response(status_code=204)
