"""The updates and the query of the checkout saga: what may change, and when.

``OrderWorkflow`` (workflows/checkout.py) inherits these handlers and runs
the saga; this base class holds the state they read and change. Whether an
update is taken comes from workflows/order_rules.py, the rules the API
refuses from as well. Validators refuse at once with an ``ApplicationError``
of type ``INVALID_TRANSITION``, and each handler checks again: two updates
accepted in the same workflow task both pass their validators.

Workflow code, imported inside the sandbox like ``checkout.py``.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.compensation import Compensations
from workflows.outbox import Outbox
from workflows.steps import call

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities, StockInput
    from activities.notifications import NotificationKind
    from activities.orders import OrderActivities, ShipmentInput, StatusChange
    from activities.shipping import ShippingActivities
    from core.order_status import OrderStatus
    from workflows import order_rules, search_attributes
    from workflows import retry_policies as policies
    from workflows.checkout_io import CancelRequest, CheckoutInput, OrderState, ShipRequest
    from workflows.order_rules import Action
    from workflows.versions import ATOMIC_SHIP

# The ApplicationError type of an update refused because the order is in the
# wrong state (the API answers 409).
INVALID_TRANSITION = "InvalidOrderTransition"


class OrderUpdates:
    """Cancel, outcome, ship and deliver, and the ``state`` query, of one order."""

    # Set by OrderWorkflow.__init__.
    _input: CheckoutInput
    _status: OrderStatus
    _failure_reason: str | None
    _cancel: CancelRequest | None
    # Set once the saga has chosen a failure end: no new cancel is taken.
    _settling: bool
    # A ship/deliver in progress: guards against two updates racing (both
    # validators can pass in the same workflow task).
    _transition: Action | None
    _undo: Compensations
    _outbox: Outbox

    @workflow.update
    async def cancel(self, request: CancelRequest) -> OrderState:
        """Accept a cancellation and return the state once the order has settled."""
        self._refuse_unless(Action.CANCEL)
        if self._cancel is None:
            self._cancel = request
        # The saga itself runs the compensation (between steps, or from the
        # fulfilment wait); this handler only waits for the end state.
        await workflow.wait_condition(lambda: self._status in order_rules.FAILURE_ENDS)
        return self.state()

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        self._refuse_unless(Action.CANCEL)

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
        self._refuse_unless(Action.SHIP)
        self._transition = Action.SHIP
        shipment = ShipmentInput(self._input.order_id, request.carrier, request.tracking_number)
        try:
            if workflow.patched(ATOMIC_SHIP):
                # Shipment, stock commit and status in one transaction, retried
                # until done: never shipped in the database but not here.
                await call(ShippingActivities.ship, shipment, policies.SHIP)
            else:
                # Before ATOMIC_SHIP, kept so older histories replay;
                # record_shipment also sets the order row to shipped.
                await call(OrderActivities.record_shipment, shipment, policies.DATABASE)
                stock = StockInput(self._input.order_id)
                await call(InventoryActivities.commit, stock, policies.DATABASE)
        finally:
            self._transition = None
        self._set_status(OrderStatus.SHIPPED)
        self._outbox.notify(NotificationKind.SHIPPED)
        return self.state()

    @ship.validator
    def _validate_ship(self, request: ShipRequest) -> None:
        self._refuse_unless(Action.SHIP)

    @workflow.update
    async def deliver(self) -> OrderState:
        """Record the delivery; the workflow then completes."""
        self._refuse_unless(Action.DELIVER)
        self._transition = Action.DELIVER
        try:
            delivered = StatusChange(self._input.order_id, OrderStatus.DELIVERED.value)
            await call(OrderActivities.set_status, delivered, policies.DATABASE)
        finally:
            self._transition = None
        self._set_status(OrderStatus.DELIVERED)
        self._outbox.notify(NotificationKind.DELIVERED)
        return self.state()

    @deliver.validator
    def _validate_deliver(self) -> None:
        self._refuse_unless(Action.DELIVER)

    def _refuse_unless(self, action: Action) -> None:
        # Run by the validator and again by the handler: two updates accepted
        # in the same workflow task both pass their validators.
        why = order_rules.refusal(
            action,
            self._status,
            cancelling=self._cancel is not None,
            settling=self._settling,
            in_progress=self._transition,
        )
        if why is not None:
            raise ApplicationError(why, type=INVALID_TRANSITION, non_retryable=True)

    @workflow.query
    def state(self) -> OrderState:
        return OrderState(
            status=self._status.value,
            needs_attention=self._undo.needs_attention,
            failure_reason=self._failure_reason,
            cancel_requested=self._cancel is not None,
        )

    def _set_status(self, status: OrderStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([search_attributes.ORDER_STATUS.value_set(status.value)])
