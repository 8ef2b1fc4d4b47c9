"""The payment simulator behaves like a real provider, books kept in PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from activities.payment_provider import (
    CardDeclined,
    IdempotencyConflict,
    InvalidRequest,
    ProviderUnavailable,
)
from activities.payment_simulator import PaymentSimulator
from core.db import SessionFactory
from core.models import SimulatorCharge, SimulatorRefund


@pytest.fixture
def simulator(sessions: SessionFactory) -> PaymentSimulator:
    return PaymentSimulator(sessions, timeout_seconds=0.05)


async def _count(sessions: SessionFactory, model: type[SimulatorCharge | SimulatorRefund]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_same_key_returns_the_first_charge(
    simulator: PaymentSimulator, sessions: SessionFactory
) -> None:
    first = await simulator.charge(
        token="tok_visa", amount=1250, currency="USD", idempotency_key="k"
    )
    again = await simulator.charge(
        token="tok_visa", amount=1250, currency="USD", idempotency_key="k"
    )

    assert first == again
    assert (first.amount, first.currency) == (1250, "USD")
    assert await _count(sessions, SimulatorCharge) == 1
    assert await simulator.find_charge("k") == first
    assert await simulator.find_charge("other") is None


async def test_same_key_with_another_amount_is_a_conflict(simulator: PaymentSimulator) -> None:
    await simulator.charge(token="tok_visa", amount=1250, currency="USD", idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        await simulator.charge(token="tok_visa", amount=999, currency="USD", idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        await simulator.charge(token="tok_visa", amount=1250, currency="EUR", idempotency_key="k")


async def test_concurrent_charges_with_one_key_capture_once(
    simulator: PaymentSimulator, sessions: SessionFactory
) -> None:
    charges = await asyncio.gather(
        *(
            simulator.charge(token="tok_visa", amount=500, currency="USD", idempotency_key="race")
            for _ in range(5)
        )
    )
    assert len({c.id for c in charges}) == 1
    assert await _count(sessions, SimulatorCharge) == 1


@pytest.mark.parametrize("token", ["tok_chargeDeclined", "tok_unknown"])
async def test_decline_is_remembered_per_key(
    simulator: PaymentSimulator, sessions: SessionFactory, token: str
) -> None:
    for _ in range(2):
        with pytest.raises(CardDeclined) as caught:
            await simulator.charge(token=token, amount=100, currency="USD", idempotency_key="d")
        assert token not in str(caught.value)
    # Even a good card under the same key gets the remembered answer.
    with pytest.raises(CardDeclined):
        await simulator.charge(token="tok_visa", amount=100, currency="USD", idempotency_key="d")
    assert await _count(sessions, SimulatorCharge) == 1
    assert await simulator.find_charge("d") is None


async def test_flaky_fails_twice_per_key_then_succeeds(simulator: PaymentSimulator) -> None:
    for key in ("f1", "f2"):
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                await simulator.charge(
                    token="tok_flaky", amount=100, currency="USD", idempotency_key=key
                )
        charge = await simulator.charge(
            token="tok_flaky", amount=100, currency="USD", idempotency_key=key
        )
        again = await simulator.charge(
            token="tok_flaky", amount=100, currency="USD", idempotency_key=key
        )
        assert charge == again


async def test_timeout_token_never_answers_in_time_and_records_nothing(
    simulator: PaymentSimulator, sessions: SessionFactory
) -> None:
    call = simulator.charge(token="tok_timeout", amount=100, currency="USD", idempotency_key="t")
    # The contract is "no answer within the provider timeout" (0.05 s here).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call, timeout=0.05)
    # Left to finish, the call gives up as a transient failure.
    with pytest.raises(ProviderUnavailable):
        await simulator.charge(token="tok_timeout", amount=100, currency="USD", idempotency_key="t")
    assert await _count(sessions, SimulatorCharge) == 0


async def test_outage_switch_fails_every_call_until_turned_off(
    simulator: PaymentSimulator,
) -> None:
    charge = await simulator.charge(
        token="tok_visa", amount=100, currency="USD", idempotency_key="o"
    )
    await simulator.set_outage(True)
    with pytest.raises(ProviderUnavailable):
        await simulator.charge(token="tok_visa", amount=100, currency="USD", idempotency_key="o")
    with pytest.raises(ProviderUnavailable):
        await simulator.find_charge("o")
    with pytest.raises(ProviderUnavailable):
        await simulator.refund(charge_id=charge.id, amount=100, idempotency_key="r")

    await simulator.set_outage(False)
    assert (
        await simulator.refund(charge_id=charge.id, amount=100, idempotency_key="r")
    ).amount == 100


async def test_refund_is_idempotent_and_bounded_by_the_capture(
    simulator: PaymentSimulator, sessions: SessionFactory
) -> None:
    charge = await simulator.charge(
        token="tok_visa", amount=1000, currency="USD", idempotency_key="c"
    )

    first = await simulator.refund(charge_id=charge.id, amount=600, idempotency_key="r1")
    again = await simulator.refund(charge_id=charge.id, amount=600, idempotency_key="r1")
    assert first == again

    with pytest.raises(IdempotencyConflict):
        await simulator.refund(charge_id=charge.id, amount=300, idempotency_key="r1")
    with pytest.raises(InvalidRequest):
        await simulator.refund(charge_id=charge.id, amount=401, idempotency_key="r2")
    with pytest.raises(InvalidRequest):
        await simulator.refund(charge_id="ch_missing", amount=1, idempotency_key="r3")
    assert await _count(sessions, SimulatorRefund) == 1


async def test_a_charge_or_refund_of_nothing_is_refused_as_a_real_provider_would(
    simulator: PaymentSimulator, sessions: SessionFactory
) -> None:
    # The payment activities decide what is owed; the simulator stays strict
    # so a test cannot pass by leaning on a lenient provider.
    with pytest.raises(InvalidRequest):
        await simulator.charge(token="tok_visa", amount=0, currency="USD", idempotency_key="z")
    charge = await simulator.charge(
        token="tok_visa", amount=100, currency="USD", idempotency_key="c"
    )
    with pytest.raises(InvalidRequest):
        await simulator.refund(charge_id=charge.id, amount=0, idempotency_key="r")
    assert await _count(sessions, SimulatorCharge) == 1
    assert await _count(sessions, SimulatorRefund) == 0
