"""Errors as pages for browsers, problem+json for everyone else.

The app's JSON handlers (api/errors.py) stay as they are; these wrap them and
answer a request that asks for HTML (a browser's ``Accept``) with a friendly
page instead. A page names the status only: it never repeats what was sent.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.web.csrf import CsrfRefused
from api.web.render import render
from api.web.session import LoginRequired, login_url

log = logging.getLogger(__name__)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

_PAGES = {
    401: ("Please log in", "This needs an account. Log in from the top of the page."),
    403: ("Not allowed", "This action is not allowed. Go back, reload the page and try again."),
    404: ("Page not found", "There is nothing here. It may have moved or never existed."),
    500: ("Something went wrong", "Our mistake. Please try again in a moment."),
}
_OTHER = ("Something is not right", "The request could not be completed. Please try again.")


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def error_page(request: Request, status: int) -> Response:
    title, message = _PAGES.get(status, _OTHER)
    return await render(
        request, "error.html", None, status_code=status, title=title, message=message, status=status
    )


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


def _html_first(app: FastAPI, exc_class: type[Exception] | int) -> None:
    json_handler: Handler = app.exception_handlers[exc_class]

    async def handler(request: Request, exc: Exception) -> Response:
        if not wants_html(request):
            return await _call(json_handler, request, exc)
        if isinstance(exc, StarletteHTTPException):
            status = exc.status_code
        elif isinstance(exc, RequestValidationError):
            status = 422
        else:
            status = 500
        try:
            return await error_page(request, status)
        except Exception:  # the page itself failed: fall back to the JSON answer
            log.exception("could not render the error page")
            return await _call(json_handler, request, exc)

    app.add_exception_handler(exc_class, handler)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_url(exc.next_path), status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return await error_page(request, 403)


def install_html_errors(app: FastAPI) -> None:
    """Wrap the JSON error handlers already installed (api/errors.py)."""
    for exc_class in (StarletteHTTPException, RequestValidationError, Exception):
        _html_first(app, exc_class)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
