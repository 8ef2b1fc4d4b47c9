"""The console's mail page: what the stack sent, each message with its order."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.admin import list_mail
from api.deps import ResourcesDep
from api.pagination import Page
from api.web.console.access import PageAdmin
from api.web.render import render

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
# Order mail is sent under Message-ID <order-<uuid>-<kind>@domain>
# (activities/notifications.py: message_key), so each message names its order.
_ORDER_MESSAGE = re.compile(r"^<order-([0-9a-f-]{36})-[a-z_]+@", re.IGNORECASE)


def order_of(message_id: str | None) -> uuid.UUID | None:
    match = _ORDER_MESSAGE.match(message_id or "")
    return uuid.UUID(match.group(1)) if match else None


@router.get("/console/mail", response_class=HTMLResponse)
async def mail_page(
    request: Request,
    admin: PageAdmin,
    resources: ResourcesDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    found = await list_mail(admin, resources, Page(limit=PER_PAGE, offset=(page - 1) * PER_PAGE))
    rows = [(mail, order_of(mail.message_id)) for mail in found.items]
    return await render(
        request,
        "console/mail.html",
        admin,
        rows=rows,
        total=found.total,
        page=page,
        pages=max(1, -(-found.total // PER_PAGE)),
    )
