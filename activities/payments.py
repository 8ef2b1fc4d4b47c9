"""Payment activities over a PaymentProvider.

CONTRACT SKELETON: signatures are the interface the workflow codes against.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.payment_provider import PaymentProvider
from core.db import SessionFactory


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


class PaymentActivities:
    def __init__(self, sessions: SessionFactory, provider: PaymentProvider) -> None:
        self._sessions = sessions
        self._provider = provider

    @activity.defn(name="charge_payment")
    async def charge(self, input: ChargeInput) -> ChargeResult:
        raise NotImplementedError

    @activity.defn(name="refund_payment")
    async def refund(self, input: RefundInput) -> RefundResult:
        raise NotImplementedError
