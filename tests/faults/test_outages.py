"""Servers going away and coming back, a payment provider in trouble, and a race for stock.

Every case ends with the audit (temporal check on) clean and no order charged twice.
"""

from __future__ import annotations

import pytest

from tests.faults import scenarios
from tests.faults.stack import FaultStack


async def test_orders_complete_across_a_temporal_server_restart(faults: FaultStack) -> None:
    restarts = faults.temporal_server.restarts

    assert await scenarios.restart_temporal(faults, orders=4) == []
    assert faults.temporal_server.restarts == restarts + 1


async def test_activities_retry_through_a_postgres_outage(faults: FaultStack) -> None:
    stops = faults.postgres.stops

    assert await scenarios.stop_postgres(faults, orders=6) == []
    assert faults.postgres.stops == stops + 1


async def test_payment_outage_and_bad_cards_never_charge_twice(faults: FaultStack) -> None:
    assert await scenarios.payment_trouble(faults, orders_per_token=1) == []


async def test_customers_racing_for_the_last_units_never_oversell(faults: FaultStack) -> None:
    assert await scenarios.race_for_last_units(faults, products=2, stock=2, buyers=5) == []


async def test_a_payment_outage_longer_than_the_deadline_fails_orders_cleanly(
    faults: FaultStack,
) -> None:
    # In the fast set (CI): the orders that run out of time must end with
    # their money refunded and their stock back, never half-done.
    violations = await scenarios.payment_trouble(faults, outage_seconds=12.0, orders_per_token=1)

    assert violations == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
async def test_many_customers_race_for_many_products(faults: FaultStack, seed: int) -> None:
    assert (
        await scenarios.race_for_last_units(faults, products=4, stock=3, buyers=8, seed=seed) == []
    )
