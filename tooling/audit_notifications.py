"""The audit's notification check: at-least-once, and every copy identical."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tooling.audit_report import AuditReport


async def check_notifications(session: AsyncSession, report: AuditReport) -> None:
    """At-least-once and identical: resends are counted, different messages are violations.

    A resend (a crash after the relay accepted a message, before its row was
    marked sent) delivers the same message again: same Message-ID, same
    recipient, subject and body; mail clients collapse the copies. It is the
    guarantee working, so it is counted, not flagged. Two *different* messages
    are a violation: one Message-ID carrying different content (clients would
    drop one as a duplicate), or one order's notification of a kind delivered
    under two Message-IDs, or two rows for one (order, kind, channel).
    """
    rows = await session.execute(
        text(
            """
            SELECT order_id, kind, channel, COUNT(*) FROM notifications
            GROUP BY order_id, kind, channel HAVING COUNT(*) > 1
            """
        )
    )
    for order_id, kind, channel, count in rows:
        report.violations.append(f"order {order_id}: {count} {kind} notifications by {channel}")
    # What actually reached the mail server (the dev sink), by Message-ID.
    copies = await session.execute(
        text(
            """
            SELECT message_id, COUNT(*) AS copies,
                   COUNT(DISTINCT (rcpt_to, subject, body)) AS versions
            FROM caught_mail
            WHERE message_id IS NOT NULL GROUP BY message_id HAVING COUNT(*) > 1
            """
        )
    )
    for message_id, count, versions in copies:
        if versions > 1:
            report.violations.append(
                f"mail {message_id} delivered {count} times in {versions} different versions"
            )
        else:
            report.resends += count - 1
    # One logical message (the key before "@" is order-<id>-<kind>, see
    # activities.notifications.message_key) must have one Message-ID.
    keys = await session.execute(
        text(
            """
            SELECT substring(message_id FROM '^<(order-[^@]+)@') AS key,
                   COUNT(DISTINCT message_id)
            FROM caught_mail
            WHERE message_id ~ '^<order-[^@]+@'
            GROUP BY key HAVING COUNT(DISTINCT message_id) > 1
            """
        )
    )
    for key, ids in keys:
        report.violations.append(f"message {key} delivered under {ids} Message-IDs")
