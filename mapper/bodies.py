"""SaaSquatch request bodies (REST API v1), as typed dictionaries.

The mapper fills them from values it has already cleaned, so they need no validation at run time:
TypedDicts document the shape for readers and type checkers at no cost per message. `compact`
drops top-level nulls: a top-level null could clear data in SaaSquatch, while a null custom field
value is a deliberate "remove this field".
"""

from __future__ import annotations

from typing import Any, Required, TypedDict

Scalar = str | int | float | bool | None


class UserUpsert(TypedDict, total=False):
    """`PUT /open/account/{accountId}/user/{userId}`."""

    id: Required[str]
    accountId: Required[str]
    email: str
    firstName: str
    lastName: str
    imageUrl: str
    locale: str
    referredByCodes: list[str]
    customFields: dict[str, Scalar]


class UserEvent(TypedDict, total=False):
    key: Required[str]
    fields: dict[str, Any]
    dateTriggered: int  # epoch milliseconds


class UserEventsBody(TypedDict):
    """`POST /open/account/{accountId}/user/{userId}/events`."""

    userId: str
    accountId: str
    idempotencyKey: str
    events: list[UserEvent]


def compact(body: dict[str, Any]) -> dict[str, Any]:
    """The body without its top-level `None` values."""
    return {name: value for name, value in body.items() if value is not None}
