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

``ActivityOptions`` bundles a step's timeouts with its policy, so each kind of
call names its options once (the saga's call sites pass one of these).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class ActivityOptions:
    """The timeouts and retry policy of one kind of activity call."""

    start_to_close: timedelta
    retry_policy: RetryPolicy
    schedule_to_close: timedelta | None = None

    def retried(self, policy: RetryPolicy) -> ActivityOptions:
        """The same call under another policy (a compensation's quick, then persistent)."""
        return replace(self, retry_policy=policy)


# A regular database step (the ship before ATOMIC_SHIP, the deliver).
DATABASE = ActivityOptions(DATABASE_STEP_TIMEOUT, DATABASE_STEP)
# A ship: one transaction, retried until done.
SHIP = ActivityOptions(DATABASE_STEP_TIMEOUT, SHIPMENT)
# The saga's own timeline lines and attention flag: best effort.
RECORD = ActivityOptions(DATABASE_STEP_TIMEOUT, BOOKKEEPING)
# A database compensation (release the stock, record the failure end); its
# policy is given per try (COMPENSATION_QUICK, then COMPENSATION_PERSISTENT).
UNDO_IN_DATABASE = ActivityOptions(DATABASE_STEP_TIMEOUT, COMPENSATION_QUICK)
NOTIFY = ActivityOptions(NOTIFICATION_TIMEOUT, NOTIFICATION, NOTIFICATION_DEADLINE)


@dataclass(frozen=True)
class RunTimeouts:
    """What one run's step options depend on: its input and its patches.

    ``database_attempt`` is LOCAL_STEP_TIMEOUT once the database steps run
    locally with a short attempt (since CANCELLABLE_CHARGE), else
    DATABASE_STEP_TIMEOUT; the provider's come from the workflow input
    (never from settings, which would not replay).
    """

    database_attempt: timedelta
    provider_seconds: float
    payment_deadline_seconds: float

    def database_step(self) -> ActivityOptions:
        return ActivityOptions(self.database_attempt, DATABASE_STEP)

    def pivot(self) -> ActivityOptions:
        return ActivityOptions(self.database_attempt, PIVOT)

    def charge(self) -> ActivityOptions:
        # The deadline bounds the whole charge, retries included; past it the
        # order fails as payment_failed and the refund voids anything.
        return ActivityOptions(
            timedelta(seconds=self.provider_seconds),
            PAYMENT,
            timedelta(seconds=self.payment_deadline_seconds),
        )

    def refund(self) -> ActivityOptions:
        return ActivityOptions(timedelta(seconds=self.provider_seconds), COMPENSATION_QUICK)

    def release(self) -> ActivityOptions:
        return UNDO_IN_DATABASE
