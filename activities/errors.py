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

# A notification channel refused for good. Each is a fault of configuration or
# of the address, which no retry fixes: retrying them for the notification's
# day would only hide it. The activity records them on the notification row and
# the timeline, and the worker counts them (ordersaga_notifications_failed).
MAIL_AUTHENTICATION_FAILED = "MailAuthenticationFailed"  # 535: wrong user or password
# The relay's certificate did not verify (unknown CA, wrong host name,
# expired): a setting to fix (ORDERSAGA_SMTP_CA_FILE, the host name), or an
# impostor on the path. Either way the next attempt sees the same certificate.
MAIL_CERTIFICATE_REJECTED = "MailCertificateRejected"
MAIL_TLS_UNAVAILABLE = "MailTlsUnavailable"  # starttls asked, the relay offers none
MAIL_REFUSED = "MailRefused"  # a 5xx answer to the sender, a recipient or the data
SMS_AUTHENTICATION_FAILED = "SmsAuthenticationFailed"  # the provider refused our credentials
SMS_RECIPIENT_INVALID = "SmsRecipientInvalid"  # not a number the provider can text
SMS_REFUSED = "SmsRefused"  # any other 4xx answer: the request itself is wrong
# Transient trouble at a notification provider (5xx, 429, no answer): retried.
NOTIFICATION_PROVIDER_UNAVAILABLE = "NotificationProviderUnavailable"

NOTIFICATION_REFUSALS = (
    MAIL_AUTHENTICATION_FAILED,
    MAIL_CERTIFICATE_REJECTED,
    MAIL_TLS_UNAVAILABLE,
    MAIL_REFUSED,
    SMS_AUTHENTICATION_FAILED,
    SMS_RECIPIENT_INVALID,
    SMS_REFUSED,
)

BUSINESS_REFUSALS = (OUT_OF_STOCK, PRODUCT_UNAVAILABLE, PAYMENT_DECLINED, INVALID_ORDER)


def invalid_order(message: str) -> ApplicationError:
    """A refusal no retry can fix: the data the API wrote is missing or inconsistent."""
    return ApplicationError(message, type=INVALID_ORDER, non_retryable=True)


def notification_refused(type: str, message: str) -> ApplicationError:
    """A channel refused the message for good (one of ``NOTIFICATION_REFUSALS``)."""
    return ApplicationError(message, type=type, non_retryable=True)


def provider_unavailable(message: str) -> ApplicationError:
    """A notification provider is down or busy: the activity's retry policy tries again."""
    return ApplicationError(message, type=NOTIFICATION_PROVIDER_UNAVAILABLE)


def parse_order_id(order_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise invalid_order(f"not an order id: {order_id!r}") from None
