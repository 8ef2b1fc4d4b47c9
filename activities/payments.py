"""Payment activities over a PaymentProvider.

Idempotency: the charge key is ``charge-<order id>`` and the refund key
``refund-<order id>``, so however often Temporal retries (or a crashed worker's
attempt is re-run), the provider moves the money at most once.

The card token is read from ``payments`` here and handed only to the
provider. It never goes into a log, a timeline line, an exception or the
workflow history, and it is cleared once the payment has settled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import fault_points
from activities.errors import PAYMENT_DECLINED, PROVIDER_UNAVAILABLE, invalid_order, parse_order_id
from activities.payment_provider import (
    CardDeclined,
    Charge,
    PaymentError,
    PaymentProvider,
    ProviderUnavailable,
)
from activities.timeline import add_event, change_with_line
from core.db import SessionFactory, autocommit
from core.models import Payment, PaymentStatus
from core.money import Money


@dataclass
class ChargeInput:
    order_id: str


@dataclass
class ChargeResult:
    order_id: str
    charge_id: str
    amount: int


@dataclass
class RefundInput:
    order_id: str
    reason: str = ""


@dataclass
class RefundResult:
    order_id: str
    refunded_amount: int  # 0 when nothing had been captured (a void)


def charge_key(order_id: uuid.UUID) -> str:
    return f"charge-{order_id}"


def refund_key(order_id: uuid.UUID) -> str:
    return f"refund-{order_id}"


class PaymentActivities:
    def __init__(self, sessions: SessionFactory, provider: PaymentProvider) -> None:
        self._sessions = sessions
        self._provider = provider

    @activity.defn(name="charge_payment")
    async def charge(self, input: ChargeInput) -> ChargeResult:
        order_id = parse_order_id(input.order_id)
        payment = await self._payment(order_id)
        if payment.status is PaymentStatus.CAPTURED:
            # A retry after a crash that followed the capture: answer from our
            # own record instead of asking the provider again.
            return ChargeResult(input.order_id, payment.charge_id or "", payment.amount)
        if payment.status is PaymentStatus.DECLINED:
            raise _declined()
        if payment.status is not PaymentStatus.PENDING or payment.token is None:
            raise invalid_order(f"payment is {payment.status.value}; nothing to charge")
        if payment.amount == 0:
            # Nothing is owed (a free order). Providers refuse a charge of 0,
            # so we never ask: the payment is settled here, with no charge id.
            return await self._capture_nothing(order_id)
        await fault_points.reached("charge_payment:before")
        try:
            charge = await self._provider.charge(
                token=payment.token,
                amount=payment.amount,
                currency=payment.currency,
                idempotency_key=charge_key(order_id),
            )
        except CardDeclined:
            await self._settle(
                order_id, PaymentStatus.DECLINED, "payment.declined", "card declined"
            )
            raise _declined() from None
        except ProviderUnavailable:
            raise await self._unavailable(order_id, "payment.retry") from None
        except PaymentError as err:
            # Idempotency conflict or an impossible request: no retry fixes it.
            # (`from None`: provider errors are not carried into the history.)
            raise invalid_order(f"payment refused: {type(err).__name__}") from None
        result = await self._record_capture(order_id, charge)
        await fault_points.reached("charge_payment:after")
        return result

    @activity.defn(name="refund_payment")
    async def refund(self, input: RefundInput) -> RefundResult:
        """Give back everything captured, or void when nothing was; idempotent."""
        order_id = parse_order_id(input.order_id)
        await fault_points.reached("refund_payment:before")
        result = await self._refund(order_id)
        await fault_points.reached("refund_payment:after")
        return result

    async def _refund(self, order_id: uuid.UUID) -> RefundResult:
        payment = await self._payment(order_id)
        if payment.status is PaymentStatus.REFUNDED:
            return RefundResult(str(order_id), payment.refunded_amount)
        if payment.status in _NOTHING_HELD:
            return RefundResult(str(order_id), 0)  # the provider kept nothing
        free = payment.charge_id is None and payment.amount == 0
        if payment.status is PaymentStatus.CAPTURED and free:
            # A free order (see charge): nothing was sent to the provider, and
            # nothing goes back to it.
            await self._settle_refund(order_id, payment.refunded_amount, "nothing to refund")
            return RefundResult(str(order_id), 0)
        if payment.status is PaymentStatus.CAPTURED and payment.charge_id:
            charge = Charge(payment.charge_id, payment.amount, payment.currency)
        else:
            # Close the payment first: a charge attempt still in flight (a
            # timed-out attempt on another worker) then cannot record its
            # capture and refunds it itself (see _record_capture). Only after
            # that is "the provider holds no capture" a safe answer.
            await self._claim_void(order_id)
            try:
                found = await self._provider.find_charge(charge_key(order_id))
            except ProviderUnavailable:
                raise await self._unavailable(order_id, "payment.refund_retry") from None
            if found is None:
                await self._settle(
                    order_id, PaymentStatus.VOIDED, "payment.voided", "nothing captured"
                )
                return RefundResult(str(order_id), 0)
            charge = found
        return RefundResult(str(order_id), await self._refund_capture(order_id, charge))

    async def _payment(self, order_id: uuid.UUID) -> Payment:
        async with autocommit(self._sessions) as session:
            payment = await session.get(Payment, order_id)
        if payment is None:
            raise invalid_order(f"order {order_id} has no payment")
        return payment

    async def _record_capture(self, order_id: uuid.UUID, charge: Charge) -> ChargeResult:
        detail = f"{_money(charge)} captured ({charge.id})"
        if await self._capture(order_id, charge.id, detail):
            status: PaymentStatus | None = PaymentStatus.CAPTURED
        else:
            # Not pending any more: captured by an earlier attempt, or
            # closed by a compensation while this call was in flight.
            async with autocommit(self._sessions) as session:
                status = await session.scalar(
                    select(Payment.status).where(Payment.order_id == order_id)
                )
        if status is PaymentStatus.CAPTURED:
            return ChargeResult(str(order_id), charge.id, charge.amount)
        # The compensation closed this payment while our call was in flight:
        # the order will not go ahead, so the money must not stay captured.
        await self._refund_capture(order_id, charge)
        raise invalid_order("payment was voided while the charge was in flight; refunded")

    async def _refund_capture(self, order_id: uuid.UUID, charge: Charge) -> int:
        """Give back what is left of ``charge``; returns the amount refunded."""
        # We decide what is owed, not the provider: a provider refuses a
        # refund of 0 (non-retryable), and a compensation that can never
        # succeed would retry for ever and keep the order's stock held.
        already = await self._refunded_so_far(order_id)
        refundable = charge.amount - already
        if refundable <= 0:
            await self._settle_refund(
                order_id, already, "nothing left to refund", charge_id=charge.id
            )
            return 0
        try:
            refund = await self._provider.refund(
                charge_id=charge.id, amount=refundable, idempotency_key=refund_key(order_id)
            )
        except ProviderUnavailable:
            raise await self._unavailable(order_id, "payment.refund_retry") from None
        except PaymentError as err:
            raise invalid_order(f"refund refused: {type(err).__name__}") from None
        detail = f"{Money(refund.amount, charge.currency).format()} refunded ({refund.id})"
        await self._settle_refund(order_id, already + refund.amount, detail, charge_id=charge.id)
        return refund.amount

    async def _refunded_so_far(self, order_id: uuid.UUID) -> int:
        async with autocommit(self._sessions) as session:
            refunded = await session.scalar(
                select(Payment.refunded_amount).where(Payment.order_id == order_id)
            )
        return refunded or 0

    async def _settle_refund(
        self, order_id: uuid.UUID, refunded: int, detail: str, *, charge_id: str | None = None
    ) -> None:
        values: dict[str, object] = {
            "status": PaymentStatus.REFUNDED,
            "refunded_amount": refunded,
            "token": None,
        }
        if charge_id is not None:
            values["charge_id"] = charge_id
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Payment).where(Payment.order_id == order_id).values(**values)
            )
            await add_event(
                session, order_id, "payment.refunded", detail, dedupe_key="payment.refunded"
            )

    async def _capture_nothing(self, order_id: uuid.UUID) -> ChargeResult:
        if not await self._capture(order_id, None, "nothing to charge"):
            # Closed by a compensation meanwhile: the order will not go ahead.
            raise invalid_order("payment was closed before it could be captured")
        return ChargeResult(str(order_id), "", 0)

    async def _capture(self, order_id: uuid.UUID, charge_id: str | None, detail: str) -> bool:
        """Mark a pending payment captured, with its timeline line; False if it was not pending.

        One statement committing itself: the capture and its line together.
        """
        change = (
            update(Payment)
            .where(Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING)
            .values(status=PaymentStatus.CAPTURED, charge_id=charge_id, token=None)
            .returning(Payment.order_id)
        )
        async with autocommit(self._sessions) as session:
            return await change_with_line(
                session, change, "payment.captured", detail, dedupe_key="payment.captured"
            )

    async def _claim_void(self, order_id: uuid.UUID) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Payment)
                .where(Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING)
                .values(status=PaymentStatus.VOIDED, token=None)
            )

    async def _settle(
        self, order_id: uuid.UUID, status: PaymentStatus, event: str, detail: str
    ) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Payment)
                .where(
                    Payment.order_id == order_id,
                    Payment.status.in_([PaymentStatus.PENDING, status]),
                )
                .values(status=status, token=None)
            )
            await add_event(session, order_id, event, detail, dedupe_key=event)

    async def _unavailable(self, order_id: uuid.UUID, event: str) -> ApplicationError:
        """Note the failed attempt on the timeline and return a retryable error."""
        attempt = activity.info().attempt
        async with self._sessions() as session, session.begin():
            await _retry_event(session, order_id, event, attempt)
        return ApplicationError(
            f"payment provider unavailable (attempt {attempt})", type=PROVIDER_UNAVAILABLE
        )


async def _retry_event(
    session: AsyncSession, order_id: uuid.UUID, event: str, attempt: int
) -> None:
    # Keyed per attempt: each real retry is one line, a replayed write is none.
    await add_event(
        session,
        order_id,
        event,
        f"attempt {attempt}: payment provider unavailable, retrying",
        dedupe_key=f"{event}:{attempt}",
    )


# Payment states in which the provider holds nothing of this order's money.
_NOTHING_HELD = (PaymentStatus.DECLINED, PaymentStatus.NOT_CHARGED)


def _declined() -> ApplicationError:
    return ApplicationError("card declined", type=PAYMENT_DECLINED, non_retryable=True)


def _money(charge: Charge) -> str:
    return Money(charge.amount, charge.currency).format()
