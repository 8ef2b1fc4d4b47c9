"""One named retry policy (and timeout) per kind of saga step, kept in one place.

Why each is shaped the way it is:

- Business refusals (out of stock, card declined, invalid order) are listed as
  non-retryable here as well as raised non-retryable by the activities, so a
  refusal is never retried even if an activity forgets the flag.
- Database steps retry a bounded number of times: a database outage of a few
  minutes delays an order, a longer one fails it (and compensates).
- The charge is bounded by the payment deadline (its schedule-to-close timeout,
  from the workflow input) more than by attempts.
- Compensations first retry a few times quickly; if that is not enough the
  order is flagged for a person and the compensation goes on retrying slowly,
  without limit, because giving up would lose stock or keep a customer's money.
- Notifications come after the pivot, so they may take long: they retry for a
  day and never undo the order.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import errors

_NEVER_RETRIED = list(errors.BUSINESS_REFUSALS)

DATABASE_STEP = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=_NEVER_RETRIED,
)
# One short transaction takes milliseconds. The timeout is also how long an
# attempt lost with its worker (a crash, a SIGKILL) holds the order up before
# Temporal retries it elsewhere, so it is kept short; a slow attempt that hits
# it is simply retried (every step is idempotent).
DATABASE_STEP_TIMEOUT = timedelta(seconds=5)
# The same steps run as local activities (since CANCELLABLE_CHARGE): an
# attempt then holds the workflow task, and no update (a cancel) is taken
# until it ends, so an attempt is cut off after a second; it is retried after
# a server timer, with the workflow task free in between.
LOCAL_STEP_TIMEOUT = timedelta(seconds=1)

PAYMENT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
    non_retryable_error_types=[errors.PAYMENT_DECLINED, errors.INVALID_ORDER],
)

# The pivot (confirming the order) only goes forward once money is captured:
# it retries without limit rather than fail and undo a paid order.
PIVOT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=0,
    non_retryable_error_types=[errors.INVALID_ORDER],
)

# Shipping records a fact of the physical world (the parcel has left): it is
# retried until it is done, never given up half-way. Only an inconsistent
# order row (InvalidOrder) stops it, and then nothing was written: the one
# transaction is all or nothing.
SHIPMENT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=0,
    non_retryable_error_types=[errors.INVALID_ORDER],
)

# How many quick attempts a compensation gets before the order is flagged.
COMPENSATION_QUICK_ATTEMPTS = 5
COMPENSATION_QUICK = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=COMPENSATION_QUICK_ATTEMPTS,
)
# maximum_attempts=0 is "unlimited": the server keeps retrying without adding
# one history event per attempt.
COMPENSATION_PERSISTENT = RetryPolicy(
    initial_interval=timedelta(seconds=30),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=0,
)
# A compensation that fails in a way no retry fixes (a non-retryable error)
# is tried again after this pause; a person has been told by then.
COMPENSATION_PAUSE = timedelta(minutes=10)

NOTIFICATION = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=0,
    non_retryable_error_types=[errors.INVALID_ORDER],
)
# Bounds the wait after a worker dies mid-send, as above; SMTP answers in well under it.
NOTIFICATION_TIMEOUT = timedelta(seconds=10)
NOTIFICATION_DEADLINE = timedelta(days=1)

# Best-effort bookkeeping (timeline lines written by the workflow itself).
BOOKKEEPING = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[errors.INVALID_ORDER],
)
