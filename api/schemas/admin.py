"""Admin schemas: MailPublic and MailList (what the dev SMTP sink caught)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class MailPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    received_at: datetime
    mail_from: str
    rcpt_to: str
    subject: str
    message_id: str | None
    body: str


class MailList(BaseModel):
    items: list[MailPublic]
    total: int = Field(description="how many mails were caught, across all pages")
