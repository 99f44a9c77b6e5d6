"""Runs a mapper `Plan` against SaaSquatch and says how it ended.

Every message ends in exactly one `Result`: delivered, ignored, dead-lettered (permanent) or
retry (transient: Pub/Sub redelivers). The mapper says *what* to send, the client says *how an
answer looked*. The answers that mean something for one kind of call are read here first (a 409
on an event: SaaSquatch has it; a 404 on an event: upsert the user and try once more; a 404 on a
delete: already deleted; a 404 just after an upsert: replication lag, retry); every other
failure goes to the one table, `pushes.verdicts`, through `SAASQUATCH`. One answer is read for
any user upsert: RS052 (the referral cookie refused) sends the upsert once more without its
`cookies`, so a bad cookie never costs the user. Nothing here knows about HTTP requests from
Pub/Sub or about publishing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from common.outcomes import Outcome, Reason
from mapper import Plan
from pushes.result import Result
from pushes.verdicts import Destination, Verdict
from saasquatch.calls import Call, Purpose
from saasquatch.client import Answer
from saasquatch.errors import ApiError, NoAnswer, SaaSquatchError, UnsendableBody

Send = Callable[[Call], Answer]

# What each verdict of the one table (`pushes.verdicts`) means for SaaSquatch.
SAASQUATCH = Destination(
    "saasquatch",
    {
        Verdict.TIMEOUT: Reason.SAASQUATCH_TIMEOUT,
        Verdict.UNREACHABLE: Reason.SAASQUATCH_UNREACHABLE,
        Verdict.KEY_UNAVAILABLE: Reason.API_KEY_UNAVAILABLE,
        Verdict.RATE_LIMITED: Reason.SAASQUATCH_RATE_LIMITED,
        Verdict.UNAVAILABLE: Reason.SAASQUATCH_UNAVAILABLE,
        Verdict.UNEXPECTED_ANSWER: Reason.SAASQUATCH_UNEXPECTED_ANSWER,
        Verdict.UNAUTHORIZED: Reason.SAASQUATCH_UNAUTHORIZED,
        Verdict.NOT_FOUND: Reason.SAASQUATCH_NOT_FOUND,
        Verdict.REJECTED: Reason.SAASQUATCH_REJECTED,
    },
)


class _Sender:
    """Sends calls and remembers what the log line and the classification need."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.calls = 0
        self.current: Call | None = None
        self.last_status: int | None = None
        self.user_upserted = False
        self.refused_cookie: ApiError | None = None  # SaaSquatch's RS052, once it was answered
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
    return replace(result, destination_ms=round(sender.seconds * 1000, 2))


def _run(plan: Plan, sender: _Sender) -> Result:
    reason: Reason | None = None
    for call in plan.calls:
        try:
            if call.purpose is Purpose.TRACK_EVENT:
                reason = _send_event(call, plan.upsert_on_missing_user, sender) or reason
            elif call.purpose is Purpose.DELETE_USER:
                reason = _send_delete(call, sender) or reason
            elif call.purpose is Purpose.UPSERT_USER:
                _send_upsert(call, sender)
            else:
                sender(call)
        except SaaSquatchError as error:
            return _failed(sender, error)
        except UnsendableBody as error:
            return Result(
                Outcome.DEAD_LETTERED, Reason.UNSENDABLE_BODY, str(error), calls=sender.calls
            )
    if sender.refused_cookie is not None:
        return _cookie_refused(sender.refused_cookie, reason, sender)
    return Result(Outcome.DELIVERED, reason, status=sender.last_status, calls=sender.calls)


def _send_upsert(call: Call, send: _Sender) -> None:
    """Send a user upsert; when SaaSquatch refuses its referral cookie (RS052), send it once
    more without `cookies`: the user matters more than the attribution the cookie carried."""
    try:
        send(call)
        return
    except ApiError as error:
        body = call.body or {}
        if not cookie_refused(error) or "cookies" not in body:
            raise
        send.refused_cookie = error
    send(replace(call, body={name: value for name, value in body.items() if name != "cookies"}))


# SaaSquatch's code for a `cookies` it could not read ("You have passed an invalid cookie value").
COOKIE_REFUSED_RS_CODE = "RS052"


def cookie_refused(error: SaaSquatchError) -> bool:
    """SaaSquatch's RS052 (a 4xx): the upsert's `cookies` did not parse. Only that code: any
    other refusal is about the message and is judged as such."""
    return (
        isinstance(error, ApiError)
        and error.status is not None
        and 400 <= error.status < 500
        and (error.rs_code or "").strip().upper() == COOKIE_REFUSED_RS_CODE
    )


def _cookie_refused(error: ApiError, reason: Reason | None, sender: _Sender) -> Result:
    """Delivered, saying so: `cookie_refused` (it wins over `user_created`, which `detail`
    keeps) with SaaSquatch's codes for the log line; not its message, which may quote the
    cookie."""
    detail = "SaaSquatch refused the referral cookie; the user was upserted without it"
    if reason is not None:
        detail += f"; then {reason}"
    codes = tuple(
        (field, value)
        for field, value in (("api_error_code", error.api_error_code), ("rs_code", error.rs_code))
        if value is not None
    )
    return Result(
        Outcome.DELIVERED,
        Reason.COOKIE_REFUSED,
        detail,
        status=sender.last_status,
        codes=codes,
        calls=sender.calls,
    )


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
    _send_upsert(upsert, send)
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
        return SAASQUATCH.judge(None, str(error), silence=error.kind, calls=sender.calls)
    call = sender.current
    purpose = call.purpose if call is not None else None
    api = error if isinstance(error, ApiError) else None
    codes = tuple(
        (field, value)
        for field, value in (
            ("api_error_code", api.api_error_code if api else None),
            ("rs_code", api.rs_code if api else None),
        )
        if value is not None
    )
    detail = f"{purpose}: {error}"
    if sender.refused_cookie is not None:  # the failure came after a refused cookie: say both
        detail = f"the referral cookie refused ({COOKIE_REFUSED_RS_CODE}), then {detail}"
    if purpose is Purpose.TRACK_EVENT and error.status == 404:
        if sender.user_upserted:
            # The upsert has just succeeded, yet the user is missing: most likely replication
            # lag, so Pub/Sub tries again later (its dead-letter policy bounds the attempts).
            reason = Reason.USER_NOT_FOUND_AFTER_UPSERT
        else:
            reason = Reason.USER_NOT_FOUND
        return Result(
            reason.outcome,
            reason,
            detail,
            error.status,
            codes,
            calls=sender.calls,
            quoted=api.message if api else None,
        )
    return SAASQUATCH.judge(
        error.status,
        detail,
        own_format=api is not None,
        retry_after=error.retry_after,
        codes=codes,
        calls=sender.calls,
        quoted=api.message if api else None,
    )
