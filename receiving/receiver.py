"""The receiver core both public receivers run: method -> credentials (before a byte of the body
is read) -> the body, bounded in size and time -> the receiver's own checks and parsing ->
publish every message -> 200 (or, for a request dropped by design, 200 with nothing published).
A receiver (ingest, saasquatch_webhook) supplies only its two checks; refusals raised anywhere
become JSON answers with one log line (`common.request_log`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import flask

from common import logs
from common.deadlines import BodyDeadlines
from common.http import before_the_body, json_answer, read_body, require_method
from common.outcomes import Outcome, Reason
from common.request_log import Handled, Handler, logged
from common.settings import ServiceSettings
from publisher import OutgoingMessage, Topic

from .publishing import publish_or_retry

Checked = TypeVar("Checked")


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a receiver makes of a body: the messages to publish and its log fields (names, ids,
    counts; never values)."""

    messages: Sequence[OutgoingMessage]
    fields: Mapping[str, Any] = field(default_factory=dict)
    answer: Mapping[str, Any] | None = None  # the 200's body; `{"accepted": n}` by default


@dataclass(frozen=True, slots=True)
class Ignored:
    """A request taken and dropped by design (answered 200 so the sender stops retrying,
    nothing published): `reason` is an ignored one, `level` says how loudly it is logged."""

    reason: Reason
    fields: Mapping[str, Any] = field(default_factory=dict)
    level: int = logging.INFO


@dataclass(frozen=True, slots=True)
class Body:
    """How a receiver reads a body: at most `limit` bytes (decoded, with `decode`), what the
    sender should send (`expected`, for the refusals)."""

    limit: int
    expected: str
    decode: bool = False


@dataclass(frozen=True, slots=True)
class Receiver(Generic[Checked]):
    """A receiver's own steps: `authenticate` runs before the body is read (it refuses, or
    returns what `accept` needs to finish the check), `accept` after."""

    methods: Sequence[str]
    body: Body
    authenticate: Callable[[flask.Request], Checked]
    accept: Callable[[flask.Request, bytes, Checked], Accepted | Ignored]


def receiver(
    entry_point: str, steps: Receiver[Checked], *, topic: Topic, settings: ServiceSettings
) -> Handler:
    """The request handler: 200 (`{"accepted": n}`) only once Pub/Sub confirmed every
    message."""

    def receive(request: flask.Request) -> Handled:
        with before_the_body():
            require_method(request.method, steps.methods)
            checked = steps.authenticate(request)
        body = steps.body
        raw = read_body(request, body.limit, body.expected, deadlines, decode=body.decode)
        accepted = steps.accept(request, raw, checked)
        if isinstance(accepted, Ignored):
            dropped = {"outcome": Outcome.IGNORED, "reason": accepted.reason, **accepted.fields}
            ignored = {"accepted": 0, "ignored": str(accepted.reason)}
            return Handled(json_answer(200, ignored), dropped, accepted.level)
        publish_or_retry(topic, accepted.messages)
        fields = {"outcome": Outcome.ACCEPTED, **accepted.fields}
        answer = accepted.answer or {"accepted": len(accepted.messages)}
        return Handled(json_answer(200, answer), fields)

    deadlines = BodyDeadlines(settings.BODY_TIMEOUT_SECONDS)
    logger = logs.setup(settings.LOG_LEVEL)
    return logged(entry_point, receive, logger, settings.GOOGLE_CLOUD_PROJECT)
