"""Cloud Run entry points (`ingest`: the Segment webhook). Wiring only."""

from __future__ import annotations

import json
import logging
import sys
import time
from functools import lru_cache

import flask
import functions_framework

import logs
import settings
import webhook
from publisher import Publisher, PublishError, segment_message
from secret_store import SecretUnavailable, TokenVerifier, secret_manager_fetch

try:
    SETTINGS = settings.load()
except settings.ConfigError as problem:
    sys.stderr.write(f"{problem}\n")
    sys.exit(1)

LOG = logs.setup(SETTINGS.LOG_LEVEL)


def _answer(status: int, body: dict, headers: dict[str, str] | None = None) -> flask.Response:
    return flask.Response(
        json.dumps(body), status=status, headers=headers, mimetype="application/json"
    )


@lru_cache(maxsize=1)
def _tokens() -> TokenVerifier:
    return TokenVerifier(
        SETTINGS.ingest_tokens,
        SETTINGS.ingest_token_secrets,
        secret_manager_fetch(SETTINGS.SECRET_MANAGER_ENDPOINT),
        cache_seconds=SETTINGS.SECRET_CACHE_SECONDS,
        min_refresh_seconds=SETTINGS.SECRET_REFRESH_MIN_SECONDS,
    )


@lru_cache(maxsize=1)
def _raw_events() -> Publisher:
    return Publisher(
        SETTINGS.GOOGLE_CLOUD_PROJECT,
        SETTINGS.PUBSUB_TOPIC,
        ordering=SETTINGS.PUBSUB_ORDERING,
        timeout=SETTINGS.PUBLISH_TIMEOUT_SECONDS,
    )


def _receive(request: flask.Request) -> int:
    """authenticate -> read and parse -> publish all; the number of messages accepted."""
    if request.method != "POST":
        raise webhook.Refusal(405, "only POST is accepted", {"Allow": "POST"})
    token = webhook.bearer_token(request.headers.get("Authorization"))
    try:
        if not _tokens().verify(token):
            raise webhook.unauthorized("wrong bearer token")
    except SecretUnavailable:
        raise webhook.Refusal(503, "token store unavailable, retry later") from None
    raw = webhook.read_body(request.stream, request.content_length, SETTINGS.MAX_BODY_BYTES)
    messages = webhook.parse_messages(raw)
    if SETTINGS.SEGMENT_SHARED_SECRET:
        webhook.check_signature(
            SETTINGS.SEGMENT_SHARED_SECRET, request.headers.get("X-Signature"), raw, messages
        )
    outgoing = [segment_message(message, SETTINGS.PUBSUB_ORDERING) for message in messages]
    try:
        _raw_events().publish_all(outgoing)
    except PublishError as error:
        raise webhook.Refusal(503, f"could not publish to Pub/Sub: {error}") from None
    return len(messages)


@functions_framework.http
def ingest(request: flask.Request) -> flask.Response:
    """Segment webhook: 200 only once every message of the request is durably in Pub/Sub."""
    started = time.perf_counter()
    count, outcome = 0, "accepted"
    try:
        count = _receive(request)
        response = _answer(200, {"accepted": count})
    except webhook.Refusal as refusal:
        outcome = refusal.message
        response = _answer(refusal.status, {"error": refusal.message}, refusal.headers)
    except Exception:
        LOG.exception("ingest failed", extra={"fields": {"entry_point": "ingest"}})
        outcome = "internal error"
        response = _answer(500, {"error": "internal error"})
    fields = {
        "entry_point": "ingest",
        "status": response.status_code,
        "count": count,
        "outcome": outcome,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        **logs.trace_fields(
            request.headers.get("X-Cloud-Trace-Context"), SETTINGS.GOOGLE_CLOUD_PROJECT
        ),
    }
    level = logging.INFO if response.status_code < 500 else logging.ERROR
    LOG.log(level, "ingest %s", response.status_code, extra={"fields": fields})
    return response
