"""The mapper's output: plain data describing SaaSquatch calls, executed elsewhere.

Keeping this free of I/O lets the preview CLI, the tests and the deliverer share one description
of "what would be sent".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    DELIVER = "deliver"
    IGNORED = "ignored"
    DEAD_LETTER = "dead_letter"


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


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one Segment message.

    For `deliver`, `calls` run in order; when the events call answers 404 and
    `upsert_on_missing_user` is set, that upsert runs and the events call is sent once more.
    `notes` name what was left out (field names only, never values).
    """

    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    message_type: str | None = None
    event_key: str | None = None
    idempotency_key: str | None = None
    calls: tuple[Call, ...] = ()
    upsert_on_missing_user: Call | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": str(self.outcome)}
        for name in ("reason", "detail", "message_type", "event_key", "idempotency_key"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.calls:
            out["calls"] = [call.to_json() for call in self.calls]
        if self.upsert_on_missing_user is not None:
            out["upsert_on_missing_user"] = self.upsert_on_missing_user.to_json()
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def ignored(reason: str, message_type: str | None = None, detail: str | None = None) -> Plan:
    return Plan(Outcome.IGNORED, reason=reason, detail=detail, message_type=message_type)


def dead_letter(reason: str, detail: str | None = None, message_type: str | None = None) -> Plan:
    return Plan(Outcome.DEAD_LETTER, reason=reason, detail=detail, message_type=message_type)


class Undeliverable(Exception):
    """Raised inside the mapper when a message can only be dead-lettered."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail
