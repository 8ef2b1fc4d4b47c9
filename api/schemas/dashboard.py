"""The console's dashboard: where orders stand today and in the last hour."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class OldestPending(BaseModel):
    id: uuid.UUID
    created_at: datetime


class Dashboard(BaseModel):
    as_of: datetime
    today_by_status: dict[str, int] = Field(
        description="orders placed since midnight UTC, by their current status (every status)"
    )
    last_hour: dict[str, int] = Field(
        description=(
            "orders whose status last changed in the past hour: confirmed, failed "
            "(payment_failed + rejected) and cancelled"
        )
    )
    sagas_in_flight: int | None = Field(
        description="running OrderWorkflow executions; null when Temporal cannot be reached"
    )
    oldest_pending: OldestPending | None
