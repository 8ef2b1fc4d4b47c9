"""Failure types raised by activities, matched by the workflow and by tests.

Business refusals are raised as non-retryable ``ApplicationError`` with one of
these types; transient trouble (database or provider unavailable) is raised
as a retryable error and retried by the activity's retry policy.
"""

OUT_OF_STOCK = "OutOfStock"  # not enough stock for a line: the order is rejected
PRODUCT_UNAVAILABLE = "ProductUnavailable"  # a product went away (inactive): rejected
PAYMENT_DECLINED = "PaymentDeclined"  # the provider refused the card: payment_failed
PROVIDER_UNAVAILABLE = "PaymentProviderUnavailable"  # transient: retried
INVALID_ORDER = "InvalidOrder"  # the order row is missing or inconsistent: not retried

BUSINESS_REFUSALS = (OUT_OF_STOCK, PRODUCT_UNAVAILABLE, PAYMENT_DECLINED, INVALID_ORDER)
