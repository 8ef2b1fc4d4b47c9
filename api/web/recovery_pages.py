"""Account recovery pages: forgot password, reset password, verify email.

Their paths are the ones the auth mails link to (api/auth/account_mail.py):
``/forgot-password``, ``/reset-password?token=`` and ``/verify-email?token=``.
Each form calls the REST route's own function (api/auth/recovery.py), so the
throttles, the token rules and the "same answer for every email" rule are
that code's, not restated here. Verifying is a POST behind the CSRF check, so
a mail scanner that fetches the link does not verify anything. No page ever
writes back an email, a password or a token it was not given by its own link.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.auth import recovery
from api.auth.recovery import EmailToken, PasswordResetConfirm, PasswordResetRequest
from api.deps import ResourcesDep
from api.errors import ProblemError
from api.web.csrf import require_csrf
from api.web.forms import field_errors, posted, problem_field_errors
from api.web.render import render
from api.web.session import PageVisitor, clear_session

router = APIRouter(include_in_schema=False)
forms = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

# After a reset, the login page says so (a fixed notice, see login.html).
RESET_DONE = "/shop/login?notice=password-reset"


def _usable(token: str | None) -> str | None:
    """The link's token if it has a token's shape (EmailToken's rule), else None."""
    try:
        return EmailToken.model_validate({"token": token or ""}).token
    except ValidationError:
        return None


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_password_page(request: Request, visitor: PageVisitor) -> Response:
    return await render(request, "forgot_password.html", visitor, state="form", errors={})


@forms.post("/forgot-password", response_class=HTMLResponse)
async def forgot_password(
    request: Request, visitor: PageVisitor, resources: ResourcesDep, background: BackgroundTasks
) -> Response:
    data = await posted(request)
    try:
        body = PasswordResetRequest.model_validate({"email": data.get("email", "")})
        # POST /auth/password-reset itself: its throttle, its "mail only a known
        # email". The mail task rides on this page's response (FastAPI runs the
        # injected BackgroundTasks after sending it), so timing tells nothing.
        await recovery.request_password_reset(body, request, resources, background)
    except ValidationError as err:
        return await render(
            request,
            "forgot_password.html",
            visitor,
            status_code=422,
            state="form",
            errors=field_errors(err),
        )
    except ProblemError as err:
        if err.status_code != 429:
            raise
        refused = await render(
            request, "forgot_password.html", visitor, status_code=429, state="too-many", errors={}
        )
        refused.headers.update(err.headers or {})  # Retry-After, as the REST route says
        return refused
    # One page for every email: whether it has an account is never shown.
    return await render(request, "forgot_password.html", visitor, state="sent", errors={})


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(
    request: Request, visitor: PageVisitor, token: str | None = None
) -> Response:
    usable = _usable(token)
    if usable is None:
        return await _bad_reset_link(request, visitor)
    return await render(request, "reset_password.html", visitor, token=usable, errors={})


async def _bad_reset_link(request: Request, visitor: PageVisitor) -> Response:
    # One state for unknown, used, expired and malformed links; the token is not shown.
    return await render(
        request, "reset_password.html", visitor, status_code=404, token=None, errors={}
    )


@forms.post("/reset-password", response_class=HTMLResponse)
async def reset_password(
    request: Request, visitor: PageVisitor, resources: ResourcesDep
) -> Response:
    data = await posted(request)
    token = _usable(data.get("token"))
    if token is None:
        return await _bad_reset_link(request, visitor)
    try:
        body = PasswordResetConfirm.model_validate(
            {"token": token, "new_password": data.get("new_password", "")}
        )
        # POST /auth/password-reset/confirm itself: spends the link, sets the
        # password, revokes every older token (this browser's session too).
        await recovery.confirm_password_reset(body, resources)
    except ValidationError as err:
        errors = field_errors(err)
    except ProblemError as err:
        if err.status_code == 404:
            return await _bad_reset_link(request, visitor)
        errors = problem_field_errors(err)
        if not errors:
            raise
    else:
        response = RedirectResponse(RESET_DONE, status_code=303)
        clear_session(response, resources.settings)
        return response
    # The link stays good (a refusal spends nothing): the form again, with the error.
    return await render(
        request, "reset_password.html", visitor, status_code=422, token=token, errors=errors
    )


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page(
    request: Request, visitor: PageVisitor, token: str | None = None
) -> Response:
    usable = _usable(token)
    state = "confirm" if usable is not None else "invalid"
    return await render(
        request,
        "verify_email.html",
        visitor,
        status_code=200 if usable else 404,
        state=state,
        token=usable,
    )


@forms.post("/verify-email", response_class=HTMLResponse)
async def verify_email(request: Request, visitor: PageVisitor, resources: ResourcesDep) -> Response:
    data = await posted(request)
    token = _usable(data.get("token"))
    try:
        if token is None:
            raise ProblemError(404, "invalid link", code="invalid-token")
        # POST /auth/verify-email itself.
        await recovery.verify_email(EmailToken(token=token), resources)
    except ProblemError as err:
        if err.status_code != 404:
            raise
        return await render(
            request, "verify_email.html", visitor, status_code=404, state="invalid", token=None
        )
    return await render(request, "verify_email.html", visitor, state="verified", token=None)
