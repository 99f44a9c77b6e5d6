"""Runs a mapper `Plan` against SaaSquatch and classifies how it ended.

Every message ends in exactly one `Result`: delivered, ignored, dead-lettered (permanent) or
retry (transient: Pub/Sub redelivers). Nothing here knows about HTTP requests from Pub/Sub or
about publishing; `main.deliver` turns the result into an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from mapper import Call, Outcome, Plan, Purpose
from saasquatch import Answer, ApiError, NoAnswer, SaaSquatchError, UnsendableBody

Send = Callable[[Call], Answer]


class Status(StrEnum):
    DELIVERED = "delivered"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Result:
    """How one message ended. `status` is SaaSquatch's last HTTP status, when there was one."""

    outcome: Status
    reason: str | None = None
    detail: str | None = None
    status: int | None = None
    api_error_code: str | None = None
    rs_code: str | None = None
    retry_after: float | None = None
    calls: int = 0


class _Sender:
    """Sends calls and remembers what the log line and the classification need."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.calls = 0
        self.current: Call | None = None
        self.last_status: int | None = None
        self.user_upserted = False

    def __call__(self, call: Call) -> Answer:
        self.calls += 1
        self.current = call
        try:
            answer = self._send(call)
        except SaaSquatchError as error:
            self.last_status = error.status
            raise
        self.last_status = answer.status
        if call.purpose is Purpose.UPSERT_USER:
            self.user_upserted = True
        return answer


def execute(plan: Plan, send: Send) -> Result:
    """Send the plan's calls in order and say how it ended. Never raises for SaaSquatch errors."""
    if plan.outcome is Outcome.IGNORED:
        return Result(Status.IGNORED, plan.reason, plan.detail)
    if plan.outcome is Outcome.DEAD_LETTER:
        return Result(Status.DEAD_LETTERED, plan.reason, plan.detail)
    sender = _Sender(send)
    reason: str | None = None
    for call in plan.calls:
        try:
            if call.purpose is Purpose.TRACK_EVENT:
                reason = _send_event(call, plan.upsert_on_missing_user, sender) or reason
            elif call.purpose is Purpose.DELETE_USER:
                reason = _send_delete(call, sender) or reason
            else:
                sender(call)
        except SaaSquatchError as error:
            return _failed(sender, error)
        except UnsendableBody as error:
            return Result(Status.DEAD_LETTERED, "unsendable_body", str(error), calls=sender.calls)
    return Result(Status.DELIVERED, reason, status=sender.last_status, calls=sender.calls)


def _send_event(call: Call, upsert: Call | None, send: _Sender) -> str | None:
    """Send an event; 409 means SaaSquatch already has it (same idempotency key), and a 404
    (no such user yet) is answered by the upsert and one more try when the plan has one."""
    try:
        send(call)
        return None
    except SaaSquatchError as error:
        if error.status == 409:
            return "already_delivered"
        if error.status != 404 or upsert is None or send.user_upserted:
            raise
    send(upsert)
    try:
        send(call)
    except SaaSquatchError as error:
        if error.status == 409:
            return "already_delivered"
        raise
    return "user_created"


def _send_delete(call: Call, send: _Sender) -> str | None:
    try:
        send(call)
        return None
    except SaaSquatchError as error:
        if error.status != 404:
            raise
        return "already_deleted"


def _failed(sender: _Sender, error: SaaSquatchError) -> Result:
    if isinstance(error, NoAnswer):
        return Result(Status.RETRY, error.reason, str(error), calls=sender.calls)
    call = sender.current
    purpose = call.purpose if call is not None else None
    status = error.status
    api = error if isinstance(error, ApiError) else None
    answer = {
        "detail": f"{purpose}: {error}",
        "status": status,
        "api_error_code": api.api_error_code if api else None,
        "rs_code": api.rs_code if api else None,
        "calls": sender.calls,
    }
    if error.transient:
        reason = "saasquatch_rate_limited" if status == 429 else "saasquatch_unavailable"
        return Result(Status.RETRY, reason, retry_after=error.retry_after, **answer)
    if purpose is Purpose.TRACK_EVENT and status == 404:
        if sender.user_upserted:
            # The upsert has just succeeded, yet the user is missing: most likely replication
            # lag, so Pub/Sub tries again later (its dead-letter policy bounds the attempts).
            return Result(Status.RETRY, "user_not_found_after_upsert", **answer)
        return Result(Status.DEAD_LETTERED, "user_not_found", **answer)
    return Result(Status.DEAD_LETTERED, _permanent_reason(error), **answer)


def _permanent_reason(error: SaaSquatchError) -> str:
    if not isinstance(error, ApiError):
        return "saasquatch_unexpected_answer"
    if error.status in (401, 403):
        return "saasquatch_unauthorized"
    if error.status == 404:
        return "saasquatch_not_found"
    return "saasquatch_rejected"
