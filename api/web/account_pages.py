"""Account pages: register, log in, log out, and the profile.

Each calls the auth service's own code: ``create_user`` and ``_login`` as
/auth/register and /auth/login do, the logout route's revocation, the
/users/me routes for the profile, its notification channels and the password,
and /auth/verify-email/resend for a new verification link.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import profile, recovery, routes
from api.auth.accounts import EmailTaken, WeakPassword, create_user
from api.auth.schemas import LoginRequest, PasswordChange, UserCreate, UserUpdate
from api.auth.throttle import client_address
from api.deps import ResourcesDep, SessionDep
from api.errors import ProblemError
from api.tokens import Principal
from api.web.csrf import require_csrf, set_secret
from api.web.forms import field_errors, posted, problem_field_errors
from api.web.render import render
from api.web.session import PageUser, PageVisitor, clear_session, safe_next, set_session

router = APIRouter(include_in_schema=False)
forms = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])


async def _logged_in(
    request: Request, resources: ResourcesDep, user_email: str, password: str, next_path: str
) -> Response:
    """Log in exactly as POST /auth/login does, and hand the token to the browser as a cookie."""
    issuer = await routes.get_issuer(resources)
    # The same throttle as the REST login: per account and client address.
    token = await routes._login(resources, issuer, client_address(request), user_email, password)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session(response, resources.settings, token.access_token, token.expires_in)
    # A new CSRF secret with the new session: nothing from before login is valid.
    set_secret(response, resources.settings, secrets.token_urlsafe(32))
    return response


@router.get("/shop/login", response_class=HTMLResponse)
async def login_page(
    request: Request, visitor: PageVisitor, next: str = "/", notice: str | None = None
) -> Response:
    # ``notice`` picks one of the template's fixed sentences; it is never shown itself.
    return await render(
        request, "login.html", visitor, next=safe_next(next), error=None, notice=notice
    )


@forms.post("/shop/login", response_class=HTMLResponse)
async def login(request: Request, resources: ResourcesDep) -> Response:
    data = await posted(request)
    next_path = safe_next(data.get("next"))
    try:
        # The JSON login's own rules (lengths, no NUL) before anything is looked up.
        body = LoginRequest.model_validate(
            {"email": data.get("email", ""), "password": data.get("password", "")}
        )
        return await _logged_in(request, resources, body.email, body.password, next_path)
    except ValidationError:
        return await render(
            request,
            "login.html",
            None,
            status_code=422,
            next=next_path,
            error="invalid",
            notice=None,
        )
    except ProblemError as err:
        # Wrong email or password, or throttled: one message, never which.
        error = "too-many" if err.status_code == 429 else "invalid"
        return await render(
            request,
            "login.html",
            None,
            status_code=err.status_code,
            next=next_path,
            error=error,
            notice=None,
        )


@router.get("/shop/register", response_class=HTMLResponse)
async def register_page(request: Request, visitor: PageVisitor) -> Response:
    return await render(request, "register.html", visitor, errors={})


@forms.post("/shop/register", response_class=HTMLResponse)
async def register(request: Request, resources: ResourcesDep) -> Response:
    data = await posted(request)
    try:
        body = UserCreate.model_validate(
            {k: data[k] for k in ("email", "password", "name", "phone") if k in data}
        )
        await create_user(
            resources.sessions,
            email=body.email,
            password=body.password,
            name=body.name,
            phone=body.phone,
        )
    except ValidationError as err:
        return await render(
            request, "register.html", None, status_code=422, errors=field_errors(err)
        )
    except WeakPassword as err:
        return await render(
            request, "register.html", None, status_code=422, errors={"password": str(err)}
        )
    except EmailTaken:
        errors = {"email": "An account with this email exists already. Log in instead."}
        return await render(request, "register.html", None, status_code=409, errors=errors)
    return await _logged_in(request, resources, body.email, body.password, "/")


@forms.post("/shop/logout")
async def logout(request: Request, session: SessionDep, visitor: PageVisitor) -> Response:
    response = RedirectResponse("/", status_code=303)
    if visitor is not None:
        # The logout route's own revocation: this token is on the denylist now.
        await routes.logout(visitor, session)
    clear_session(response, request.app.state.resources.settings)
    return response


async def _profile(
    request: Request,
    user: Principal,
    session: AsyncSession,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    saved: str | None = None,
) -> Response:
    """The profile page as stored (after a refusal too: nothing typed is shown back)."""
    me = await profile.me(user, session)
    return await render(
        request,
        "profile.html",
        user,
        status_code=status_code,
        me=me,
        errors=errors or {},
        saved=saved,
    )


@router.get("/shop/profile", response_class=HTMLResponse)
async def profile_page(request: Request, user: PageUser, session: SessionDep) -> Response:
    return await _profile(request, user, session)


@forms.post("/shop/profile", response_class=HTMLResponse)
async def update_profile(request: Request, user: PageUser, session: SessionDep) -> Response:
    data = await posted(request)
    try:
        # A blank phone removes it; the name is required (as PATCH /users/me says).
        # The channels are checkboxes: an unticked one is not posted, so it is off.
        body = UserUpdate.model_validate(
            {
                "name": data.get("name"),
                "phone": data.get("phone"),
                "notify_email": "notify_email" in data,
                "notify_sms": "notify_sms" in data,
            }
        )
        # PATCH /users/me itself: its "SMS needs a phone" rule, in its transaction.
        await profile.update_me(body, user, session)
    except ValidationError as err:
        return await _profile(request, user, session, status_code=422, errors=field_errors(err))
    except ProblemError as err:
        errors = problem_field_errors(err)
        if not errors:
            raise
        return await _profile(request, user, session, status_code=422, errors=errors)
    return await _profile(request, user, session, saved="profile")


@forms.post("/shop/profile/verification", response_class=HTMLResponse)
async def resend_verification(
    request: Request,
    user: PageUser,
    session: SessionDep,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> Response:
    try:
        # POST /auth/verify-email/resend itself (its throttle; no mail once verified).
        await recovery.resend_verification(user, request, resources, background)
    except ProblemError as err:
        if err.status_code != 429:
            raise
        refused = await _profile(request, user, session, status_code=429, saved="too-many")
        refused.headers.update(err.headers or {})
        return refused
    return await _profile(request, user, session, saved="verification")


@forms.post("/shop/profile/password", response_class=HTMLResponse)
async def change_password(
    request: Request, user: PageUser, session: SessionDep, resources: ResourcesDep
) -> Response:
    data = await posted(request)
    errors: dict[str, str] = {}
    status = 200
    try:
        body = PasswordChange.model_validate(
            {
                "current_password": data.get("current_password", ""),
                "new_password": data.get("new_password", ""),
            }
        )
        await profile.change_password(body, user, session, resources, request)
    except ValidationError as err:
        errors, status = field_errors(err), 422
    except ProblemError as err:
        status = err.status_code
        errors = {
            403: {"current_password": "The current password is wrong."},
            429: {"current_password": "Too many attempts. Try again later."},
        }.get(err.status_code, {"new_password": "Choose another password."})
    if errors:
        return await _profile(request, user, session, status_code=status, errors=errors)
    # The change revoked every earlier token, this session's too: log in afresh.
    me = await profile.me(user, session)
    return await _logged_in(request, resources, me.email, body.new_password, "/shop/profile")
