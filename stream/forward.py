"""forward: a pushed SaaSquatch webhook -> the stream table -> fitted to Segment's 32 KB ->
Segment's `/v1/batch` (the push core in `pushes.consumer` verifies, decodes, dead-letters and
answers, as for deliver)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from common import logs
from common.outcomes import Outcome, Reason
from common.request_log import Handler
from publisher import Topic
from pushes.consumer import Consumed, consumer
from pushes.dead_letters import dead_letter_topic
from pushes.envelope import PushEnvelope
from pushes.result import Result
from pushes.verdicts import Destination, Verdict
from segment_api.client import (
    MAX_MESSAGE_BYTES,
    KeyUnavailable,
    MessageTooLarge,
    SegmentClient,
    SegmentError,
    message_bytes,
)

from .forward_settings import ForwardSettings
from .mapping import Forwarding, fit, map_webhook

TRIMMED_LOGGED = 20  # names in the log line; the count is always whole

# What each verdict of the one table (`pushes.verdicts`) means for Segment. Segment's answers
# carry no codes of their own, and a timeout is one more way of not being reached.
SEGMENT = Destination(
    "segment",
    {
        Verdict.TIMEOUT: Reason.SEGMENT_UNREACHABLE,
        Verdict.UNREACHABLE: Reason.SEGMENT_UNREACHABLE,
        Verdict.KEY_UNAVAILABLE: Reason.WRITE_KEY_UNAVAILABLE,
        Verdict.RATE_LIMITED: Reason.SEGMENT_RATE_LIMITED,
        Verdict.UNAVAILABLE: Reason.SEGMENT_UNAVAILABLE,
        Verdict.UNEXPECTED_ANSWER: Reason.SEGMENT_REJECTED,
        Verdict.UNAUTHORIZED: Reason.SEGMENT_UNAUTHORIZED,
        Verdict.NOT_FOUND: Reason.SEGMENT_REJECTED,
        Verdict.REJECTED: Reason.SEGMENT_REJECTED,
    },
)


class Segment(Protocol):
    """forward's port to Segment (`SegmentClient` in production)."""

    def send_batch(self, messages: Sequence[dict[str, Any]]) -> int: ...


def classify(error: SegmentError) -> Result:
    """What Segment's refusal means for the webhook: retried, or a dead letter with why."""
    if isinstance(error, MessageTooLarge):
        return Result(Outcome.DEAD_LETTERED, Reason.SEGMENT_MESSAGE_TOO_LARGE, str(error))
    if isinstance(error, KeyUnavailable):
        return SEGMENT.judge(None, str(error), silence=Verdict.KEY_UNAVAILABLE)
    return SEGMENT.judge(error.status, str(error), retry_after=error.retry_after, calls=1)


def send(forwarding: Forwarding, client: Segment) -> Result:
    if forwarding.outcome is not Outcome.DELIVERED:
        return Result(forwarding.outcome, forwarding.reason, forwarding.detail)
    started = time.perf_counter()
    try:
        status = client.send_batch(forwarding.calls)
    except SegmentError as error:
        result = classify(error)
    else:
        result = Result(Outcome.DELIVERED, status=status, calls=1)
    if result.calls:
        waited = round((time.perf_counter() - started) * 1000, 2)
        result = replace(result, destination_ms=waited)
    return result


def log_fields(forwarding: Forwarding) -> dict[str, Any]:
    """forward's own log fields: the webhook type, and what was left out to fit (names, which
    are SaaSquatch's or the tenant's custom fields' and never values; redacted all the same)."""
    fields: dict[str, Any] = {}
    if forwarding.webhook_type:
        fields["webhook_type"] = forwarding.webhook_type[:64]
    if forwarding.trimmed:
        names = forwarding.trimmed[:TRIMMED_LOGGED]
        fields["trimmed_fields"] = [logs.redact(name[:64]) for name in names]
        fields["trimmed_count"] = len(forwarding.trimmed)
    return fields


def create_handler(
    settings: ForwardSettings,
    *,
    segment: Segment | None = None,
    dead_letters: Topic | None = None,
) -> Handler:
    """The `forward` request handler for these settings. Its ports (Segment, the dead-letter
    topic) are built from the settings unless given; nothing is called until a request comes."""
    if segment is None:
        write_key = settings.required_secret(
            settings.SEGMENT_WRITE_KEY, settings.SEGMENT_WRITE_KEY_SECRET
        )
        segment = SegmentClient(
            settings.SEGMENT_API_BASE_URL, write_key, timeout=settings.SEGMENT_TIMEOUT_SECONDS
        )
    options = settings.stream_options
    dead_letters = dead_letters or dead_letter_topic(settings, settings.FORWARD_DEAD_LETTER_TOPIC)

    def handle(webhook: dict[str, Any], envelope: PushEnvelope) -> Consumed:
        forwarding = fit(map_webhook(webhook, options), MAX_MESSAGE_BYTES, message_bytes)
        return Consumed(send(forwarding, segment), log_fields(forwarding))

    return consumer(
        "forward",
        handle,
        destination=SEGMENT.name,
        dead_letters=dead_letters,
        settings=settings,
    )
