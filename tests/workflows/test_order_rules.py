"""The order rules (workflows/order_rules.py), stated once for the saga and the API.

Pins the rules as they stood when the API (``_HOPELESS``) and the workflow
(``_CANCELLABLE``, ``_check_transition``) each stated them: moving them into
one module changes no answer.
"""

from __future__ import annotations

import pytest

from core.order_status import OrderStatus
from workflows.order_rules import ALLOWED_FROM, FINAL, Action, never_allowed, refusal

S = OrderStatus

# Where the API refuses without asking the saga: the table it held before.
NEVER_ALLOWED = {
    Action.CANCEL: {S.SHIPPED, S.DELIVERED, S.REJECTED, S.PAYMENT_FAILED, S.CANCELLED},
    Action.SHIP: {S.SHIPPED, S.DELIVERED, S.REJECTED, S.PAYMENT_FAILED, S.CANCELLED},
    Action.DELIVER: {S.DELIVERED, S.REJECTED, S.PAYMENT_FAILED, S.CANCELLED},
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(OrderStatus))
def test_the_api_refuses_from_the_same_statuses_as_before(
    action: Action, status: OrderStatus
) -> None:
    assert never_allowed(action, status) == (status in NEVER_ALLOWED[action])


@pytest.mark.parametrize("action", list(Action))
def test_no_action_is_taken_from_a_final_status(action: Action) -> None:
    assert all(never_allowed(action, status) for status in FINAL)


def test_the_verbs_are_the_api_contract() -> None:
    assert [a.value for a in Action] == ["cancelled", "shipped", "delivered"]


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(OrderStatus))
def test_the_saga_takes_an_action_only_from_its_statuses(
    action: Action, status: OrderStatus
) -> None:
    why = refusal(action, status, cancelling=False, settling=False, in_progress=None)
    assert (why is None) == (status in ALLOWED_FROM[action])
    # A status the saga takes an action from is never one the API refuses.
    assert why is not None or not never_allowed(action, status)


def test_a_repeated_cancel_is_taken_whatever_else_holds() -> None:
    for status in OrderStatus:
        assert (
            refusal(Action.CANCEL, status, cancelling=True, settling=True, in_progress=Action.SHIP)
            is None
        )


@pytest.mark.parametrize(
    ("action", "status", "cancelling", "settling", "in_progress"),
    [
        # A settling saga takes no new cancel.
        (Action.CANCEL, S.PENDING, False, True, None),
        # Nor a cancel while a ship runs.
        (Action.CANCEL, S.CONFIRMED, False, False, Action.SHIP),
        # Nor a ship or deliver once a cancel was accepted, or while another runs.
        (Action.SHIP, S.CONFIRMED, True, False, None),
        (Action.SHIP, S.CONFIRMED, False, False, Action.SHIP),
        (Action.DELIVER, S.SHIPPED, True, False, None),
        (Action.DELIVER, S.SHIPPED, False, False, Action.DELIVER),
    ],
)
def test_a_change_in_flight_refuses_the_next(
    action: Action,
    status: OrderStatus,
    cancelling: bool,
    settling: bool,
    in_progress: Action | None,
) -> None:
    why = refusal(action, status, cancelling=cancelling, settling=settling, in_progress=in_progress)
    assert why is not None


def test_a_ship_is_not_refused_for_a_settling_saga_alone() -> None:
    # As before: only a cancel looks at settling; a confirmed order does not settle.
    assert (
        refusal(Action.SHIP, S.CONFIRMED, cancelling=False, settling=True, in_progress=None) is None
    )
