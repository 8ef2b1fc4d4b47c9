"""Payment activities over the simulator, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import INVALID_ORDER, PAYMENT_DECLINED, PROVIDER_UNAVAILABLE
from activities.payment_provider import Charge, Refund
from activities.payment_simulator import PaymentSimulator
from activities.payments import ChargeInput, PaymentActivities, RefundInput, charge_key
from core.db import SessionFactory
from core.models import OrderEvent, Payment, PaymentStatus, SimulatorCharge, SimulatorRefund
from tests.support.factories import create_product
from tests.support.order_factory import create_order
from tests.support.polling import poll_until


class CountingProvider:
    """The simulator, counting calls, optionally holding charges at a gate."""

    name = "simulator"

    def __init__(self, inner: PaymentSimulator) -> None:
        self.inner = inner
        self.charges = 0
        self.gate: asyncio.Event | None = None
        self.gate_before_provider = False

    async def charge(
        self, *, token: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        self.charges += 1
        # The gate holds the call "on the wire": before it reaches the
        # provider, or after the provider booked it but before the answer.
        if self.gate is not None and self.gate_before_provider:
            await self.gate.wait()
        result = await self.inner.charge(
            token=token, amount=amount, currency=currency, idempotency_key=idempotency_key
        )
        if self.gate is not None and not self.gate_before_provider:
            await self.gate.wait()
        return result

    async def refund(self, *, charge_id: str, amount: int, idempotency_key: str) -> Refund:
        return await self.inner.refund(
            charge_id=charge_id, amount=amount, idempotency_key=idempotency_key
        )

    async def find_charge(self, idempotency_key: str) -> Charge | None:
        return await self.inner.find_charge(idempotency_key)


@pytest.fixture
def provider(sessions: SessionFactory) -> CountingProvider:
    return CountingProvider(PaymentSimulator(sessions, timeout_seconds=0.05))


def _env(attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


async def _payment(sessions: SessionFactory, order_id: uuid.UUID) -> Payment:
    async with sessions() as session:
        return await session.get_one(Payment, order_id)


async def _events(sessions: SessionFactory, order_id: uuid.UUID) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OrderEvent.type, OrderEvent.detail)
            .where(OrderEvent.order_id == order_id)
            .order_by(OrderEvent.id)
        )
        return [(t, d) for t, d in rows.all()]


async def _count(sessions: SessionFactory, model: type[SimulatorCharge | SimulatorRefund]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_charge_captures_once_and_a_retry_does_not_call_again(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    order = await create_order(sessions)
    acts = PaymentActivities(sessions, provider)

    first = await _env().run(acts.charge, ChargeInput(str(order.id)))
    retry = await _env(attempt=2).run(acts.charge, ChargeInput(str(order.id)))

    assert first == retry
    assert first.amount == order.total
    assert provider.charges == 1
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.charge_id, payment.token) == (
        PaymentStatus.CAPTURED,
        first.charge_id,
        None,
    )
    assert [t for t, _ in await _events(sessions, order.id)] == ["payment.captured"]


async def test_decline_is_final_and_remembered(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    order = await create_order(sessions, token="tok_chargeDeclined")
    acts = PaymentActivities(sessions, provider)

    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as caught:
            await _env(attempt).run(acts.charge, ChargeInput(str(order.id)))
        assert caught.value.type == PAYMENT_DECLINED
        assert caught.value.non_retryable

    assert provider.charges == 1
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.token) == (PaymentStatus.DECLINED, None)


async def test_flaky_provider_is_retryable_with_one_timeline_line_per_attempt(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    order = await create_order(sessions, token="tok_flaky")
    acts = PaymentActivities(sessions, provider)

    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as caught:
            await _env(attempt).run(acts.charge, ChargeInput(str(order.id)))
        assert caught.value.type == PROVIDER_UNAVAILABLE
        assert not caught.value.non_retryable
    result = await _env(3).run(acts.charge, ChargeInput(str(order.id)))

    assert result.amount == order.total
    types = [t for t, _ in await _events(sessions, order.id)]
    assert types == ["payment.retry", "payment.retry", "payment.captured"]


async def test_timeout_token_becomes_a_retryable_provider_error(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    order = await create_order(sessions, token="tok_timeout")
    with pytest.raises(ApplicationError) as caught:
        await _env().run(PaymentActivities(sessions, provider).charge, ChargeInput(str(order.id)))
    assert caught.value.type == PROVIDER_UNAVAILABLE
    assert (await _payment(sessions, order.id)).status is PaymentStatus.PENDING
    assert await _count(sessions, SimulatorCharge) == 0


async def test_provider_outage_is_retryable(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    order = await create_order(sessions)
    await provider.inner.set_outage(True)
    with pytest.raises(ApplicationError) as caught:
        await _env().run(PaymentActivities(sessions, provider).charge, ChargeInput(str(order.id)))
    assert caught.value.type == PROVIDER_UNAVAILABLE
    assert not caught.value.non_retryable


async def test_refund_after_capture_refunds_the_full_amount_once(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    order = await create_order(sessions)
    acts = PaymentActivities(sessions, provider)
    await _env().run(acts.charge, ChargeInput(str(order.id)))

    first = await _env().run(acts.refund, RefundInput(str(order.id), reason="cancelled"))
    again = await _env(2).run(acts.refund, RefundInput(str(order.id), reason="cancelled"))

    assert first.refunded_amount == again.refunded_amount == order.total
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, order.total)
    assert await _count(sessions, SimulatorRefund) == 1


async def test_refund_with_nothing_captured_voids(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    order = await create_order(sessions)
    acts = PaymentActivities(sessions, provider)

    first = await _env().run(acts.refund, RefundInput(str(order.id)))
    again = await _env(2).run(acts.refund, RefundInput(str(order.id)))

    assert first.refunded_amount == again.refunded_amount == 0
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.refunded_amount, payment.token) == (
        PaymentStatus.VOIDED,
        0,
        None,
    )
    # A charge after the void must not go through.
    with pytest.raises(ApplicationError) as caught:
        await _env().run(acts.charge, ChargeInput(str(order.id)))
    assert caught.value.type == INVALID_ORDER
    assert provider.charges == 0


async def test_refund_finds_a_capture_the_charge_activity_never_recorded(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    # The worker crashed after the provider captured but before the payments
    # row was updated: the row still says pending.
    order = await create_order(sessions)
    await provider.inner.charge(
        token="tok_visa", amount=order.total, currency="USD", idempotency_key=charge_key(order.id)
    )

    result = await _env().run(
        PaymentActivities(sessions, provider).refund, RefundInput(str(order.id))
    )

    assert result.refunded_amount == order.total
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, order.total)


@pytest.mark.parametrize(
    ("booked_before_refund", "refund_sees"),
    [(True, "the capture"), (False, "nothing")],
)
async def test_a_charge_in_flight_during_the_compensation_never_keeps_the_money(
    sessions: SessionFactory,
    provider: CountingProvider,
    booked_before_refund: bool,
    refund_sees: str,
) -> None:
    order = await create_order(sessions)
    acts = PaymentActivities(sessions, provider)
    provider.gate = asyncio.Event()
    provider.gate_before_provider = not booked_before_refund
    # A timed-out charge attempt still running on some worker...
    zombie = asyncio.create_task(_env().run(acts.charge, ChargeInput(str(order.id))))

    async def charged() -> bool:
        return provider.charges > 0

    await poll_until(charged, "the zombie charge reaching the provider", interval=0.01)
    # ...while the compensation runs: it finds the capture when the provider
    # booked it already, else it voids and the late capture is the charge
    # activity's to undo.
    compensation = await _env().run(acts.refund, RefundInput(str(order.id)))
    provider.gate.set()
    with pytest.raises(ApplicationError) as caught:
        await zombie

    assert caught.value.type == INVALID_ORDER
    assert compensation.refunded_amount == (order.total if refund_sees == "the capture" else 0)
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, order.total)
    assert await _count(sessions, SimulatorCharge) == 1
    assert await _count(sessions, SimulatorRefund) == 1


async def test_missing_payment_row_is_an_invalid_order(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    with pytest.raises(ApplicationError) as caught:
        await _env().run(
            PaymentActivities(sessions, provider).charge, ChargeInput(str(uuid.uuid4()))
        )
    assert caught.value.type == INVALID_ORDER


async def test_card_token_never_reaches_logs_timeline_or_errors(
    sessions: SessionFactory, provider: CountingProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[ApplicationError] = []
    orders = []
    for token in ("tok_visa", "tok_chargeDeclined", "tok_flaky", "tok_timeout"):
        order = await create_order(sessions, token=token)
        orders.append(order)
        acts = PaymentActivities(sessions, provider)
        for attempt in (1, 2, 3):
            try:
                await _env(attempt).run(acts.charge, ChargeInput(str(order.id)))
            except ApplicationError as err:
                errors.append(err)
        await _env().run(acts.refund, RefundInput(str(order.id)))

    assert errors, "the declined, flaky and timeout cards must have failed at least once"
    texts = [caplog.text]
    texts += [f"{e} {e.details} {e.__cause__}" for e in errors]
    for order in orders:
        texts += [f"{t} {d}" for t, d in await _events(sessions, order.id)]
        assert (await _payment(sessions, order.id)).token is None
    assert not [t for t in texts if "tok_" in t]


# --- nothing owed: a free order (issue 10, item 1) ----------------------------


async def test_a_free_order_is_captured_and_refunded_without_asking_the_provider(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    # A provider refuses a refund of 0 for good; the compensation used to ask
    # for one, fail non-retryably, and retry for ever with the stock held.
    free = await create_product(sessions, price=0)
    order = await create_order(sessions, lines=[(free, 1)])
    acts = PaymentActivities(sessions, provider)

    charged = await _env().run(acts.charge, ChargeInput(str(order.id)))
    charged_again = await _env(2).run(acts.charge, ChargeInput(str(order.id)))
    captured = await _payment(sessions, order.id)
    refunded = await _env().run(acts.refund, RefundInput(str(order.id), reason="cancelled"))
    refunded_again = await _env(2).run(acts.refund, RefundInput(str(order.id)))

    assert charged.amount == charged_again.amount == 0
    assert (captured.status, captured.token) == (PaymentStatus.CAPTURED, None)
    assert refunded.refunded_amount == refunded_again.refunded_amount == 0
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.refunded_amount, payment.token) == (
        PaymentStatus.REFUNDED,
        0,
        None,
    )
    assert provider.charges == 0
    assert await _count(sessions, SimulatorCharge) == 0
    assert await _count(sessions, SimulatorRefund) == 0
    types = [event for event, _ in await _events(sessions, order.id)]
    assert types.count("payment.captured") == types.count("payment.refunded") == 1


async def test_a_zero_capture_the_provider_already_holds_is_settled_without_a_refund(
    sessions: SessionFactory, provider: CountingProvider
) -> None:
    # A capture of 0 made before free orders skipped the provider (or by a
    # lenient provider): the void path finds it, and there is nothing to give back.
    free = await create_product(sessions, price=0)
    order = await create_order(sessions, lines=[(free, 1)])
    async with sessions() as session, session.begin():
        session.add(
            SimulatorCharge(
                id="ch_sim_zero",
                idempotency_key=charge_key(order.id),
                amount=0,
                currency="USD",
                status="captured",
            )
        )
    acts = PaymentActivities(sessions, provider)

    result = await _env().run(acts.refund, RefundInput(str(order.id)))

    assert result.refunded_amount == 0
    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.refunded_amount, payment.charge_id, payment.token) == (
        PaymentStatus.REFUNDED,
        0,
        "ch_sim_zero",
        None,
    )
    assert await _count(sessions, SimulatorRefund) == 0
