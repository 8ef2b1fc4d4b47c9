"""The saga's versions: its ``workflow.patched`` ids, oldest first.

Each guards a change to the commands the saga issues, so workflows started
before the change replay as they ran; remove a guard only once no workflow
that ran without it can still be replayed (see docs/RELIABILITY.md).
"""

# - CLEAR_ATTENTION_ON_RECOVERY: a compensation that flagged the order for
#   attention and then succeeded clears the flag again (see
#   Compensations.until_done); before it the flag stayed set for good.
CLEAR_ATTENTION_ON_RECOVERY = "clear-attention-on-recovery"
# - LOCAL_FORWARD_STEPS: record_order, reserve_stock, charge_payment and the
#   confirmation run as local activities (see steps.run_forward); before it
#   each was a regular activity, one server round trip apiece.
#   (Since CANCELLABLE_CHARGE the charge is a regular activity again.)
LOCAL_FORWARD_STEPS = "local-forward-steps"
# - CANCELLABLE_CHARGE: the charge is a regular activity again, and an
#   accepted cancel stops it (no further attempt) instead of waiting for its
#   retries to end; the database steps stay local with a short attempt
#   timeout (policies.LOCAL_STEP_TIMEOUT). Before it a local charge attempt
#   held the workflow task for up to the provider timeout, so a cancel
#   could not even be accepted meanwhile (see steps.run_cancellable).
CANCELLABLE_CHARGE = "cancellable-charge"
# - ATOMIC_SHIP: ship is one activity (ShippingActivities.ship: shipment,
#   stock commit and status in one transaction) retried until it is done;
#   before it record_shipment and commit_stock ran apart, with bounded
#   retries, and a failure between them left the order half-shipped.
ATOMIC_SHIP = "atomic-ship"
# - REPORT_STUCK_COMPENSATION: a compensation refused the same way on every
#   try (a non-retryable failure) writes a ``compensation.stuck`` timeline
#   line with the cause each time the cause changes, besides the attention
#   flag; before it only the worker log said why (see Compensations.until_done).
REPORT_STUCK_COMPENSATION = "report-stuck-compensation"
