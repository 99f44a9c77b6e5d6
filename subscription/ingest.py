"""ingest: authenticate -> read (decoding gzip) -> parse -> (verify signature) -> complete each
message as Segment's API would -> publish every message -> answer.

It answers 200 only once every message of the request is confirmed by Pub/Sub; anything short of
that is a 503, so Segment retries (Segment drops what we answer with a 4xx).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask

from common import logs
from common.deadlines import BodyDeadlines
from common.http import Refusal, RetryLater, json_answer, read_body, require_method
from common.outcomes import Outcome, Reason
from common.request_log import Handled, Handler, logged
from common.secrets import SecretUnavailable, secret_manager_fetch
from mapper.dialects import EXPECTED
from publisher import OutgoingMessage, Publisher
from receiving.publishing import publish_or_retry
from subscription.arrival import complete, path_type
from subscription.body import parse_messages
from subscription.credentials import CHALLENGE, TokenVerifier, presented_token
from subscription.ingest_settings import IngestSettings
from subscription.raw_events import encode_raw_event
from subscription.signature import check_signature

# Segment's Webhooks (Actions) destination lets its user pick any of these; they mean the same.
METHODS = ("POST", "PUT", "PATCH")
# What one request may publish, per byte of the body limit. Published messages are about as
# large as the body; a batch envelope's `context` is copied into every item, though, so a small
# body could otherwise become gigabytes of messages.
PUBLISHED_PER_BODY_BYTE = 2


def encoded_within(
    messages: list[dict[str, Any]], ordering: bool, budget: int
) -> list[OutgoingMessage]:
    """Every message encoded, or a 413 as soon as they pass `budget` bytes together."""
    outgoing, total = [], 0
    for message in messages:
        encoded = encode_raw_event(message, ordering)
        total += len(encoded.data)
        if total > budget:
            raise Refusal(
                Reason.BODY_TOO_LARGE,
                f"the messages are over {budget} bytes once each batch item has the "
                "envelope's context: send smaller batches or a smaller envelope context",
            )
        outgoing.append(encoded)
    return outgoing


def create_handler(settings: IngestSettings) -> Handler:
    """The `ingest` request handler for these settings. Builds clients but makes no call."""
    logger = logs.setup(settings.LOG_LEVEL)
    tokens = TokenVerifier(
        settings.ingest_tokens,
        settings.ingest_token_secrets,
        secret_manager_fetch(settings.SECRET_MANAGER_ENDPOINT),
        cache_seconds=settings.SECRET_CACHE_SECONDS,
        min_refresh_seconds=settings.SECRET_REFRESH_MIN_SECONDS,
        max_stale_seconds=settings.SECRET_MAX_STALE_SECONDS,
    )
    raw_events = Publisher(
        settings.GOOGLE_CLOUD_PROJECT,
        settings.PUBSUB_TOPIC,
        ordering=settings.PUBSUB_ORDERING,
        timeout=settings.PUBLISH_TIMEOUT_SECONDS,
    )

    limit = settings.MAX_BODY_BYTES
    deadlines = BodyDeadlines(settings.BODY_TIMEOUT_SECONDS)

    def receive(request: flask.Request) -> Handled:
        require_method(request.method, METHODS)
        token = presented_token(request.headers.get("Authorization"))
        try:
            if not tokens.verify(token):
                raise Refusal(
                    Reason.WRONG_TOKEN,
                    "wrong token",
                    {"WWW-Authenticate": CHALLENGE},
                    unread=True,
                )
        except SecretUnavailable:
            raise RetryLater(
                Reason.TOKEN_STORE_UNAVAILABLE,
                "token store unavailable, retry later",
                unread=True,
            ) from None
        raw = read_body(request, limit, EXPECTED, deadlines, decode=True)
        messages = parse_messages(raw)
        if settings.SEGMENT_SHARED_SECRET:
            check_signature(
                settings.SEGMENT_SHARED_SECRET, request.headers.get("X-Signature"), raw, CHALLENGE
            )
        complete(messages, path_type(request.path), datetime.now(UTC))
        outgoing = encoded_within(messages, raw_events.ordering, PUBLISHED_PER_BODY_BYTE * limit)
        publish_or_retry(raw_events, outgoing)
        fields = {"outcome": Outcome.ACCEPTED, "count": len(messages)}
        return Handled(json_answer(200, {"accepted": len(messages)}), fields)

    return logged("ingest", receive, logger, settings.GOOGLE_CLOUD_PROJECT)
