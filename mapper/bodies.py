"""SaaSquatch request bodies (REST API v1), as pydantic models.

The mapper fills them from values it has already cleaned, so they are built without re-validation
(`model_construct`) and dumped without top-level nulls: a top-level null could clear data in
SaaSquatch, while a null custom field value is a deliberate "remove this field".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

Scalar = str | int | float | bool | None


class UserUpsert(BaseModel):
    """`PUT /open/account/{accountId}/user/{userId}`."""

    model_config = ConfigDict(extra="forbid")

    id: str
    accountId: str
    email: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    imageUrl: str | None = None
    locale: str | None = None
    referredByCodes: list[str] | None = None
    customFields: dict[str, Scalar] | None = None


class UserEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    fields: dict[str, Any] | None = None
    dateTriggered: int | None = None  # epoch milliseconds


class UserEventsBody(BaseModel):
    """`POST /open/account/{accountId}/user/{userId}/events`."""

    model_config = ConfigDict(extra="forbid")

    userId: str
    accountId: str
    idempotencyKey: str
    events: list[UserEvent]


def to_body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(exclude_none=True)
