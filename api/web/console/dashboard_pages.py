"""The console's home: the dashboard's figures (api/dashboard.py), as a page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.dashboard import dashboard
from api.deps import OptionalTemporal, ResourcesDep
from api.web.console.access import PageAdmin
from api.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/console", response_class=HTMLResponse)
async def dashboard_page(
    request: Request, admin: PageAdmin, resources: ResourcesDep, client: OptionalTemporal
) -> Response:
    figures = await dashboard(resources, client)
    return await render(request, "console/dashboard.html", admin, board=figures)
