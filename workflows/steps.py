"""How a saga step is run.

A ``Step`` (``workflows/saga_steps.py``) names its activity, how to build
its input, its options and its compensation (an ``Undo``);
``workflows/checkout.py`` lists the saga's steps as a table of these and
walks it. The runners here issue exactly the commands the saga always issued
for a step (see tests/workflows/test_replay.py).

Workflow code (it calls the ``workflow`` API), so imported inside the sandbox
like ``checkout.py``; only its activity and pure imports are passed through.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from workflows.retry_policies import ActivityOptions
    from workflows.saga_steps import Activity, Step

# A local step's retry backoff from which it waits on a server timer instead
# of in the worker. At the policies' first interval (1 s), so every retry does.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=1)


async def call(activity: Activity, arg: object, options: ActivityOptions) -> Any:
    """Run one regular activity with the options of its kind."""
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=options.start_to_close,
        schedule_to_close_timeout=options.schedule_to_close,
        retry_policy=options.retry_policy,
    )


async def run_forward(step: Step, arg: object, options: ActivityOptions, *, local: bool) -> None:
    """Run one step before (or at) the pivot, locally when this run may.

    A local activity runs in the worker that runs the workflow task, and its
    result is recorded with that task's completion: a step costs no activity
    round trip through the server (see docs/PERFORMANCE.md for the numbers).
    That is safe because every step is idempotent: a worker lost mid-task
    makes the next worker run the unrecorded steps again, which changes
    nothing (the charge, local before CANCELLABLE_CHARGE, is keyed per order;
    see activities/payments.py). A failed attempt is retried after a durable
    timer, not inside the worker (``LOCAL_RETRY_THRESHOLD``): between attempts
    the workflow task ends, so a cancel or ship reaches the workflow during a
    database outage instead of waiting for the step to give up; and an
    attempt is cut off after ``policies.LOCAL_STEP_TIMEOUT`` (see RunTimeouts).
    """
    if not local:
        await call(step.activity, arg, options)
        return
    try:
        await workflow.execute_local_activity_method(
            step.activity,
            arg,
            start_to_close_timeout=options.start_to_close,
            schedule_to_close_timeout=options.schedule_to_close,
            retry_policy=options.retry_policy,
            local_retry_threshold=LOCAL_RETRY_THRESHOLD,
        )
    except ApplicationError as err:
        # A local activity's own failure arrives bare, where a regular
        # activity's comes as the cause of an ActivityError (a local timeout
        # does come wrapped): wrap it the same way, so the saga tells a
        # refused step from a bug in workflow code alike.
        raise ActivityError(
            f"local activity {step.name} failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=step.name,
            activity_id="",
            retry_state=RetryState.NON_RETRYABLE_FAILURE
            if err.non_retryable
            else RetryState.MAXIMUM_ATTEMPTS_REACHED,
        ) from err


async def run_cancellable(
    step: Step,
    arg: object,
    options: ActivityOptions,
    *,
    cancelled: Callable[[], bool],
    on_no_answer: Callable[[], None],
) -> None:
    """Run the charge as a regular activity, and stop it once ``cancelled()``.

    Regular, not local: one attempt may wait on the provider for the whole
    provider timeout, and a local attempt would hold the workflow task that
    long, so a cancel could not even be accepted. A regular activity runs
    outside the workflow task, which stays free for updates.

    On an accepted cancel the activity is cancelled: the server starts no
    further attempt. ``WAIT_CANCELLATION_COMPLETED`` makes the saga wait for
    the attempt in flight to end (at most one provider timeout), so the
    refund that follows knows what the charge did: a capture that completed
    anyway is refunded, one that never happened is voided. (An attempt cut
    off by its timeout may still be running on a worker; the refund closes
    the payment first, and such a late capture refunds itself: see
    ``PaymentActivities._record_capture``.) Whatever the abandoned charge
    ended with, the cancel decides the end state: the failure is raised only
    when no cancel came. ``on_no_answer`` is told when the charge ended
    without a known answer from the provider (see Compensations.recheck).
    """
    charge = workflow.start_activity_method(
        step.activity,
        arg,
        start_to_close_timeout=options.start_to_close,
        schedule_to_close_timeout=options.schedule_to_close,
        retry_policy=options.retry_policy,
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )
    await workflow.wait_condition(lambda: charge.done() or cancelled())
    if not charge.done():
        workflow.logger.info("cancel accepted, stopping %s", step.name)
        charge.cancel()
    try:
        await charge
    except ActivityError as err:
        cause = err.cause
        # Only a refusal (declined, invalid) says for sure that nothing was
        # captured; anything else may hide a capture whose answer was lost
        # or is still on its way.
        if not (isinstance(cause, ApplicationError) and cause.non_retryable):
            on_no_answer()
        if not cancelled():
            raise
        # The cancel came first; the saga settles it between steps.
