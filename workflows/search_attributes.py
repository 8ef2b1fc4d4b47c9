"""Custom search attributes of the order workflow, shown in the Temporal Web UI.

The dev stack registers these at start (``temporal server start-dev
--search-attribute``); on a real cluster ``ordersaga register-search-attributes``
(or ``temporal operator search-attribute create``) does it once.
"""

from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
ORDER_TOTAL = SearchAttributeKey.for_float("OrderTotal")  # Double in the UI
NEEDS_ATTENTION = SearchAttributeKey.for_bool("NeedsAttention")

ALL = [ORDER_STATUS, CUSTOMER_ID, ORDER_TOTAL, NEEDS_ATTENTION]
