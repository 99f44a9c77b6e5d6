"""What deliver answers Pub/Sub for a finished message, and what its log line says.

Pub/Sub acknowledges a 2xx and redelivers anything else, so every outcome but `retry` is a 200;
a retry is 429 when SaaSquatch said 429 (else 503), with SaaSquatch's `Retry-After` passed on.
Never 202 (the emulator counts it as a failure).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import flask

from common.http import json_answer
from common.logs import redact
from common.outcomes import Outcome
from mapper import Plan

from .envelope import PushEnvelope
from .execute import Result

LEVELS = {
    Outcome.DELIVERED: logging.INFO,
    Outcome.IGNORED: logging.INFO,
    Outcome.RETRY: logging.WARNING,
    Outcome.DEAD_LETTERED: logging.ERROR,
}
DETAIL_CHARS = 500


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
    return json_answer(429 if result.status == 429 else 503, body, headers)


def log_fields(
    envelope: PushEnvelope, plan: Plan | None, result: Result, dry_run: bool
) -> dict[str, Any]:
    """The message's part of deliver's log line: names, ids and codes, never values (email
    addresses SaaSquatch quotes in an error detail are redacted)."""
    fields: dict[str, Any] = {
        "outcome": result.outcome,
        "reason": result.reason,
        "detail": redact(result.detail[:DETAIL_CHARS]) if result.detail else None,
        "message_type": plan.message_type if plan else None,
        "event_key": plan.event_key if plan else None,
        "idempotency_key": plan.idempotency_key if plan else None,
        "saasquatch_status": result.status,
        "api_error_code": result.api_error_code,
        "rs_code": result.rs_code,
        "retry_after": result.retry_after,
        "calls": result.calls,
        "saasquatch_ms": result.saasquatch_ms,
        "dry_run": dry_run,
        "pubsub_message_id": envelope.message.message_id,
        "delivery_attempt": envelope.delivery_attempt,
        "notes": list(plan.notes) if plan and plan.notes else None,
    }
    return {name: value for name, value in fields.items() if value is not None}
