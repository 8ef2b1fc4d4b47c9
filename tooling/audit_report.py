"""The audit's report, and the order states its checks group together."""

from __future__ import annotations

from dataclasses import dataclass, field

KEEPS_MONEY = ("confirmed", "shipped", "delivered")
KEEPS_NOTHING = ("rejected", "payment_failed", "cancelled")
# An order in one of these states still has a saga running that must move it
# on (or wait for ship / deliver / cancel); the others are final.
NOT_FINAL = ("pending", "confirmed", "shipped")


@dataclass
class AuditReport:
    products: int = 0
    orders: int = 0
    violations: list[str] = field(default_factory=list)
    needs_attention: list[str] = field(default_factory=list)
    pending: int = 0
    not_final: int = 0  # pending, confirmed or shipped: a workflow still runs for each
    undoing: int = 0  # kept orders whose cancellation is being compensated right now
    # Extra identical copies of a message (same Message-ID and content): the
    # at-least-once delivery's price, reported, not a violation.
    resends: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        lines = [
            f"audited {self.products} products and {self.orders} orders "
            f"({self.pending} still pending, {self.not_final} not final, "
            f"{self.undoing} being cancelled)",
        ]
        if self.resends:
            lines.append(f"messages resent (identical copies, same Message-ID): {self.resends}")
        if self.needs_attention:
            lines.append(f"orders marked for attention: {len(self.needs_attention)}")
            lines += [f"  - {order_id}" for order_id in self.needs_attention]
        if self.violations:
            lines.append(f"VIOLATIONS: {len(self.violations)}")
            lines += [f"  - {v}" for v in self.violations]
        else:
            lines.append("no violations")
        return "\n".join(lines)
