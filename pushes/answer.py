"""What a consumer answers Pub/Sub for a finished message, and its log line's message part.

Pub/Sub acknowledges a 2xx and redelivers anything else, so every outcome but `retry` is a 200;
a retry's status follows from its reason (429 when the destination said 429, else 503), with the
destination's `Retry-After` passed on. Never 202 (the emulator counts it as a failure).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import flask

from common.http import json_answer
from common.outcomes import Outcome

from .envelope import PushEnvelope
from .result import Result

LEVELS = {
    Outcome.DELIVERED: logging.INFO,
    Outcome.IGNORED: logging.INFO,
    Outcome.RETRY: logging.WARNING,
    Outcome.DEAD_LETTERED: logging.ERROR,
}


def push_answer(result: Result) -> flask.Response:
    body: dict[str, Any] = {"outcome": result.outcome}
    if result.reason:
        body["reason"] = result.reason
    if result.outcome is not Outcome.RETRY:
        return json_answer(200, body)
    body["error"] = f"not delivered yet ({result.reason}); Pub/Sub will redeliver"
    headers = {}
    if result.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(result.retry_after))
    status = result.reason.status if result.reason else 503
    return json_answer(status, body, headers)


def log_fields(
    envelope: PushEnvelope,
    result: Result,
    destination: str,
    message_fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The message's part of a consumer's log line: names, ids and codes, never values (email
    addresses a destination quotes in an error detail are redacted). `destination` prefixes
    what the destination said (`saasquatch_status`, `segment_ms`); `message_fields` are the
    consumer's own (what the message was)."""
    fields: dict[str, Any] = {
        "outcome": result.outcome,
        "reason": result.reason,
        "detail": result.detail,  # masked by the log rule (common.logs.safe_fields)
        **message_fields,
        f"{destination}_status": result.status,
        **dict(result.codes),
        "retry_after": result.retry_after,
        "calls": result.calls,
        f"{destination}_ms": result.destination_ms,
        "pubsub_message_id": envelope.message.message_id,
        "delivery_attempt": envelope.delivery_attempt,
    }
    return {name: value for name, value in fields.items() if value is not None}
