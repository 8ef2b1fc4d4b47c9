"""Failure types raised by activities, matched by the workflow and by tests.

Business refusals are raised as non-retryable ``ApplicationError`` with one of
these types; transient trouble (database or provider unavailable) is raised
as a retryable error and retried by the activity's retry policy. Database
errors (SQLAlchemy ``OperationalError``) are deliberately not wrapped: they
propagate as ordinary, retryable exceptions.
"""

from __future__ import annotations

import uuid

from temporalio.exceptions import ApplicationError

OUT_OF_STOCK = "OutOfStock"  # not enough stock for a line: the order is rejected
PRODUCT_UNAVAILABLE = "ProductUnavailable"  # a product went away (inactive): rejected
PAYMENT_DECLINED = "PaymentDeclined"  # the provider refused the card: payment_failed
PROVIDER_UNAVAILABLE = "PaymentProviderUnavailable"  # transient: retried
INVALID_ORDER = "InvalidOrder"  # the order row is missing or inconsistent: not retried

BUSINESS_REFUSALS = (OUT_OF_STOCK, PRODUCT_UNAVAILABLE, PAYMENT_DECLINED, INVALID_ORDER)


def invalid_order(message: str) -> ApplicationError:
    """A refusal no retry can fix: the data the API wrote is missing or inconsistent."""
    return ApplicationError(message, type=INVALID_ORDER, non_retryable=True)


def parse_order_id(order_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise invalid_order(f"not an order id: {order_id!r}") from None
