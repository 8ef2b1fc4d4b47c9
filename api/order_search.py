"""Which orders the console's table lists: the filters, and the rule for "stuck".

Everything here is one SQL query on the read model (indexed columns and
correlated subqueries on the order's own timeline and notifications), so
picking the stuck orders never asks Temporal; only the page of rows it
returns is described there (``api/admin_orders.py``).

An order is stuck (docs/OBSERVABILITY.md, "What is each order waiting on?")
when it needs attention, or it is not final and one of these made no
progress since the cutoff (now - ``stuck_after_seconds``):

(a) a ``pending`` order: its saga settles in seconds, so no timeline line
    (and no row update) since the cutoff means a step is failing or nobody
    runs it;
(b) any order flagged ``needs_attention``;
(c) a ``confirmed`` or ``shipped`` order with a notification still
    ``sending`` since before the cutoff, or a cancel in progress (a
    ``compensation.started`` line older than the cutoff with no
    ``compensation.finished``/``recovered`` line after it).

A confirmed order waiting for staff to ship it is waiting on the shop, not
stuck, and is not listed.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from api.schemas.progress import AdminOrderFilters
from core.models import Notification, Order, OrderEvent, OrderStatus, User
from core.models.notifications import NotificationStatus

_COMPENSATION_ENDS = ("compensation.finished", "compensation.recovered")


def last_progress_at() -> ColumnElement[datetime]:
    """When the order last made progress: its newest timeline line, else its row's update."""
    newest = (
        select(func.max(OrderEvent.at)).where(OrderEvent.order_id == Order.id).scalar_subquery()
    )
    return func.coalesce(newest, Order.updated_at)


def stuck_condition(cutoff: datetime) -> ColumnElement[bool]:
    """The stuck rule above, as a WHERE condition on ``orders``."""
    started = aliased(OrderEvent)
    ended = aliased(OrderEvent)
    cancel_in_progress = exists(
        select(started.id).where(
            started.order_id == Order.id,
            started.type == "compensation.started",
            started.at < cutoff,
            ~exists(
                select(ended.id).where(
                    ended.order_id == started.order_id,
                    ended.type.in_(_COMPENSATION_ENDS),
                    ended.id > started.id,
                )
            ),
        )
    )
    sending = exists(
        select(Notification.id).where(
            Notification.order_id == Order.id,
            Notification.status == NotificationStatus.SENDING,
            Notification.created_at < cutoff,
        )
    )
    return or_(
        and_(Order.status == OrderStatus.PENDING, last_progress_at() < cutoff),
        Order.needs_attention.is_(True),
        and_(
            Order.status.in_([OrderStatus.CONFIRMED, OrderStatus.SHIPPED]),
            or_(sending, cancel_in_progress),
        ),
    )


def order_query(
    filters: AdminOrderFilters, default_stuck_after: int, now: datetime | None = None
) -> Select[Order, str]:
    """Orders (with their customer's email) matching ``filters``; not yet ordered or paged."""
    stmt = select(Order, User.email).join(User, User.id == Order.customer_id)
    if filters.status is not None:
        stmt = stmt.where(Order.status == filters.status)
    if filters.needs_attention is not None:
        stmt = stmt.where(Order.needs_attention.is_(filters.needs_attention))
    if filters.customer is not None:
        stmt = stmt.where(func.lower(User.email) == filters.customer.strip().lower())
    if filters.customer_id is not None:
        stmt = stmt.where(Order.customer_id == filters.customer_id)
    # Dates are whole UTC days, both ends included.
    if filters.created_from is not None:
        stmt = stmt.where(Order.created_at >= datetime.combine(filters.created_from, time(), UTC))
    if filters.created_to is not None:
        end = datetime.combine(filters.created_to, time(), UTC) + timedelta(days=1)
        stmt = stmt.where(Order.created_at < end)
    if filters.stuck:
        seconds = filters.stuck_after_seconds or default_stuck_after
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        stmt = stmt.where(stuck_condition(cutoff))
    return stmt
