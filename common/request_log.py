"""The request wrapper every entry point shares: time the request, turn an `EarlyAnswer` (a
refusal, a retry) or an unexpected exception into a JSON answer, and write exactly one
structured log line.

A side's handling returns `Handled` (its answer, its log fields, their severity); everything
common to every line (entry point, outcome, status, latency, trace) is added here, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import flask

from . import logs
from .http import EarlyAnswer, json_answer
from .outcomes import Outcome, Reason

Handler = Callable[[flask.Request], flask.Response]


@dataclass(frozen=True, slots=True)
class Handled:
    """How a side answered one request, and what its log line says (`outcome` at least)."""

    response: flask.Response
    fields: Mapping[str, Any] = field(default_factory=dict)
    level: int = logging.INFO


def logged(
    entry_point: str,
    handle: Callable[[flask.Request], Handled],
    logger: logging.Logger,
    project: str,
) -> Handler:
    """`handle` wrapped so that every request gets an answer and one log line.

    A refusal is logged with its reason (and that reason's outcome: `refused` for a 4xx, `retry`
    for a 503 the sender retries) and its message as `error`, at WARNING (ERROR for a 5xx).
    Anything else that escapes is a bug: the answer is a bare 500 `internal error` (which
    Segment and Pub/Sub both retry), the log line has the traceback.
    """

    def handler(request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        try:
            handled = handle(request)
        except EarlyAnswer as refusal:
            level = logging.ERROR if refusal.status >= 500 else logging.WARNING
            fields = {
                "outcome": refusal.reason.outcome,
                "reason": refusal.reason,
                "error": refusal.message,
            }
            if refusal.detail:
                fields["detail"] = refusal.detail
            handled = Handled(refusal.answer(request.environ.get("gunicorn.socket")), fields, level)
        except Exception:
            logger.exception(
                "%s failed", entry_point, extra={"fields": {"entry_point": entry_point}}
            )
            fields = {"outcome": Outcome.RETRY, "reason": Reason.INTERNAL_ERROR}
            handled = Handled(json_answer(500, {"error": "internal error"}), fields, logging.ERROR)
        status = handled.response.status_code
        line = {
            "entry_point": entry_point,
            **handled.fields,
            "status": status,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            **logs.trace_fields(request.headers.get("X-Cloud-Trace-Context"), project),
        }
        outcome = line.get("outcome", "")
        logger.log(handled.level, "%s %s %s", entry_point, outcome, status, extra={"fields": line})
        return handled.response

    return handler
