"""Runs a mapper `Plan` against SaaSquatch and classifies how it ended.

Every message ends in exactly one `Result`: delivered, ignored, dead-lettered (permanent) or
retry (transient: Pub/Sub redelivers). The mapper says *what* to send, the client says *how an
answer looked*; this module alone decides what that means for the message (which 404 is fine,
which is permanent, when to ask for a retry). Nothing here knows about HTTP requests from
Pub/Sub or about publishing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from common.outcomes import Outcome, Reason
from mapper import Plan
from saasquatch.calls import Call, Purpose
from saasquatch.client import Answer
from saasquatch.errors import ApiError, NoAnswer, NoAnswerKind, SaaSquatchError, UnsendableBody

Send = Callable[[Call], Answer]

NO_ANSWER_REASONS: dict[NoAnswerKind, Reason] = {
    NoAnswerKind.TIMEOUT: Reason.SAASQUATCH_TIMEOUT,
    NoAnswerKind.UNREACHABLE: Reason.SAASQUATCH_UNREACHABLE,
    NoAnswerKind.KEY_UNAVAILABLE: Reason.API_KEY_UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class Result:
    """How one message ended, with what the destination (SaaSquatch, or Segment for forward)
    last said when it said anything."""

    outcome: Outcome
    reason: Reason | None = None
    detail: str | None = None
    status: int | None = None  # the destination's last HTTP status
    api_error_code: str | None = None
    rs_code: str | None = None
    retry_after: float | None = None
    calls: int = 0
    saasquatch_ms: float | None = None  # time spent waiting for SaaSquatch, all calls together


class _Sender:
    """Sends calls and remembers what the log line and the classification need."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.calls = 0
        self.current: Call | None = None
        self.last_status: int | None = None
        self.user_upserted = False
        self.seconds = 0.0

    def __call__(self, call: Call) -> Answer:
        self.calls += 1
        self.current = call
        started = time.perf_counter()
        try:
            answer = self._send(call)
        except SaaSquatchError as error:
            self.last_status = error.status
            raise
        finally:
            self.seconds += time.perf_counter() - started
        self.last_status = answer.status
        if call.purpose is Purpose.UPSERT_USER:
            self.user_upserted = True
        return answer


def execute(plan: Plan, send: Send) -> Result:
    """Send the plan's calls in order and say how it ended. Never raises for SaaSquatch errors."""
    if plan.outcome is not Outcome.DELIVERED:
        return Result(plan.outcome, plan.reason, plan.detail)
    sender = _Sender(send)
    result = _run(plan, sender)
    return replace(result, saasquatch_ms=round(sender.seconds * 1000, 2))


def _run(plan: Plan, sender: _Sender) -> Result:
    reason: Reason | None = None
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
            return Result(
                Outcome.DEAD_LETTERED, Reason.UNSENDABLE_BODY, str(error), calls=sender.calls
            )
    return Result(Outcome.DELIVERED, reason, status=sender.last_status, calls=sender.calls)


def _send_event(call: Call, upsert: Call | None, send: _Sender) -> Reason | None:
    """Send an event; 409 means SaaSquatch already has it (same idempotency key), and a 404
    (no such user yet) is answered by the upsert and one more try when the plan has one."""
    try:
        send(call)
        return None
    except SaaSquatchError as error:
        if already_received(error):
            return Reason.ALREADY_DELIVERED
        if error.status != 404 or upsert is None or send.user_upserted:
            raise
    send(upsert)
    try:
        send(call)
    except SaaSquatchError as error:
        if already_received(error):
            return Reason.ALREADY_DELIVERED
        raise
    return Reason.USER_CREATED


def already_received(error: SaaSquatchError) -> bool:
    """The events endpoint's one documented 409: the idempotency key was seen before. That is
    also what a 409 with an empty or unreadable body means; a 409 whose error names something
    else is not taken for delivery (it is dead-lettered with its code)."""
    if error.status != 409:
        return False
    if not isinstance(error, ApiError):
        return True
    said = f"{error.api_error_code or ''} {error.message or ''}".strip().lower()
    return not said or "idempoten" in said


def _send_delete(call: Call, send: _Sender) -> Reason | None:
    try:
        send(call)
        return None
    except SaaSquatchError as error:
        if error.status != 404:
            raise
        return Reason.ALREADY_DELETED


def _failed(sender: _Sender, error: SaaSquatchError) -> Result:
    if isinstance(error, NoAnswer):
        return Result(Outcome.RETRY, NO_ANSWER_REASONS[error.kind], str(error), calls=sender.calls)
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
        reason = Reason.SAASQUATCH_RATE_LIMITED if status == 429 else Reason.SAASQUATCH_UNAVAILABLE
        return Result(Outcome.RETRY, reason, retry_after=error.retry_after, **answer)
    if purpose is Purpose.TRACK_EVENT and status == 404:
        if sender.user_upserted:
            # The upsert has just succeeded, yet the user is missing: most likely replication
            # lag, so Pub/Sub tries again later (its dead-letter policy bounds the attempts).
            return Result(Outcome.RETRY, Reason.USER_NOT_FOUND_AFTER_UPSERT, **answer)
        return Result(Outcome.DEAD_LETTERED, Reason.USER_NOT_FOUND, **answer)
    return Result(Outcome.DEAD_LETTERED, _permanent_reason(error), **answer)


def _permanent_reason(error: SaaSquatchError) -> Reason:
    if not isinstance(error, ApiError):
        return Reason.SAASQUATCH_UNEXPECTED_ANSWER
    if error.status in (401, 403):
        return Reason.SAASQUATCH_UNAUTHORIZED
    if error.status == 404:
        return Reason.SAASQUATCH_NOT_FOUND
    return Reason.SAASQUATCH_REJECTED
