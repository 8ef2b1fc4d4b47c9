"""The built-in payment provider: a simulator with its own books in PostgreSQL.

It behaves like a real provider so the saga's failure handling can be proven
without one:

- every charge and refund carries an idempotency key; the same key returns
  the first result (a decline included), the same key with other parameters
  is an ``IdempotencyConflict``;
- test tokens drive it: ``tok_visa`` is captured, ``tok_chargeDeclined`` (and
  any unknown token) is declined, ``tok_flaky`` fails transiently twice per
  key and then succeeds, ``tok_timeout`` does not answer within the timeout;
- the ``outage`` switch makes every call fail transiently.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from activities.payment_provider import (
    CardDeclined,
    Charge,
    IdempotencyConflict,
    InvalidRequest,
    ProviderUnavailable,
    Refund,
)
from core.db import SessionFactory, autocommit
from core.models import SimulatorAttempt, SimulatorCharge, SimulatorRefund, SimulatorSwitch

TOK_VISA = "tok_visa"
TOK_DECLINED = "tok_chargeDeclined"
TOK_FLAKY = "tok_flaky"
TOK_TIMEOUT = "tok_timeout"

FLAKY_FAILURES = 2  # transient failures per key before tok_flaky succeeds
OUTAGE = "outage"

CAPTURED = "captured"
DECLINED = "declined"


class PaymentSimulator:
    name = "simulator"

    def __init__(self, sessions: SessionFactory, *, timeout_seconds: float) -> None:
        self._sessions = sessions
        self._timeout = timeout_seconds

    async def set_outage(self, enabled: bool) -> None:
        """Turn the provider-wide outage on or off (shared by every worker)."""
        stmt = insert(SimulatorSwitch).values(name=OUTAGE, enabled=enabled)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={"enabled": enabled})
        async with self._sessions() as session, session.begin():
            await session.execute(stmt)

    async def charge(
        self, *, token: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        if amount <= 0:
            # Real providers have a minimum charge; a free order never gets here.
            raise InvalidRequest("charge amount must be positive")
        # One session for both reads: a charge is on every order's path.
        async with autocommit(self._sessions) as session:
            await _refuse_during_outage(session)
            known = await session.scalar(
                select(SimulatorCharge).where(SimulatorCharge.idempotency_key == idempotency_key)
            )
        if known is not None:
            return _replay_charge(known, amount, currency)
        if token == TOK_TIMEOUT:
            # Answer only after the caller has given up, and keep no record,
            # like a provider whose response was lost on the way back.
            await asyncio.sleep(self._timeout * 2 + 0.1)
            raise ProviderUnavailable(f"no answer within {self._timeout:g}s")
        if token == TOK_FLAKY and await self._fail_transiently(idempotency_key):
            raise ProviderUnavailable("temporary provider error")
        status = CAPTURED if token in (TOK_VISA, TOK_FLAKY) else DECLINED
        # Two attempts with the same key may race: the loser reads the
        # winner's row and answers with it.
        stmt = (
            insert(SimulatorCharge)
            .values(
                id=f"ch_sim_{uuid.uuid4().hex[:24]}",
                idempotency_key=idempotency_key,
                amount=amount,
                currency=currency,
                status=status,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(SimulatorCharge)
        )
        async with autocommit(self._sessions) as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
        if row is None:
            row = await self._charge_by_key(idempotency_key)
            assert row is not None  # it conflicted, so it exists
        return _replay_charge(row, amount, currency)

    async def refund(self, *, charge_id: str, amount: int, idempotency_key: str) -> Refund:
        await self._refuse_during_outage()
        async with self._sessions() as session, session.begin():
            known = await session.scalar(
                select(SimulatorRefund).where(SimulatorRefund.idempotency_key == idempotency_key)
            )
            if known is not None:
                return _replay_refund(known, charge_id, amount)
            # Lock the charge so two refunds under different keys cannot both
            # pass the "not more than was captured" check.
            charge = await session.scalar(
                select(SimulatorCharge).where(SimulatorCharge.id == charge_id).with_for_update()
            )
            if charge is None or charge.status != CAPTURED:
                raise InvalidRequest("no captured charge with that id")
            refunded = await session.scalar(
                select(func.coalesce(func.sum(SimulatorRefund.amount), 0)).where(
                    SimulatorRefund.charge_id == charge_id
                )
            )
            if amount <= 0 or (refunded or 0) + amount > charge.amount:
                raise InvalidRequest("refund amount exceeds what is left of the charge")
            stmt = (
                insert(SimulatorRefund)
                .values(
                    id=f"re_sim_{uuid.uuid4().hex[:24]}",
                    idempotency_key=idempotency_key,
                    charge_id=charge_id,
                    amount=amount,
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(SimulatorRefund.id)
            )
            refund_id = (await session.execute(stmt)).scalar_one_or_none()
        if refund_id is None:
            return await self._replayed_refund(idempotency_key, charge_id, amount)
        return Refund(id=refund_id, charge_id=charge_id, amount=amount)

    async def find_charge(self, idempotency_key: str) -> Charge | None:
        await self._refuse_during_outage()
        row = await self._charge_by_key(idempotency_key)
        if row is None or row.status != CAPTURED:
            return None
        return Charge(id=row.id, amount=row.amount, currency=row.currency)

    async def _refuse_during_outage(self) -> None:
        async with autocommit(self._sessions) as session:
            await _refuse_during_outage(session)

    async def _charge_by_key(self, key: str) -> SimulatorCharge | None:
        async with autocommit(self._sessions) as session:
            return await session.scalar(
                select(SimulatorCharge).where(SimulatorCharge.idempotency_key == key)
            )

    async def _replayed_refund(self, key: str, charge_id: str, amount: int) -> Refund:
        async with autocommit(self._sessions) as session:
            known = await session.scalar(
                select(SimulatorRefund).where(SimulatorRefund.idempotency_key == key)
            )
        assert known is not None  # it conflicted, so it exists
        return _replay_refund(known, charge_id, amount)

    async def _fail_transiently(self, key: str) -> bool:
        """Count one more transient failure for ``key`` unless it has had its share."""
        # One statement, so concurrent attempts cannot both take the last failure.
        stmt = (
            insert(SimulatorAttempt)
            .values(idempotency_key=key, transient_failures=1)
            .on_conflict_do_update(
                index_elements=["idempotency_key"],
                set_={"transient_failures": SimulatorAttempt.transient_failures + 1},
                where=SimulatorAttempt.transient_failures < FLAKY_FAILURES,
            )
            .returning(SimulatorAttempt.transient_failures)
        )
        async with self._sessions() as session, session.begin():
            return (await session.execute(stmt)).scalar_one_or_none() is not None


def _replay_charge(row: SimulatorCharge, amount: int, currency: str) -> Charge:
    if (row.amount, row.currency) != (amount, currency):
        raise IdempotencyConflict("idempotency key reused with a different amount")
    if row.status != CAPTURED:
        raise CardDeclined("card declined")
    return Charge(id=row.id, amount=row.amount, currency=row.currency)


def _replay_refund(row: SimulatorRefund, charge_id: str, amount: int) -> Refund:
    if (row.charge_id, row.amount) != (charge_id, amount):
        raise IdempotencyConflict("idempotency key reused with a different refund")
    return Refund(id=row.id, charge_id=row.charge_id, amount=row.amount)


async def _refuse_during_outage(session: AsyncSession) -> None:
    down = await session.scalar(
        select(SimulatorSwitch.enabled).where(SimulatorSwitch.name == OUTAGE)
    )
    if down:
        raise ProviderUnavailable("payment provider outage")
