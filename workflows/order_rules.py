"""The order rules, stated once: which status allows which action, and why not.

The saga's update validators refuse from these rules, and the API derives from
them which actions it refuses without asking Temporal. Pure (constants and
pure functions of their arguments), so the workflow passes it through the
sandbox and stays deterministic.
"""

from __future__ import annotations

import enum

from core.order_status import OrderStatus


class Action(enum.StrEnum):
    """A change asked of the saga; the value is its verb ("cannot be shipped")."""

    CANCEL = "cancelled"
    SHIP = "shipped"
    DELIVER = "delivered"


# The statuses an action is taken from.
ALLOWED_FROM: dict[Action, frozenset[OrderStatus]] = {
    Action.CANCEL: frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED}),
    Action.SHIP: frozenset({OrderStatus.CONFIRMED}),
    Action.DELIVER: frozenset({OrderStatus.SHIPPED}),
}

# The path of an order that goes through, in order; an order moves only
# forward along it, or off it into a failure end.
FORWARD_PATH = (
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
)

# The ends of a saga that did not go through (each has its own message).
FAILURE_ENDS = frozenset({OrderStatus.REJECTED, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED})

# Statuses an order never leaves.
FINAL = FAILURE_ENDS | {OrderStatus.DELIVERED}


def reachable_from(status: OrderStatus) -> tuple[OrderStatus, ...]:
    """``status`` and every status the order can still move to from it."""
    if status in FORWARD_PATH:
        return FORWARD_PATH[FORWARD_PATH.index(status) :]
    return (status,)


def never_allowed(action: Action, status: OrderStatus) -> bool:
    """True when no status the order can still reach allows ``action``.

    The API refuses such an action from its read model without a round trip
    to Temporal; any other status is judged by the saga's validator.
    """
    return not ALLOWED_FROM[action].intersection(reachable_from(status))


def refusal(
    action: Action,
    status: OrderStatus,
    *,
    cancelling: bool,
    settling: bool,
    in_progress: Action | None,
) -> str | None:
    """Why the saga refuses ``action`` now, or None when it takes it.

    ``cancelling``: a cancel was accepted; ``settling``: the saga chose a
    failure end; ``in_progress``: a ship or deliver is running.
    """
    if action is Action.CANCEL:
        if cancelling:
            return None  # a repeated cancel waits for the same end
        if status not in ALLOWED_FROM[action] or settling:
            return f"the order is {status.value} and can no longer be cancelled"
        if in_progress is not None:
            return f"the order is being {in_progress.value}"
        return None
    if in_progress is not None:
        return f"the order is already being {in_progress.value}"
    if cancelling:
        return "the order is being cancelled"
    if status not in ALLOWED_FROM[action]:
        return f"the order is {status.value}, so it cannot be {action.value}"
    return None
