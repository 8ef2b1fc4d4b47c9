"""Undoing a saga that did not go through, and flagging an order a person must see.

The saga registers each step's ``Undo`` before the step runs; on failure
``unwind`` runs them strictly in reverse (the product contract: the payment
is refunded before the stock it paid for is released). Each runs until it
succeeds (``until_done``): a few quick tries, then the order is flagged for
attention (database, timeline and the ``NeedsAttention`` search attribute)
and the tries go on slowly, without limit; once one succeeds the flag is
cleared again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.steps import call
from workflows.timeline import record_event

with workflow.unsafe.imports_passed_through():
    from activities.orders import AttentionCleared, AttentionInput, OrderActivities
    from workflows import retry_policies as policies
    from workflows import search_attributes
    from workflows.failures import describe
    from workflows.retry_policies import RunTimeouts
    from workflows.saga_steps import Undo
    from workflows.versions import CLEAR_ATTENTION_ON_RECOVERY, REPORT_STUCK_COMPENSATION

# A compensation, run with the retry policy it is given.
PolicyRunner = Callable[[RetryPolicy], Awaitable[None]]


class Compensations:
    """The undos registered so far, the attention flag, and a charge in doubt."""

    def __init__(self, order_id: str) -> None:
        self._order_id = order_id
        self._registered: list[Undo] = []
        self.needs_attention = False
        # The undo of a charge that ended without a known answer from the
        # provider (timed out, cut off by a cancel, out of retries): see recheck.
        self.in_doubt: Undo | None = None

    def register(self, undo: Undo) -> None:
        self._registered.append(undo)

    def doubt(self, undo: Undo | None) -> None:
        """``undo``'s step ended without a known answer: recheck after settling."""
        self.in_doubt = undo

    def runner(self, undo: Undo, timeouts: RunTimeouts, reason: str) -> PolicyRunner:
        arg = undo.input(self._order_id, reason)
        options = undo.options(timeouts)

        async def run(policy: RetryPolicy) -> None:
            await call(undo.activity, arg, options.retried(policy))

        return run

    async def unwind(self, timeouts: RunTimeouts, reason: str) -> None:
        """Run every registered undo, last first, each until it succeeds."""
        for undo in reversed(self._registered):
            await record_event(self._order_id, "compensation.started", undo.name)
            await self.until_done(undo.name, self.runner(undo, timeouts, reason))
            await record_event(self._order_id, "compensation.finished", undo.name)
        self._registered.clear()

    async def recheck(self, undo: Undo, timeouts: RunTimeouts, reason: str) -> None:
        """Run ``undo`` once more, after any capture still on its way must have landed.

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
        await workflow.sleep(timedelta(seconds=2 * timeouts.provider_seconds))
        await record_event(self._order_id, "compensation.rechecked", undo.name)
        await self.until_done(undo.name, self.runner(undo, timeouts, reason))

    async def until_done(self, step: str, run: PolicyRunner) -> None:
        """Run a compensation until it succeeds; flag the order if that takes long."""
        try:
            await run(policies.COMPENSATION_QUICK)
            return
        except ActivityError as err:
            await self._flag(step, err)
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
                    self._order_id,
                    step,
                    describe(err),
                )
                if workflow.patched(REPORT_STUCK_COMPENSATION):
                    # The cause, on the order's timeline, where the operator
                    # who answers the attention flag looks: one line per
                    # distinct cause (the dedupe key holds it), not per try.
                    await record_event(
                        self._order_id, "compensation.stuck", f"{step}: {describe(err)}"
                    )
                await workflow.sleep(policies.COMPENSATION_PAUSE)
        await record_event(self._order_id, "compensation.recovered", step)
        # Workflows that recovered before this change left the flag set; their
        # histories hold no marker here, so they replay without the clearing.
        if workflow.patched(CLEAR_ATTENTION_ON_RECOVERY):
            await self._clear(step)

    async def _flag(self, step: str, err: ActivityError) -> None:
        self.needs_attention = True
        workflow.upsert_search_attributes([search_attributes.NEEDS_ATTENTION.value_set(True)])
        workflow.logger.error(
            "order %s needs attention: %s keeps failing (%s)", self._order_id, step, describe(err)
        )
        try:
            await call(
                OrderActivities.flag_for_attention,
                AttentionInput(self._order_id, step, describe(err)),
                policies.RECORD,
            )
        except ActivityError as flag_err:
            # The search attribute above already shows it; the compensation
            # must carry on regardless.
            workflow.logger.error(
                "order %s: could not flag for attention (%s)", self._order_id, describe(flag_err)
            )

    async def _clear(self, step: str) -> None:
        # A flag left set after the order fixed itself sends operators after
        # orders that need nothing.
        self.needs_attention = False
        workflow.upsert_search_attributes([search_attributes.NEEDS_ATTENTION.value_set(False)])
        workflow.logger.info(
            "order %s no longer needs attention: %s went through", self._order_id, step
        )
        try:
            await call(
                OrderActivities.clear_attention,
                AttentionCleared(self._order_id, step),
                policies.RECORD,
            )
        except ActivityError as err:
            # Best effort like the flag itself: the order settles regardless.
            workflow.logger.error(
                "order %s: could not clear the attention flag (%s)", self._order_id, describe(err)
            )
