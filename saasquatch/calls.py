"""What a SaaSquatch REST call is: its purpose, method, path, headers and typed body.

The mapper produces these and the client sends them; they belong to the SaaSquatch side so the
pure mapper depends on the API's shapes, not the reverse. The bodies are TypedDicts: the mapper
fills them from values it has already cleaned, so they document the shape for readers and type
checkers at no cost per message. `compact` drops top-level nulls: a top-level null could clear
data in SaaSquatch, while a null custom field value is a deliberate "remove this field".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Required, TypedDict
from urllib.parse import quote


class Purpose(StrEnum):
    UPSERT_USER = "upsert_user"
    TRACK_EVENT = "track_event"
    DELETE_USER = "delete_user"


@dataclass(frozen=True, slots=True)
class Call:
    """One SaaSquatch REST call; `path` is relative to `{base_url}/api/v1/{tenantAlias}`.

    `headers` holds only message-specific headers (end-user IP and user agent); auth and content
    type belong to the client.
    """

    purpose: Purpose
    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "purpose": str(self.purpose),
            "method": self.method,
            "path": self.path,
        }
        if self.params:
            out["params"] = dict(self.params)
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.body is not None:
            out["body"] = self.body
        return out


_PATH_SAFE = re.compile(r"[A-Za-z0-9_.~-]+")


class DotSegmentId(ValueError):
    """An id that is `.` or `..`: as a path segment it names another endpoint. Percent-encoding
    does not help: `%2E%2E` is the same segment to any server that decodes unreserved characters
    before removing dot segments (RFC 3986 section 6.2.2), and many front ends do. So such an id
    can never be sent."""


def user_path(account: str, user: str) -> str:
    """`/open/account/{accountId}/user/{userId}`, each id percent-encoded when it needs it;
    `DotSegmentId` for an id that is a dot segment."""
    return f"/open/account/{_segment(account, 'account')}/user/{_segment(user, 'user')}"


_DOT_SEGMENTS = frozenset({".", ".."})


def _segment(text: str, what: str) -> str:
    """Percent-encoded path segment; most ids need nothing, and checking is cheaper than quoting."""
    if text in _DOT_SEGMENTS:
        raise DotSegmentId(f"the {what} id is {text!r}, a dot segment: it cannot be a path")
    return text if _PATH_SAFE.fullmatch(text) else quote(text, safe="")


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
    cookies: str  # squatch.js's `_saasquatch` cookie: base64url JSON; referredByCodes wins
    customFields: dict[str, Scalar]
    segments: list[str]  # in order: "name" joins, "~name" leaves, "~*" leaves every segment


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
