"""The checkout saga: one durable workflow per order.

The API writes the order, its lines and its payments row (with the card token)
to PostgreSQL, then starts ``OrderWorkflow`` with ID ``order-<order id>``. The
input carries no card token, so no secret ever enters Temporal's history.

This module is the saga: its steps, each next to its compensation (``SAGA``),
and the run that walks them and settles a failure. Beside it:
``order_updates.py`` (the cancel/outcome/ship/deliver updates and the
``state`` query, inherited), ``compensation.py`` (undoing, and the attention
flag), ``outbox.py`` (the messages), ``steps.py`` (how a step runs),
``order_rules.py`` (which status allows which update) and ``versions.py``
(the patch ids). The order of the steps and their compensations is recorded
in ``tests/workflows/histories/`` and replayed by ``tests/workflows/test_replay.py``: changing it
breaks running workflows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from temporalio import workflow

# The saga's own code, imported inside the sandbox like this module: the
# sandbox's checks guard it.
from workflows.compensation import Compensations
from workflows.order_updates import OrderUpdates
from workflows.outbox import Outbox
from workflows.steps import call, run_cancellable, run_forward

# Imported passed through the sandbox, so not re-imported for every workflow
# run (which showed up as a fifth of the worker's CPU in the bench's
# profile). The activities are side-effect code that runs in the worker,
# never inside workflow code; the saga's pure helper modules hold only
# dataclasses, constants and pure functions, no state a run could leak into
# the next.
with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities, StockInput
    from activities.notifications import NotificationKind
    from activities.orders import OrderActivities, RecordOrderInput, StatusChange
    from activities.payments import ChargeInput, PaymentActivities, RefundInput
    from core.order_status import OrderStatus
    from workflows import retry_policies as policies
    from workflows import search_attributes
    from workflows.checkout_io import CheckoutInput, CheckoutResult
    from workflows.failures import Cancellation, CancelRequested, Outcome, classify_failure
    from workflows.retry_policies import ActivityOptions, RunTimeouts
    from workflows.saga_steps import Step, Undo
    from workflows.uninterruptible import finish_then_honour_cancel, uninterruptible
    from workflows.versions import CANCELLABLE_CHARGE, LOCAL_FORWARD_STEPS

# --- the saga: each forward step, with the compensation that undoes it ----
# Run in this order. A step's undo is registered before the step runs (a step
# whose result was lost is still undone; undoing what never happened is a
# no-op); on failure the registered undos run strictly in reverse: refund
# (or void) the payment, then release the stock (compensation.py).

RECORD_ORDER = Step(
    "record_order",
    OrderActivities.record_order,
    lambda order, _: RecordOrderInput(order),
    RunTimeouts.database_step,
)
RESERVE_STOCK = Step(
    "reserve_stock",
    InventoryActivities.reserve,
    lambda order, _: StockInput(order),
    RunTimeouts.database_step,
    undo=Undo(
        "release_stock",
        InventoryActivities.release,
        lambda order, _: StockInput(order),
        RunTimeouts.release,
    ),
)
CHARGE_PAYMENT = Step(
    "charge_payment",
    PaymentActivities.charge,
    lambda order, _: ChargeInput(order),
    RunTimeouts.charge,
    undo=Undo(
        "refund_payment",
        PaymentActivities.refund,
        lambda order, reason: RefundInput(order, reason=reason),
        RunTimeouts.refund,
    ),
    cancellable=True,  # an accepted cancel stops it (since CANCELLABLE_CHARGE)
)
# The pivot. Money is captured and stock held, so this step only goes
# forward: a database outage delays the confirmation, never undoes it.
CONFIRM = Step(
    "confirm",
    OrderActivities.set_status,
    lambda order, _: StatusChange(order, OrderStatus.CONFIRMED.value),
    RunTimeouts.pivot,
)
SAGA = (RECORD_ORDER, RESERVE_STOCK, CHARGE_PAYMENT, CONFIRM)

# The end states of a saga that did not go through; each has its message.
_FAILURE_NOTICES = {
    OrderStatus.REJECTED: NotificationKind.REJECTED,
    OrderStatus.PAYMENT_FAILED: NotificationKind.PAYMENT_FAILED,
    OrderStatus.CANCELLED: NotificationKind.CANCELLED,
}


@workflow.defn
class OrderWorkflow(OrderUpdates):
    """The checkout saga of one order.

    Guarantees:

    - Steps run in order: record the order, reserve stock, charge, confirm
      (the pivot), then notify and wait for ship / deliver / cancel.
    - A cancel is accepted or refused within about a second whatever step
      runs: no step holds the workflow task longer (since CANCELLABLE_CHARGE),
      and an accepted cancel stops a charge in flight from retrying. A
      charge that ended without an answer is refunded once more two
      provider timeouts later, for a capture that landed late.
    - A ship is never left half-done: shipment, stock commit and status are
      one transaction, retried until done (since ATOMIC_SHIP).
    - Before the pivot, any failure or cancellation undoes what was done,
      strictly in reverse: refund (or void) the payment, then release the
      stock; then the order settles as ``rejected``, ``payment_failed`` or
      ``cancelled`` and the customer is told. Each undo is registered before
      its step runs (so a step whose outcome was lost is still undone;
      undoing what never happened is a no-op), runs even while the workflow
      is being cancelled, and retries until it succeeds. One that keeps
      failing flags the order for attention (database, timeline and the
      ``NeedsAttention`` search attribute) and goes on retrying; once it
      succeeds the flag is cleared again (since CLEAR_ATTENTION_ON_RECOVERY).
      One refused the same way every time also puts its cause on the
      timeline (``compensation.stuck``, since REPORT_STUCK_COMPENSATION).
    - After the pivot nothing is undone automatically. Notifications retry
      and never cause a refund. Only an explicit cancel of a confirmed,
      unshipped order refunds and releases, through the same path.
    - Every status change is written to the read model (by an activity) and
      to the ``OrderStatus`` search attribute.
    - The workflow returns only after every update handler has finished.
    """

    @workflow.init
    def __init__(self, input: CheckoutInput) -> None:
        self._input = input
        self._status = OrderStatus.PENDING
        self._failure_reason = None
        self._cancel = None
        self._settling = False
        self._transition = None
        self._step = ""
        self._undo = Compensations(input.order_id)
        self._outbox = Outbox(input.order_id)
        # Decided once per run (see run): a workflow that started on a worker
        # without LOCAL_FORWARD_STEPS keeps its regular activities on replay;
        # likewise for CANCELLABLE_CHARGE.
        self._local_steps = False
        self._cancellable_charge = False
        self._timeouts = RunTimeouts(
            policies.DATABASE_STEP_TIMEOUT,
            input.provider_timeout_seconds,
            input.payment_deadline_seconds,
        )

    @workflow.run
    async def run(self, input: CheckoutInput) -> CheckoutResult:
        self._ensure_search_attributes()
        self._local_steps = workflow.patched(LOCAL_FORWARD_STEPS)
        self._cancellable_charge = workflow.patched(CANCELLABLE_CHARGE)
        if self._cancellable_charge:
            # A local attempt holds the workflow task while it runs, and an
            # update (a cancel) cannot be taken until the task ends: keep
            # that hold short. A slow attempt is cut off and retried.
            self._timeouts = replace(self._timeouts, database_attempt=policies.LOCAL_STEP_TIMEOUT)
        notifier = asyncio.create_task(self._outbox.send_all())
        try:
            await self._run_steps()
        except BaseException as err:  # CancelledError is not an Exception
            if isinstance(err, asyncio.CancelledError) and self._transition is not None:
                # A workflow cancellation during a ship: let the ship finish
                # first, so a shipped order is never refunded behind its back.
                await uninterruptible(workflow.wait_condition(lambda: self._transition is None))
            outcome = classify_failure(err, step=self._step, cancel=self._cancellation())
            if outcome is None or self._status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
                # A bug in workflow code (the task fails and is retried once
                # fixed) or a cancellation after shipping: nothing to undo.
                raise
            await uninterruptible(self._settle_failure(outcome))
            if (in_doubt := self._undo.in_doubt) is not None:
                # A charge that ended without an answer: refund once more later.
                await uninterruptible(self._undo.recheck(in_doubt, self._timeouts, outcome.reason))
            if isinstance(err, asyncio.CancelledError):
                await uninterruptible(self._finish(notifier))
                raise
        await uninterruptible(self._finish(notifier))
        return CheckoutResult(input.order_id, self._status.value, self._failure_reason)

    async def _run_steps(self) -> None:
        for step in SAGA:
            if step.undo is not None:
                self._undo.register(step.undo)
            self._step = step.name
            # Each step before the pivot runs to its end even if the workflow
            # is cancelled meanwhile (see finish_then_honour_cancel).
            await finish_then_honour_cancel(self._run_step(step))
            if step is CONFIRM:
                self._set_status(OrderStatus.CONFIRMED)
            # Checked between steps: the step in flight finishes first, so
            # the compensation knows for certain what was done.
            self._stop_if_cancel_requested()
        self._outbox.notify(NotificationKind.CONFIRMED)
        self._step = "fulfilment"
        await workflow.wait_condition(
            lambda: self._cancel is not None or self._status is OrderStatus.DELIVERED
        )
        self._stop_if_cancel_requested()

    def _run_step(self, step: Step) -> Coroutine[Any, Any, None]:
        arg = step.input(self._input.order_id, "")
        options = step.options(self._timeouts)
        if step.cancellable and self._cancellable_charge:
            return run_cancellable(
                step,
                arg,
                options,
                cancelled=lambda: self._cancel is not None,
                on_no_answer=lambda: self._undo.doubt(step.undo),
            )
        return self._forward_step(step, arg, options)

    def _forward_step(
        self, step: Step, arg: object, options: ActivityOptions
    ) -> Coroutine[Any, Any, None]:
        # Local when this run may (LOCAL_FORWARD_STEPS). A method of its own so
        # the bench's naive ceiling (tooling/bench/naive.py) can run every
        # step as a regular activity.
        return run_forward(step, arg, options, local=self._local_steps)

    async def _settle_failure(self, outcome: Outcome) -> None:
        """Undo the steps done so far, record the end state and tell the customer."""
        self._settling = True
        self._failure_reason = outcome.reason
        workflow.logger.info(
            "order %s failing as %s at %s", self._input.order_id, outcome.status, self._step
        )
        await self._undo.unwind(self._timeouts, outcome.reason)
        end = StatusChange(
            self._input.order_id, outcome.status.value, outcome.reason, outcome.detail
        )
        await self._undo.until_done(
            "set_order_status",
            lambda policy: call(
                OrderActivities.set_status, end, policies.UNDO_IN_DATABASE.retried(policy)
            ),
        )
        self._set_status(outcome.status)
        self._outbox.notify(_FAILURE_NOTICES[outcome.status])

    def _cancellation(self) -> Cancellation | None:
        if self._cancel is None:
            return None
        return Cancellation(self._cancel.reason, self._cancel.requested_by)

    def _stop_if_cancel_requested(self) -> None:
        if self._cancel is not None:
            raise CancelRequested()

    # --- bookkeeping ----------------------------------------------------------

    async def _finish(self, notifier: asyncio.Task[None]) -> None:
        # Handlers first (a cancel returns the settled state), then the last
        # messages; returning earlier would cut both off.
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._outbox.close()
        await notifier

    def _ensure_search_attributes(self) -> None:
        # The API sets these at start; a workflow started another way (a
        # script, the CLI) still shows up in the UI's filters.
        known = workflow.info().typed_search_attributes
        if known.get(search_attributes.ORDER_STATUS) is None:
            workflow.upsert_search_attributes(
                [
                    search_attributes.ORDER_STATUS.value_set(self._status.value),
                    search_attributes.CUSTOMER_ID.value_set(self._input.customer_id),
                ]
            )
