"""The caller's own profile and password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from api.auth.accounts import check_password
from api.auth.passwords import hash_password, weakness
from api.auth.schemas import PasswordChange, UserPublic, UserUpdate
from api.auth.throttle import Policy, client_address
from api.deps import CurrentUser, ResourcesDep, SessionDep
from api.errors import ProblemError, problem_responses
from core.models import User

router = APIRouter(prefix="/users", tags=["users"])


def _gone() -> ProblemError:
    # A valid signature for a deleted account: treat as an invalid token.
    return ProblemError(401, "the account of this token no longer exists", code="unauthorized")


@router.get("/me", response_model=UserPublic, responses=problem_responses(401))
async def me(principal: CurrentUser, session: SessionDep) -> User:
    """The caller's profile."""
    user = await session.get(User, principal.user_id)
    if user is None:
        raise _gone()
    return user


@router.patch("/me", response_model=UserPublic, responses=problem_responses(401, 413, 422))
async def update_me(body: UserUpdate, principal: CurrentUser, session: SessionDep) -> User:
    """Change name, phone and notification channels; email and role are not writable here."""
    async with session.begin():
        user = await session.get(User, principal.user_id, with_for_update=True)
        if user is None:
            raise _gone()
        for name, value in body.model_dump(exclude_unset=True).items():
            setattr(user, name, value)
        if user.notify_sms and not user.phone:
            # Rolled back with the transaction: nothing of the request is kept.
            raise invalid_field("notify_sms", "phone_required", "SMS needs a phone number")
    return user


def invalid_field(field: str, type: str, message: str) -> ProblemError:
    """A 422 shaped like the schema's own refusals, for a rule across fields."""
    return ProblemError(
        422,
        f"invalid request: {field}",
        code="validation-error",
        extra={"errors": [{"field": field, "in": "body", "type": type, "message": message}]},
    )


@router.post(
    "/me/password",
    status_code=204,
    responses=problem_responses(401, 403, 413, 422, 429),
)
async def change_password(
    body: PasswordChange,
    principal: CurrentUser,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> Response:
    """Change the password; every token issued before stops working."""
    async with session.begin():
        user = await session.scalar(
            select(User).where(User.id == principal.user_id).with_for_update()
        )
        if user is None:
            raise _gone()
        problem = weakness(body.new_password, user.email)
        if problem:
            raise ProblemError(
                422,
                "invalid request: new_password",
                code="validation-error",
                extra={
                    "errors": [
                        {
                            "field": "new_password",
                            "in": "body",
                            "type": "weak_password",
                            "message": problem,
                        }
                    ]
                },
            )
        # Throttled like a login: a stolen token must not become a way to
        # guess the account's password at full speed.
        policy = Policy.from_settings(resources.settings)
        ok = await check_password(
            session, user.email, user, body.current_password, policy, client_address(request)
        )
        if ok:
            user.password_hash = await hash_password(body.new_password)
            user.token_version += 1
    if not ok:
        raise ProblemError(403, "the current password is wrong", code="wrong-password")
    return Response(status_code=204)
