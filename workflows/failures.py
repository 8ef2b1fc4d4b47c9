"""How the saga reads a failure: which end state it leads to, and why.

Failures are matched on their type (the ``ApplicationError.type`` an activity
raised, or the kind of Temporal error), never on message text.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from activities import errors
    from core.order_status import OrderStatus


class CancelRequested(Exception):
    """Raised between steps once the cancel update has been accepted."""


@dataclass(frozen=True)
class Outcome:
    status: OrderStatus  # the end state the order settles in
    reason: str  # failure_reason, shown to the customer
    detail: str = ""  # timeline text


@dataclass(frozen=True)
class Cancellation:
    reason: str | None
    requested_by: str | None


_REJECTIONS = (errors.OUT_OF_STOCK, errors.PRODUCT_UNAVAILABLE, errors.INVALID_ORDER)


def classify_failure(
    err: BaseException, *, step: str, cancel: Cancellation | None
) -> Outcome | None:
    """The end state for a failure before the pivot, or None if it is not a saga failure.

    None means a bug in workflow code: the exception must propagate so the
    workflow task fails and is retried once the code is fixed.
    """
    if isinstance(err, CancelRequested):
        by = f"cancelled by {cancel.requested_by}" if cancel and cancel.requested_by else ""
        return Outcome(OrderStatus.CANCELLED, (cancel and cancel.reason) or "cancelled", by)
    if isinstance(err, asyncio.CancelledError) or _cause_is(err, CancelledError):
        return Outcome(OrderStatus.CANCELLED, "cancelled", "the workflow was cancelled")
    if not isinstance(err, ActivityError):
        return None
    cause = err.cause
    kind = cause.type if isinstance(cause, ApplicationError) else None
    message = cause.message if isinstance(cause, ApplicationError) else ""
    if kind in _REJECTIONS:
        return Outcome(OrderStatus.REJECTED, message or kind or "rejected", kind or "")
    if kind == errors.PAYMENT_DECLINED:
        return Outcome(OrderStatus.PAYMENT_FAILED, message or "payment declined", kind)
    if step == "charge_payment":
        if isinstance(cause, TimeoutError):
            return Outcome(
                OrderStatus.PAYMENT_FAILED,
                "the payment did not complete within the payment deadline",
                describe(err),
            )
        return Outcome(
            OrderStatus.PAYMENT_FAILED, "the payment could not be completed", describe(err)
        )
    # A step before the charge kept failing (e.g. the database was down for
    # longer than its retries): nothing was charged, so the order is rejected.
    return Outcome(
        OrderStatus.REJECTED, f"the order could not be processed ({step})", describe(err)
    )


def describe(err: BaseException) -> str:
    """Type and message of the innermost failure, for logs and the timeline.

    Activity errors never carry card tokens (activities keep them out), so
    this is safe to log.
    """
    inner: BaseException = err
    while isinstance(inner, ActivityError) and inner.cause is not None:
        inner = inner.cause
    if isinstance(inner, ApplicationError):
        return f"{inner.type or 'ApplicationError'}: {inner.message}"
    if isinstance(inner, TimeoutError):
        kind = inner.type.name if inner.type is not None else "unknown"
        return f"timeout ({kind.lower()})"
    return type(inner).__name__


def _cause_is(err: BaseException, kind: type[BaseException]) -> bool:
    return isinstance(err, ActivityError) and isinstance(err.cause, kind)
