"""The saga's notification outbox: messages queued in order, sent from their own task.

Sending from a task of its own means a mail outage delays only the mail,
never a cancel, ship or deliver; and a message that cannot be sent never
undoes the order.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.steps import call
from workflows.timeline import record_event

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities, NotificationKind, NotifyInput
    from workflows import retry_policies as policies
    from workflows.failures import describe


class Outbox:
    """Messages to the customer, sent in the order they were queued."""

    def __init__(self, order_id: str) -> None:
        self._order_id = order_id
        self._queued: list[NotificationKind] = []
        self._closed = False

    def notify(self, kind: NotificationKind) -> None:
        self._queued.append(kind)

    def close(self) -> None:
        """No more messages: ``send_all`` returns once the queue is empty."""
        self._closed = True

    async def send_all(self) -> None:
        """Send queued messages in order, until the outbox is closed and empty."""
        while True:
            await workflow.wait_condition(lambda: bool(self._queued) or self._closed)
            if not self._queued:
                return
            kind = self._queued.pop(0)
            try:
                await call(
                    NotificationActivities.send,
                    NotifyInput(self._order_id, kind.value),
                    policies.NOTIFY,
                )
            except ActivityError as err:
                # A message that could not be sent never undoes the order.
                workflow.logger.warning(
                    "order %s: %s not sent (%s)", self._order_id, kind.value, describe(err)
                )
                await record_event(self._order_id, "notification.failed", kind.value)
