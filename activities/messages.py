"""What the customer is told, per notification kind. Pure text, no I/O.

Amounts are formatted from integer minor units by ``Money.format``; a
message never contains the card token or anything the customer did not give.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from core.money import Money


class NotificationKind(enum.StrEnum):
    CONFIRMED = "order_confirmed"
    PAYMENT_FAILED = "payment_failed"
    REJECTED = "order_rejected"
    CANCELLED = "order_cancelled"
    SHIPPED = "order_shipped"
    DELIVERED = "order_delivered"


@dataclass(frozen=True)
class Line:
    name: str
    quantity: int
    unit_price: Money


@dataclass(frozen=True)
class OrderFacts:
    """What a message may mention, read from the database by the activity."""

    order_id: str
    customer_name: str
    total: Money
    refunded: Money
    lines: list[Line] = field(default_factory=list)
    failure_reason: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None

    @property
    def reference(self) -> str:
        return self.order_id[:8].upper()


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def render(kind: NotificationKind, facts: OrderFacts) -> Message:
    subject, text = _RENDERERS[kind](facts)
    body = f"Hello {facts.customer_name},\n\n{text}\n\nOrder {facts.reference}\n{_lines(facts)}"
    return Message(subject, body + "\n\n-- ordersaga\n")


def _lines(facts: OrderFacts) -> str:
    rows = [f"  {ln.quantity} x {ln.name} @ {ln.unit_price.format()}" for ln in facts.lines]
    return "\n".join([*rows, f"Total: {facts.total.format()}"])


def _confirmed(f: OrderFacts) -> tuple[str, str]:
    return "Order confirmed", "Thank you: your payment was received and your order is confirmed."


def _payment_failed(f: OrderFacts) -> tuple[str, str]:
    return (
        "Payment failed",
        "We could not take your payment, so your order was not placed. Nothing was charged.",
    )


def _rejected(f: OrderFacts) -> tuple[str, str]:
    why = f" ({f.failure_reason})" if f.failure_reason else ""
    return "Order rejected", f"We could not fulfil your order{why}. Nothing was charged."


def _cancelled(f: OrderFacts) -> tuple[str, str]:
    if f.refunded.amount > 0:
        refund = f.refunded.format()
        return (
            f"Order cancelled — refund of {refund}",
            f"Your order was cancelled and {refund} is being refunded to your card.",
        )
    return "Order cancelled", "Your order was cancelled. Nothing was charged."


def _shipped(f: OrderFacts) -> tuple[str, str]:
    via = f" with {f.carrier}" if f.carrier else ""
    tracking = f" Tracking number: {f.tracking_number}." if f.tracking_number else ""
    return "Your order has shipped", f"Your order is on its way{via}.{tracking}"


def _delivered(f: OrderFacts) -> tuple[str, str]:
    return "Delivered", "Your order was delivered. Enjoy!"


_RENDERERS = {
    NotificationKind.CONFIRMED: _confirmed,
    NotificationKind.PAYMENT_FAILED: _payment_failed,
    NotificationKind.REJECTED: _rejected,
    NotificationKind.CANCELLED: _cancelled,
    NotificationKind.SHIPPED: _shipped,
    NotificationKind.DELIVERED: _delivered,
}
