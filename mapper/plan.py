"""The mapper's output: plain data describing SaaSquatch calls, executed elsewhere.

Keeping this free of I/O lets the preview CLI, the tests and the deliverer share one description
of "what would be sent".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from common.outcomes import Outcome, Reason
from saasquatch.calls import Call


class AccountFrom(StrEnum):
    """Where the account a message is delivered to came from."""

    TRAIT = "trait"  # the message names it (the `account_id` trait)
    USER_ID = "user_id"  # it names none: the hosted rule, a solo account named after the user
    REMEMBERED = "remembered"  # it names none: the account an earlier message named for the user


@dataclass(frozen=True, slots=True)
class Account:
    """The SaaSquatch account of a message's user, and why that one."""

    id: str
    source: AccountFrom
    user: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one Segment message, and how it ends if SaaSquatch accepts every call.

    `outcome` is `delivered` (run `calls` in order; when the events call answers 404 and
    `upsert_on_missing_user` is set, that upsert runs and the events call is sent once more),
    `ignored` or `dead_lettered` (no calls; `reason` says why). `notes` name what was left out
    (field names only, never values). `event_time` is when a track event happened (its
    `dateTriggered`), when the message says. `account` is the account the calls go to and why
    (None when there are no calls).
    """

    outcome: Outcome
    reason: Reason | None = None
    detail: str | None = None
    message_type: str | None = None
    event_key: str | None = None
    idempotency_key: str | None = None
    event_time: datetime | None = None
    calls: tuple[Call, ...] = ()
    upsert_on_missing_user: Call | None = None
    notes: tuple[str, ...] = ()
    note_counts: tuple[str, ...] = ()  # `notes` without the names, for the log line
    account: Account | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": str(self.outcome)}
        for name in ("reason", "detail", "message_type", "event_key", "idempotency_key"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.account is not None:
            out["account"] = {"id": self.account.id, "from": str(self.account.source)}
        if self.calls:
            out["calls"] = [call.to_json() for call in self.calls]
        if self.upsert_on_missing_user is not None:
            out["upsert_on_missing_user"] = self.upsert_on_missing_user.to_json()
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def ignored(reason: Reason, message_type: str | None = None, detail: str | None = None) -> Plan:
    return Plan(Outcome.IGNORED, reason=reason, detail=detail, message_type=message_type)


def dead_letter(reason: Reason, detail: str | None = None, message_type: str | None = None) -> Plan:
    return Plan(Outcome.DEAD_LETTERED, reason=reason, detail=detail, message_type=message_type)


class Undeliverable(Exception):
    """Raised inside the mapper when a message can only be dead-lettered."""

    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail
