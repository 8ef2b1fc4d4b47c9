"""What a log line is about: the request, order and workflow in progress.

Context variables rather than arguments, because the lines that need them are
written deep inside libraries (uvicorn, SQLAlchemy, the Temporal SDK) that
know nothing of orders. The API's request middleware, the Temporal
interceptors and activities set them; ``LogContextFilter`` copies them onto
every record, where the JSON formatter writes them as fields.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str | None] = ContextVar("ordersaga_request_id", default=None)
order_id: ContextVar[str | None] = ContextVar("ordersaga_order_id", default=None)
workflow_id: ContextVar[str | None] = ContextVar("ordersaga_workflow_id", default=None)

FIELDS = ("request_id", "order_id", "workflow_id")
_VARS: dict[str, ContextVar[str | None]] = {
    "request_id": request_id,
    "order_id": order_id,
    "workflow_id": workflow_id,
}
# Workflow IDs are ``order-<order id>`` (workflows.checkout.workflow_id).
_ORDER_PREFIX = "order-"


def order_of(workflow: str | None) -> str | None:
    """The order ID a saga's workflow ID names, if it is one."""
    if workflow and workflow.startswith(_ORDER_PREFIX):
        return workflow[len(_ORDER_PREFIX) :]
    return None


@contextmanager
def bound(**values: str | None) -> Iterator[None]:
    """Set the named fields (None clears one) for the block, then restore all of them.

    Whatever is set inside the block with ``set_saga`` is undone too.
    """
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_saga(workflow: str) -> None:
    """Name the saga the current task is working on, until its ``bound`` block ends."""
    workflow_id.set(workflow)
    order_id.set(order_of(workflow))


def current() -> dict[str, str]:
    """The context of this task, without the unset fields."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


class LogContextFilter(logging.Filter):
    """Put request_id, order_id and workflow_id on every record (None when unknown).

    Inside Temporal code the SDK's own ``extra`` (``temporal_workflow`` on
    ``workflow.logger``, ``temporal_activity`` on ``activity.logger``) names
    the workflow even where no context variable was set.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        found: dict[str, Any] = current()
        for key in ("temporal_workflow", "temporal_activity"):
            info = getattr(record, key, None)
            if isinstance(info, dict) and "workflow_id" not in found:
                if wf := info.get("workflow_id"):
                    found["workflow_id"] = wf
        if "order_id" not in found:
            found["order_id"] = order_of(found.get("workflow_id"))
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, found.get(name))
        return True
