"""The console order page's actions: ship, deliver, cancel and retry now.

Each is a form post (CSRF-checked by the router) answered by a 303 back to
the order page, whose notice or alert says how it went. Ship, deliver and
cancel run the REST routes' own change (api/orders.py ``change_order``: the
order rules, the saga's Update, the wait for the read model); retry runs
``retry_now`` (api/progress.py). A refusal is named by its problem type,
never by anything that was posted.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import OptionalTemporal, ResourcesDep
from api.errors import ProblemError
from api.order_reads import OrderRecord
from api.orders import change_order
from api.progress import retry_now
from api.schemas.orders import CancelBody, ShipBody
from api.web.console.access import PageAdmin
from api.web.console.order_detail import ALERTS, find_order, render_order
from api.web.csrf import require_csrf
from api.web.forms import field_errors, posted
from workflows.order_rules import Action

forms = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

# Update results are awaited at most this long before the page answers
# "accepted, still in progress" (the saga finishes the change on its own).
WAIT_SECONDS = 10
_DONE = {Action.SHIP: "shipped", Action.DELIVER: "delivered", Action.CANCEL: "cancelled"}


def _back(record: OrderRecord, **query: str) -> RedirectResponse:
    return RedirectResponse(
        f"/console/orders/{record.order.id}?{urlencode(query)}", status_code=303
    )


def _refused(record: OrderRecord, verb: str, err: ProblemError) -> RedirectResponse:
    code = err.code if err.code in ALERTS else "order-state-conflict"
    if err.status_code == 503:
        code = "temporal-unavailable"
    return _back(record, alert=code, action=verb)


async def _act(
    request: Request,
    order_id: str,
    admin: PageAdmin,
    resources: ResourcesDep,
    client: OptionalTemporal,
    action: Action,
    body: ShipBody | CancelBody | None,
) -> Response:
    record = await find_order(resources, order_id)
    verb = action.name.lower()
    if client is None:
        return _back(record, alert="temporal-unavailable", action=verb)
    answer = Response()
    try:
        await change_order(
            resources,
            client,
            record,
            action,
            admin,
            answer,
            WAIT_SECONDS,
            reason=body.reason if isinstance(body, CancelBody) else None,
            carrier=body.carrier if isinstance(body, ShipBody) else None,
            tracking_number=body.tracking_number if isinstance(body, ShipBody) else None,
        )
    except ProblemError as err:
        if err.status_code == 404:
            raise
        return _refused(record, verb, err)
    if answer.status_code == 202:
        return _back(record, notice="accepted")
    return _back(record, notice=_DONE[action])


async def _invalid_form(
    request: Request,
    order_id: str,
    admin: PageAdmin,
    resources: ResourcesDep,
    client: OptionalTemporal,
    err: ValidationError,
) -> Response:
    # The page again, 422, each field's message chosen by its kind: the
    # submitted text is not written back.
    record = await find_order(resources, order_id)
    return await render_order(
        request,
        admin,
        resources,
        client,
        record,
        status_code=422,
        alert="Please check the form.",
        field_errors=field_errors(err),
    )


@forms.post("/console/orders/{order_id}/ship")
async def ship(
    request: Request,
    order_id: str,
    admin: PageAdmin,
    resources: ResourcesDep,
    client: OptionalTemporal,
) -> Response:
    data = await posted(request)
    try:
        body = ShipBody.model_validate(
            {"carrier": data.get("carrier"), "tracking_number": data.get("tracking_number")}
        )
    except ValidationError as err:
        return await _invalid_form(request, order_id, admin, resources, client, err)
    return await _act(request, order_id, admin, resources, client, Action.SHIP, body)


@forms.post("/console/orders/{order_id}/deliver")
async def deliver(
    request: Request,
    order_id: str,
    admin: PageAdmin,
    resources: ResourcesDep,
    client: OptionalTemporal,
) -> Response:
    return await _act(request, order_id, admin, resources, client, Action.DELIVER, None)


@forms.post("/console/orders/{order_id}/cancel")
async def cancel(
    request: Request,
    order_id: str,
    admin: PageAdmin,
    resources: ResourcesDep,
    client: OptionalTemporal,
) -> Response:
    data = await posted(request)
    try:
        body = CancelBody.model_validate({"reason": data.get("reason")})
    except ValidationError as err:
        return await _invalid_form(request, order_id, admin, resources, client, err)
    return await _act(request, order_id, admin, resources, client, Action.CANCEL, body)


@forms.post("/console/orders/{order_id}/retry")
async def retry(
    request: Request,
    order_id: str,
    admin: PageAdmin,
    resources: ResourcesDep,
    client: OptionalTemporal,
) -> Response:
    record = await find_order(resources, order_id)
    if client is None:
        return _back(record, alert="temporal-unavailable", action="retry")
    try:
        await retry_now(resources, client, record.order.id, admin)
    except ProblemError as err:
        if err.status_code == 404:
            raise
        return _refused(record, "retry", err)
    return _back(record, notice="retried")
