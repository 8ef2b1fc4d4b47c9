"""A worker SIGKILLed after the mail relay accepted a message, before the row was marked sent.

This is the window the notification guarantee admits (at least once, and
identical): the fresh worker sends the message again, with the same
Message-ID and text, so the audit counts a resend and reports no violation.
"""

from __future__ import annotations

from sqlalchemy import func, select

from core.models import CaughtMail
from tests.faults import scenarios
from tests.faults.stack import FaultStack

POINT = "send_notification:accepted"


async def test_a_kill_between_accept_and_mark_is_a_counted_resend_not_a_violation(
    faults: FaultStack,
) -> None:
    resends = faults.counters.resends

    violations = await scenarios.kill_worker_at(faults, POINT, orders=2)

    assert violations == []
    async with faults.sessions() as session:
        copies = list(
            await session.execute(
                select(CaughtMail.message_id, func.count()).group_by(CaughtMail.message_id)
            )
        )
    # Both confirmations arrived; the one parked at the kill (at least) twice.
    assert len(copies) == 2
    assert max(count for _, count in copies) >= 2
    found = faults.counters.resends - resends
    assert found == sum(count - 1 for _, count in copies) >= 1
