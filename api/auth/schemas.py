"""Request and response bodies of the auth service.

Write bodies forbid unknown fields, so nobody can slip a ``role`` or an
``email`` into a request that must not change it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from api.auth.passwords import MAX_LENGTH, MIN_LENGTH, weakness
from api.schemas.text import NO_NUL, Text200, plain_text
from core.models import Role

Name = Text200  # not blank, no NUL, encodable (api/schemas/text.py)
# E.164 (what SMS providers take): "+", the country code, at most 15 digits
# in all. Single spaces between digits are accepted for readability and
# dropped, so the stored number is the provider's form; the pattern alone
# says what is accepted.
Phone = Annotated[
    str,
    StringConstraints(max_length=40, pattern=r"^\+[1-9](?: ?[0-9]){6,14}$"),
    AfterValidator(lambda phone: phone.replace(" ", "")),
]
# Length is checked by the validators below, so the refusal names the rule.
Password = Annotated[str, Field(max_length=MAX_LENGTH)]
# A password being set: the document states its minimum too, so a client (or
# a fuzzer) built from it knows the rule; the validators still enforce it.
NewPassword = Annotated[
    str, Field(max_length=MAX_LENGTH, json_schema_extra={"minLength": MIN_LENGTH})
]


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Write):
    email: EmailStr = Field(max_length=320)
    password: NewPassword
    name: Name
    phone: Phone | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, email: str) -> str:
        # Stored lower-cased, so the unique index is case-insensitive.
        return email.lower()

    @field_validator("password")
    @classmethod
    def _strong(cls, password: str, info: ValidationInfo) -> str:
        problem = weakness(password, info.data.get("email"))
        if problem:
            raise ValueError(problem)
        return password


def _name_not_nullable(schema: dict[str, Any]) -> None:
    # An absent name (or choice) is "leave it"; null is refused (see
    # _name_not_null), so the document shows each as a plain value.
    for field in ("name", "notify_email", "notify_sms"):
        prop = schema["properties"][field]
        variants = prop.pop("anyOf", [])
        prop.update(next((v for v in variants if v.get("type") != "null"), {}))
        prop.pop("default", None)


class UserUpdate(_Write):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_name_not_nullable)

    name: Name | None = None
    phone: Phone | None = None
    # Which channels order messages go on; SMS needs a phone.
    notify_email: bool | None = None
    notify_sms: bool | None = None

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, name: str | None) -> str:
        if name is None:
            raise ValueError("name cannot be removed")
        return name

    @field_validator("notify_email", "notify_sms")
    @classmethod
    def _choice_not_null(cls, choice: bool | None) -> bool:
        if choice is None:
            raise ValueError("true or false")
        return choice


class PasswordChange(_Write):
    current_password: Password
    new_password: NewPassword

    @field_validator("new_password")
    @classmethod
    def _strong(cls, password: str) -> str:
        # "Not the email" needs the account, and is checked by the route.
        problem = weakness(password, None)
        if problem:
            raise ValueError(problem)
        return password


# What a login may send as its email: any text an account's email could be
# (no NUL, which PostgreSQL text cannot hold, so it cannot reach a query).
LoginEmail = Annotated[
    str, StringConstraints(min_length=1, max_length=320, pattern=NO_NUL), AfterValidator(plain_text)
]


class LoginRequest(_Write):
    email: LoginEmail
    password: Password


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    phone: str | None
    role: Role
    notify_email: bool
    notify_sms: bool
    email_verified: bool

    model_config = ConfigDict(from_attributes=True)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the token expires")
