"""The checkout saga: one durable workflow per order.

The API writes the order, its lines and its payments row (with the card token)
to PostgreSQL, then starts ``OrderWorkflow`` with ID ``order-<order id>``. The
input carries no card token, so no secret ever enters Temporal's history.

Updates ``cancel``, ``ship`` and ``deliver`` move the order on; their
validators reject a wrong state at once with an ``ApplicationError`` of type
``INVALID_TRANSITION`` ("InvalidOrderTransition"), which the caller receives
as ``WorkflowUpdateFailedError.cause``. ``state`` is a query. The order of the
steps and their compensations is recorded in ``tests/histories/`` and replayed
by ``tests/test_replay.py``: changing it breaks running workflows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.workflow import ActivityCancellationType

# Imported passed through the sandbox, so not re-imported for every workflow
# run (which showed up as a fifth of the worker's CPU in the bench's
# profile). The activities are side-effect code that runs in the worker,
# never inside workflow code; the saga's own helper modules hold only
# dataclasses, constants and pure functions, no state a run could leak into
# the next. This module stays sandboxed: the saga's code itself is what the
# sandbox's checks guard.
with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities, StockInput
    from activities.notifications import NotificationActivities, NotificationKind, NotifyInput
    from activities.orders import (
        AttentionCleared,
        AttentionInput,
        OrderActivities,
        RecordOrderInput,
        ShipmentInput,
        StatusChange,
        TimelineEvent,
    )
    from activities.payments import ChargeInput, PaymentActivities, RefundInput
    from activities.shipping import ShippingActivities
    from core.models.orders import OrderStatus
    from workflows import retry_policies as policies
    from workflows import search_attributes
    from workflows.checkout_io import (
        CancelRequest,
        CheckoutInput,
        CheckoutResult,
        OrderState,
        ShipRequest,
    )
    from workflows.failures import (
        Cancellation,
        CancelRequested,
        Outcome,
        classify_failure,
        describe,
    )
    from workflows.uninterruptible import finish_then_honour_cancel, uninterruptible

# A local step's retry backoff from which it waits on a server timer instead
# of in the worker. At the policies' first interval (1 s), so every retry does.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=1)

# The ApplicationError type of an update refused because the order is in the
# wrong state (the API answers 409).
INVALID_TRANSITION = "InvalidOrderTransition"

# Workflow versions (``workflow.patched`` ids), oldest first. Each guards a
# change to the commands the saga issues, so workflows started before the
# change replay as they ran; remove a guard only once no workflow that ran
# without it can still be replayed (see docs/RELIABILITY.md).
# - CLEAR_ATTENTION_ON_RECOVERY: a compensation that flagged the order for
#   attention and then succeeded clears the flag again (see
#   OrderWorkflow._until_done); before it the flag stayed set for good.
CLEAR_ATTENTION_ON_RECOVERY = "clear-attention-on-recovery"
# - LOCAL_FORWARD_STEPS: record_order, reserve_stock, charge_payment and the
#   confirmation run as local activities (see OrderWorkflow._forward_step);
#   before it each was a regular activity, one server round trip apiece.
#   (Since CANCELLABLE_CHARGE the charge is a regular activity again.)
LOCAL_FORWARD_STEPS = "local-forward-steps"
# - CANCELLABLE_CHARGE: the charge is a regular activity again, and an
#   accepted cancel stops it (no further attempt) instead of waiting for its
#   retries to end; the database steps stay local with a short attempt
#   timeout (policies.LOCAL_STEP_TIMEOUT). Before it a local charge attempt
#   held the workflow task for up to the provider timeout, so a cancel
#   could not even be accepted meanwhile (see OrderWorkflow._charge).
CANCELLABLE_CHARGE = "cancellable-charge"
# - ATOMIC_SHIP: ship is one activity (ShippingActivities.ship: shipment,
#   stock commit and status in one transaction) retried until it is done;
#   before it record_shipment and commit_stock ran apart, with bounded
#   retries, and a failure between them left the order half-shipped.
ATOMIC_SHIP = "atomic-ship"
# - REPORT_STUCK_COMPENSATION: a compensation refused the same way on every
#   try (a non-retryable failure) writes a ``compensation.stuck`` timeline
#   line with the cause each time the cause changes, besides the attention
#   flag; before it only the worker log said why (see _until_done).
REPORT_STUCK_COMPENSATION = "report-stuck-compensation"

# The end states of a saga that did not go through; each has its message.
_FAILURE_NOTICES = {
    OrderStatus.REJECTED: NotificationKind.REJECTED,
    OrderStatus.PAYMENT_FAILED: NotificationKind.PAYMENT_FAILED,
    OrderStatus.CANCELLED: NotificationKind.CANCELLED,
}
_CANCELLABLE = (OrderStatus.PENDING, OrderStatus.CONFIRMED)


# A forward step: an activity method and its input, run to completion.
_StepActivity = Callable[[Any, Any], Awaitable[object]]

# A compensation, run with the retry policy it is given.
_PolicyRunner = Callable[[RetryPolicy], Awaitable[None]]


@dataclass(frozen=True)
class _Compensation:
    step: str  # the activity name, for the timeline and the attention flag
    run: _PolicyRunner


@workflow.defn
class OrderWorkflow:
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
        self._failure_reason: str | None = None
        self._needs_attention = False
        self._cancel: CancelRequest | None = None
        # Set once the saga has chosen a failure end: no new cancel is taken.
        self._settling = False
        # The name of a ship/deliver in progress: guards against two updates
        # racing (both validators can pass in the same workflow task).
        self._transition: str | None = None
        self._step = ""
        self._compensations: list[_Compensation] = []
        self._outbox: list[NotificationKind] = []
        self._outbox_closed = False
        # Decided once per run (see run): a workflow that started on a worker
        # without LOCAL_FORWARD_STEPS keeps its regular activities on replay.
        self._local_steps = False
        # Likewise for CANCELLABLE_CHARGE.
        self._cancellable_charge = False
        # Set when the charge ended without a known answer from the provider
        # (timed out, cut off by a cancel, out of retries): see _recheck_charge.
        self._charge_in_doubt = False

    # --- the saga ---------------------------------------------------------

    @workflow.run
    async def run(self, input: CheckoutInput) -> CheckoutResult:
        self._ensure_search_attributes()
        self._local_steps = workflow.patched(LOCAL_FORWARD_STEPS)
        self._cancellable_charge = workflow.patched(CANCELLABLE_CHARGE)
        # Messages go out from their own task so a mail outage delays only
        # the mail, never a cancel, ship or deliver.
        notifier = asyncio.create_task(self._send_notifications())
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
            if self._charge_in_doubt:
                await uninterruptible(self._recheck_charge())
            if isinstance(err, asyncio.CancelledError):
                await uninterruptible(self._finish(notifier))
                raise
        await uninterruptible(self._finish(notifier))
        return CheckoutResult(input.order_id, self._status.value, self._failure_reason)

    async def _run_steps(self) -> None:
        order_id = self._input.order_id
        # Each step before the pivot runs to its end even if the workflow is
        # cancelled meanwhile (see finish_then_honour_cancel).
        self._step = "record_order"
        await finish_then_honour_cancel(
            self._forward_step(
                OrderActivities.record_order,
                RecordOrderInput(order_id),
                start_to_close=self._db_step_timeout(),
                retry_policy=policies.DATABASE_STEP,
            )
        )
        self._stop_if_cancel_requested()

        # Registered before the step: a reservation that committed but whose
        # result was lost (worker crash, timeout) must still be released.
        self._compensations.append(_Compensation("release_stock", self._release_stock))
        self._step = "reserve_stock"
        await finish_then_honour_cancel(
            self._forward_step(
                InventoryActivities.reserve,
                StockInput(order_id),
                start_to_close=self._db_step_timeout(),
                retry_policy=policies.DATABASE_STEP,
            )
        )
        self._stop_if_cancel_requested()

        self._compensations.append(_Compensation("refund_payment", self._refund_payment))
        self._step = "charge_payment"
        # The deadline bounds the whole charge, retries included; past it the
        # order fails as payment_failed and the refund above voids anything.
        if self._cancellable_charge:
            await finish_then_honour_cancel(self._charge())
        else:
            await finish_then_honour_cancel(
                self._forward_step(
                    PaymentActivities.charge,
                    ChargeInput(order_id),
                    start_to_close=timedelta(seconds=self._input.provider_timeout_seconds),
                    schedule_to_close=timedelta(seconds=self._input.payment_deadline_seconds),
                    retry_policy=policies.PAYMENT,
                )
            )
        self._stop_if_cancel_requested()

        # The pivot. Money is captured and stock held, so this step only goes
        # forward: a database outage delays the confirmation, never undoes it.
        self._step = "confirm"
        await finish_then_honour_cancel(
            self._forward_step(
                OrderActivities.set_status,
                StatusChange(order_id, OrderStatus.CONFIRMED.value),
                start_to_close=self._db_step_timeout(),
                retry_policy=policies.PIVOT,
            )
        )
        self._set_status(OrderStatus.CONFIRMED)
        self._stop_if_cancel_requested()
        self._notify(NotificationKind.CONFIRMED)

        self._step = "fulfilment"
        await workflow.wait_condition(
            lambda: self._cancel is not None or self._status is OrderStatus.DELIVERED
        )
        self._stop_if_cancel_requested()

    def _db_step_timeout(self) -> timedelta:
        # A local attempt holds the workflow task while it runs, and an update
        # (a cancel) cannot be taken until the task ends: keep that hold short.
        # A slow attempt is cut off and retried after a server timer.
        if self._cancellable_charge:
            return policies.LOCAL_STEP_TIMEOUT
        return policies.DATABASE_STEP_TIMEOUT

    async def _charge(self) -> None:
        """Charge the card as a regular activity, and stop it if a cancel is accepted.

        Regular, not local: one attempt may wait on the provider for the whole
        provider timeout, and a local attempt would hold the workflow task
        that long, so a cancel could not even be accepted. A regular activity
        runs outside the workflow task, which stays free for updates.

        On an accepted cancel the activity is cancelled: the server starts no
        further attempt. ``WAIT_CANCELLATION_COMPLETED`` makes the saga wait
        for the attempt in flight to end (at most one provider timeout), so
        the refund that follows knows what the charge did: a capture that
        completed anyway is refunded, one that never happened is voided.
        (An attempt cut off by its timeout may still be running on a worker;
        the refund closes the payment first, and such a late capture refunds
        itself: see ``PaymentActivities._record_capture``.) Whatever the
        abandoned charge ended with, the cancel decides the end state.
        """
        charge = workflow.start_activity_method(
            PaymentActivities.charge,
            ChargeInput(self._input.order_id),
            start_to_close_timeout=timedelta(seconds=self._input.provider_timeout_seconds),
            schedule_to_close_timeout=timedelta(seconds=self._input.payment_deadline_seconds),
            retry_policy=policies.PAYMENT,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: charge.done() or self._cancel is not None)
        if not charge.done():
            workflow.logger.info(
                "order %s: cancel accepted, stopping the charge", self._input.order_id
            )
            charge.cancel()
        try:
            await charge
        except ActivityError as err:
            cause = err.cause
            # Only a refusal (declined, invalid) says for sure that nothing
            # was captured; anything else may hide a capture whose answer was
            # lost or is still on its way.
            refused = isinstance(cause, ApplicationError) and cause.non_retryable
            self._charge_in_doubt = not refused
            if self._cancel is None:
                raise
            # The cancel came first; _stop_if_cancel_requested settles it.

    async def _forward_step(
        self,
        activity: _StepActivity,
        arg: Any,
        *,
        start_to_close: timedelta,
        retry_policy: RetryPolicy,
        schedule_to_close: timedelta | None = None,
    ) -> None:
        """Run one step before (or at) the pivot, locally when this run may.

        A local activity runs in the worker that runs the workflow task, and
        its result is recorded with that task's completion: a step costs no
        activity round trip through the server (see docs/PERFORMANCE.md for
        the numbers). That is safe because every step is idempotent: a worker
        lost mid-task makes the next worker run the unrecorded steps again,
        which changes nothing (the charge, local before CANCELLABLE_CHARGE,
        is keyed per order; see activities/payments.py). A failed attempt is
        retried after a durable timer, not inside the worker
        (``LOCAL_RETRY_THRESHOLD``): between attempts the workflow task ends,
        so a cancel or ship reaches the workflow during a database outage
        instead of waiting for the step to give up; and an attempt is cut off
        after ``policies.LOCAL_STEP_TIMEOUT`` (see _db_step_timeout).
        """
        if self._local_steps:
            try:
                await workflow.execute_local_activity_method(
                    activity,
                    arg,
                    start_to_close_timeout=start_to_close,
                    schedule_to_close_timeout=schedule_to_close,
                    retry_policy=retry_policy,
                    local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                )
            except ApplicationError as err:
                # A local activity's own failure arrives bare, where a regular
                # activity's comes as the cause of an ActivityError (a local
                # timeout does come wrapped): wrap it the same way, so the
                # saga tells a refused step from a bug in workflow code alike.
                raise ActivityError(
                    f"local activity {self._step} failed",
                    scheduled_event_id=0,
                    started_event_id=0,
                    identity="",
                    activity_type=self._step,
                    activity_id="",
                    retry_state=RetryState.NON_RETRYABLE_FAILURE
                    if err.non_retryable
                    else RetryState.MAXIMUM_ATTEMPTS_REACHED,
                ) from err
        else:
            await workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=start_to_close,
                schedule_to_close_timeout=schedule_to_close,
                retry_policy=retry_policy,
            )

    def _cancellation(self) -> Cancellation | None:
        if self._cancel is None:
            return None
        return Cancellation(self._cancel.reason, self._cancel.requested_by)

    def _stop_if_cancel_requested(self) -> None:
        # Checked between steps: the step in flight finishes first, so the
        # compensation knows for certain what was done.
        if self._cancel is not None:
            raise CancelRequested()

    # --- compensation -----------------------------------------------------

    async def _settle_failure(self, outcome: Outcome) -> None:
        """Undo the steps done so far, record the end state and tell the customer."""
        self._settling = True
        self._failure_reason = outcome.reason
        workflow.logger.info(
            "order %s failing as %s at %s", self._input.order_id, outcome.status, self._step
        )
        # Strictly in reverse (the product contract): the payment is refunded
        # before the stock it paid for is released.
        for compensation in reversed(self._compensations):
            await self._record_event("compensation.started", compensation.step)
            await self._until_done(compensation.step, compensation.run)
            await self._record_event("compensation.finished", compensation.step)
        self._compensations.clear()

        status = outcome.status

        async def record_end(policy: RetryPolicy) -> None:
            await workflow.execute_activity_method(
                OrderActivities.set_status,
                StatusChange(self._input.order_id, status.value, outcome.reason, outcome.detail),
                start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
                retry_policy=policy,
            )

        await self._until_done("set_order_status", record_end)
        self._set_status(status)
        self._notify(_FAILURE_NOTICES[status])

    async def _until_done(self, step: str, run: _PolicyRunner) -> None:
        """Run a compensation until it succeeds; flag the order if that takes long."""
        try:
            await run(policies.COMPENSATION_QUICK)
            return
        except ActivityError as err:
            await self._flag_for_attention(step, err)
        while True:
            try:
                await run(policies.COMPENSATION_PERSISTENT)
                break
            except ActivityError as err:
                # Only a non-retryable failure gets here: the step is refused
                # the same way every time, so no retry fixes it; a person must
                # (see "A compensation that is refused" in docs/ARCHITECTURE.md).
                # It is still tried again later: giving up would keep the
                # customer's money or the stock for good, and a fix deployed
                # meanwhile (or a corrected record) lets the next try through.
                workflow.logger.warning(
                    "order %s: %s failed again (%s); retrying later",
                    self._input.order_id,
                    step,
                    describe(err),
                )
                if workflow.patched(REPORT_STUCK_COMPENSATION):
                    # The cause, on the order's timeline, where the operator
                    # who answers the attention flag looks: one line per
                    # distinct cause (the dedupe key holds it), not per try.
                    await self._record_event("compensation.stuck", f"{step}: {describe(err)}")
                await workflow.sleep(policies.COMPENSATION_PAUSE)
        await self._record_event("compensation.recovered", step)
        # Workflows that recovered before this change left the flag set; their
        # histories hold no marker here, so they replay without the clearing.
        if workflow.patched(CLEAR_ATTENTION_ON_RECOVERY):
            await self._clear_attention(step)

    async def _recheck_charge(self) -> None:
        """Refund once more, after any capture still on its way must have landed.

        A charge that ended without an answer (a provider that never replied,
        an attempt cut off by a cancel or a timeout) may still be captured:
        the request can reach the provider after its caller gave up, or an
        attempt cut off by its timeout may still run on some worker. The
        refund already run closed the payment, so such a capture normally
        refunds itself (``PaymentActivities._record_capture``); but not when
        its answer is lost, or when that self-refund fails. So, once two
        provider timeouts have passed, the refund runs again: idempotent, it
        finds nothing to do, or finds the late capture at the provider (by the
        charge's idempotency key) and gives the money back.
        """
        await workflow.sleep(timedelta(seconds=2 * self._input.provider_timeout_seconds))
        await self._record_event("compensation.rechecked", "refund_payment")
        await self._until_done("refund_payment", self._refund_payment)

    async def _release_stock(self, policy: RetryPolicy) -> None:
        await workflow.execute_activity_method(
            InventoryActivities.release,
            StockInput(self._input.order_id),
            start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
            retry_policy=policy,
        )

    async def _refund_payment(self, policy: RetryPolicy) -> None:
        await workflow.execute_activity_method(
            PaymentActivities.refund,
            RefundInput(self._input.order_id, reason=self._failure_reason or ""),
            start_to_close_timeout=timedelta(seconds=self._input.provider_timeout_seconds),
            retry_policy=policy,
        )

    async def _flag_for_attention(self, step: str, err: ActivityError) -> None:
        self._needs_attention = True
        workflow.upsert_search_attributes([search_attributes.NEEDS_ATTENTION.value_set(True)])
        workflow.logger.error(
            "order %s needs attention: %s keeps failing (%s)",
            self._input.order_id,
            step,
            describe(err),
        )
        try:
            await workflow.execute_activity_method(
                OrderActivities.flag_for_attention,
                AttentionInput(self._input.order_id, step, describe(err)),
                start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
                retry_policy=policies.BOOKKEEPING,
            )
        except ActivityError as flag_err:
            # The search attribute above already shows it; the compensation
            # must carry on regardless.
            workflow.logger.error(
                "order %s: could not flag for attention (%s)",
                self._input.order_id,
                describe(flag_err),
            )

    async def _clear_attention(self, step: str) -> None:
        # A flag left set after the order fixed itself sends operators after
        # orders that need nothing.
        self._needs_attention = False
        workflow.upsert_search_attributes([search_attributes.NEEDS_ATTENTION.value_set(False)])
        workflow.logger.info(
            "order %s no longer needs attention: %s went through", self._input.order_id, step
        )
        try:
            await workflow.execute_activity_method(
                OrderActivities.clear_attention,
                AttentionCleared(self._input.order_id, step),
                start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
                retry_policy=policies.BOOKKEEPING,
            )
        except ActivityError as err:
            # Best effort like the flag itself: the order settles regardless.
            workflow.logger.error(
                "order %s: could not clear the attention flag (%s)",
                self._input.order_id,
                describe(err),
            )

    # --- after the pivot --------------------------------------------------

    @workflow.update
    async def cancel(self, request: CancelRequest) -> OrderState:
        """Accept a cancellation and return the state once the order has settled."""
        self._check_cancellable()
        if self._cancel is None:
            self._cancel = request
        # The saga itself runs the compensation (between steps, or from the
        # fulfilment wait); this handler only waits for the end state.
        await workflow.wait_condition(lambda: self._status in _FAILURE_NOTICES)
        return self.state()

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        self._check_cancellable()

    def _check_cancellable(self) -> None:
        if self._cancel is not None:
            return  # a repeated cancel waits for the same end
        if self._status not in _CANCELLABLE or self._settling:
            raise _refusal(f"the order is {self._status.value} and can no longer be cancelled")
        if self._transition is not None:
            raise _refusal(f"the order is being {self._transition}")

    @workflow.update
    async def outcome(self) -> OrderState:
        """The state once the order has passed its pivot or settled as failed.

        The API sends this with the start (update-with-start) for a client
        that asked to wait (``Prefer: wait``): the answer comes the moment
        the saga knows, not at the next poll of the read model. The status
        only changes here after its activity wrote it to the read model, so
        a reader of the database sees the same state.
        """
        await workflow.wait_condition(lambda: self._status is not OrderStatus.PENDING)
        return self.state()

    @workflow.update
    async def ship(self, request: ShipRequest) -> OrderState:
        """Hand the order to the carrier: record the shipment, commit the stock."""
        self._check_transition(OrderStatus.CONFIRMED, "shipped")
        self._transition = "shipped"
        try:
            if workflow.patched(ATOMIC_SHIP):
                # Shipment, stock commit and status in one transaction, retried
                # until done: never shipped in the database but not here.
                await workflow.execute_activity_method(
                    ShippingActivities.ship,
                    ShipmentInput(self._input.order_id, request.carrier, request.tracking_number),
                    start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
                    retry_policy=policies.SHIPMENT,
                )
            else:
                await self._ship_in_two_steps(request)
        finally:
            self._transition = None
        self._set_status(OrderStatus.SHIPPED)
        self._notify(NotificationKind.SHIPPED)
        return self.state()

    async def _ship_in_two_steps(self, request: ShipRequest) -> None:
        """Shipping before ATOMIC_SHIP, kept so older histories replay."""
        # record_shipment also sets the order row to shipped.
        await workflow.execute_activity_method(
            OrderActivities.record_shipment,
            ShipmentInput(self._input.order_id, request.carrier, request.tracking_number),
            start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
            retry_policy=policies.DATABASE_STEP,
        )
        await workflow.execute_activity_method(
            InventoryActivities.commit,
            StockInput(self._input.order_id),
            start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
            retry_policy=policies.DATABASE_STEP,
        )

    @ship.validator
    def _validate_ship(self, request: ShipRequest) -> None:
        self._check_transition(OrderStatus.CONFIRMED, "shipped")

    @workflow.update
    async def deliver(self) -> OrderState:
        """Record the delivery; the workflow then completes."""
        self._check_transition(OrderStatus.SHIPPED, "delivered")
        self._transition = "delivered"
        try:
            await workflow.execute_activity_method(
                OrderActivities.set_status,
                StatusChange(self._input.order_id, OrderStatus.DELIVERED.value),
                start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
                retry_policy=policies.DATABASE_STEP,
            )
        finally:
            self._transition = None
        self._set_status(OrderStatus.DELIVERED)
        self._notify(NotificationKind.DELIVERED)
        return self.state()

    @deliver.validator
    def _validate_deliver(self) -> None:
        self._check_transition(OrderStatus.SHIPPED, "delivered")

    def _check_transition(self, required: OrderStatus, target: str) -> None:
        # Run by the validator and again by the handler: two updates accepted
        # in the same workflow task both pass their validators.
        if self._transition is not None:
            raise _refusal(f"the order is already being {self._transition}")
        if self._cancel is not None:
            raise _refusal("the order is being cancelled")
        if self._status is not required:
            raise _refusal(f"the order is {self._status.value}, so it cannot be {target}")

    @workflow.query
    def state(self) -> OrderState:
        return OrderState(
            status=self._status.value,
            needs_attention=self._needs_attention,
            failure_reason=self._failure_reason,
            cancel_requested=self._cancel is not None,
        )

    # --- notifications ----------------------------------------------------

    def _notify(self, kind: NotificationKind) -> None:
        self._outbox.append(kind)

    async def _send_notifications(self) -> None:
        """Send queued messages in order, until the outbox is closed and empty."""
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox) or self._outbox_closed)
            if not self._outbox:
                return
            kind = self._outbox.pop(0)
            try:
                await workflow.execute_activity_method(
                    NotificationActivities.send,
                    NotifyInput(self._input.order_id, kind.value),
                    start_to_close_timeout=policies.NOTIFICATION_TIMEOUT,
                    schedule_to_close_timeout=policies.NOTIFICATION_DEADLINE,
                    retry_policy=policies.NOTIFICATION,
                )
            except ActivityError as err:
                # A message that could not be sent never undoes the order.
                workflow.logger.warning(
                    "order %s: %s not sent (%s)", self._input.order_id, kind.value, describe(err)
                )
                await self._record_event("notification.failed", kind.value)

    async def _finish(self, notifier: asyncio.Task[None]) -> None:
        # Handlers first (a cancel returns the settled state), then the last
        # messages; returning earlier would cut both off.
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._outbox_closed = True
        await notifier

    # --- bookkeeping ------------------------------------------------------

    def _set_status(self, status: OrderStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([search_attributes.ORDER_STATUS.value_set(status.value)])

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

    async def _record_event(self, type: str, detail: str) -> None:
        """A timeline line written by the workflow; best effort, never blocks the saga."""
        try:
            await workflow.execute_activity_method(
                OrderActivities.record_event,
                # The dedupe key makes a retried write (and a replayed one) add one line.
                TimelineEvent(self._input.order_id, type, detail, dedupe_key=f"{type}:{detail}"),
                start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
                retry_policy=policies.BOOKKEEPING,
            )
        except ActivityError as err:
            workflow.logger.warning(
                "order %s: timeline event %s not recorded (%s)",
                self._input.order_id,
                type,
                describe(err),
            )


def _refusal(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_TRANSITION, non_retryable=True)
