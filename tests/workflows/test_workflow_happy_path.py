"""The saga's happy path on the time-skipping server: checkout, ship, deliver."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.saga_fakes import FakeActivities, checkout_input, start_order
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import ShipRequest


async def test_order_goes_from_checkout_to_delivery(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    fakes = FakeActivities()
    client = time_skipping_env.client
    async with Worker(
        client, task_queue=task_queue, workflows=[OrderWorkflow], activities=fakes.all()
    ):
        handle = await start_order(client, task_queue, checkout_input())
        await fakes.called("send_notification:order_confirmed").wait()
        assert (await handle.query(OrderWorkflow.state)).status == "confirmed"

        shipped = await handle.execute_update(OrderWorkflow.ship, ShipRequest("DHL", "JD0001"))
        assert shipped.status == "shipped"
        delivered = await handle.execute_update(OrderWorkflow.deliver)
        assert delivered.status == "delivered"

        result = await handle.result()
        assert result.status == "delivered"
        assert result.failure_reason is None

    assert fakes.calls == [
        "record_order",
        "reserve_stock",
        "charge_payment",
        "set_order_status:confirmed",
        "send_notification:order_confirmed",
        "ship_order",  # shipment, stock commit and status in one transaction
        "send_notification:order_shipped",
        "set_order_status:delivered",
        "send_notification:order_delivered",
    ]
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.ORDER_STATUS) == "delivered"
    assert described.typed_search_attributes.get(search_attributes.NEEDS_ATTENTION) is False
