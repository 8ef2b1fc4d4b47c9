"""Admin views that are not about one order: the mail the dev SMTP sink caught."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from api.deps import AdminUser, ResourcesDep
from api.errors import problem_responses
from api.pagination import PageDep
from api.schemas.admin import MailList, MailPublic
from core.models import CaughtMail

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/mail", response_model=MailList, responses=problem_responses(403, 422))
async def list_mail(admin: AdminUser, resources: ResourcesDep, page: PageDep) -> MailList:
    """Mail caught by the development SMTP sink, newest first."""
    async with resources.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(CaughtMail))
        mails = await session.scalars(
            select(CaughtMail)
            .order_by(CaughtMail.received_at.desc(), CaughtMail.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
        return MailList(items=[MailPublic.model_validate(m) for m in mails], total=total or 0)
