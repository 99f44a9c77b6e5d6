"""Cloud Run entry points: `ingest` (the Segment webhook) and `deliver` (the Pub/Sub push
endpoint). Wiring only: each step lives in its own module."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import flask
import functions_framework

import delivery
import logs
import push
import settings
import webhook
from mapper import Plan, map_message
from publisher import Publisher, PublishError, dead_letter_message, segment_message
from push_auth import PushRefused, PushVerifier
from saasquatch import DryRunClient, FixedApiKey, SaaSquatchClient
from secret_store import SecretUnavailable, SecretValue, TokenVerifier, secret_manager_fetch

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
    webhook.require_post(request.method)
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


# --- deliver: Pub/Sub push -> SaaSquatch ---------------------------------------------------------


@lru_cache(maxsize=1)
def _saasquatch() -> SaaSquatchClient | DryRunClient:
    if SETTINGS.dry_run:
        return DryRunClient(SETTINGS.SAASQUATCH_BASE_URL, SETTINGS.SAASQUATCH_TENANT_ALIAS, LOG)
    api_key: FixedApiKey | SecretValue
    if SETTINGS.SAASQUATCH_API_KEY:
        api_key = FixedApiKey(SETTINGS.SAASQUATCH_API_KEY)
    else:
        api_key = SecretValue(
            SETTINGS.SAASQUATCH_API_KEY_SECRET,
            secret_manager_fetch(SETTINGS.SECRET_MANAGER_ENDPOINT),
            cache_seconds=SETTINGS.SECRET_CACHE_SECONDS,
            min_refresh_seconds=SETTINGS.SECRET_REFRESH_MIN_SECONDS,
        )
    return SaaSquatchClient(
        SETTINGS.SAASQUATCH_BASE_URL,
        SETTINGS.SAASQUATCH_TENANT_ALIAS,
        api_key,
        timeout=SETTINGS.SAASQUATCH_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=1)
def _push_verifier() -> PushVerifier | None:
    if not SETTINGS.PUSH_AUDIENCE:
        return None
    return PushVerifier(
        SETTINGS.PUSH_AUDIENCE, SETTINGS.PUSH_SERVICE_ACCOUNT, SETTINGS.PUSH_CERTS_URL
    )


@lru_cache(maxsize=1)
def _dead_letters() -> Publisher:
    return Publisher(
        SETTINGS.GOOGLE_CLOUD_PROJECT,
        SETTINGS.DEAD_LETTER_TOPIC,
        ordering=False,
        timeout=SETTINGS.PUBLISH_TIMEOUT_SECONDS,
    )


def _authenticate_push(request: flask.Request) -> None:
    verifier = _push_verifier()
    if verifier is None:
        return
    try:
        verifier.verify(request.headers.get("Authorization"))
    except PushRefused as refused:
        headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
        raise webhook.Refusal(refused.status, refused.message, headers) from None


def _run(envelope: push.PushEnvelope) -> tuple[Plan | None, delivery.Result]:
    """decode -> map -> send; a message that cannot be delivered is dead-lettered here."""
    plan = None
    try:
        message = push.segment_message(envelope.message.data)
    except push.MalformedMessage as error:
        result = delivery.Result(delivery.Status.DEAD_LETTERED, "malformed_message", str(error))
    else:
        plan = map_message(message, SETTINGS.mapping_options, now=datetime.now(UTC))
        result = delivery.execute(plan, _saasquatch().send)
    if result.outcome is delivery.Status.DEAD_LETTERED:
        result = _dead_letter(envelope, result)
    return plan, result


def _dead_letter(envelope: push.PushEnvelope, result: delivery.Result) -> delivery.Result:
    """Publish to the dead-letter topic; if that fails, Pub/Sub must redeliver (never lose it)."""
    pushed = envelope.message
    outgoing = dead_letter_message(
        pushed.data,
        pushed.attributes,
        reason=result.reason or "undeliverable",
        when=datetime.now(UTC),
        detail=result.detail,
        status=result.status,
        api_error_code=result.api_error_code,
        rs_code=result.rs_code,
        source_message_id=pushed.message_id,
        subscription=envelope.subscription,
        delivery_attempt=envelope.delivery_attempt,
        ordering_key=pushed.ordering_key,
    )
    try:
        _dead_letters().publish_all([outgoing])
    except PublishError as error:
        return delivery.Result(
            delivery.Status.RETRY,
            "dead_letter_publish_failed",
            f"{result.reason}: {error}",
            status=result.status,
            calls=result.calls,
        )
    return result


def _push_answer(result: delivery.Result) -> flask.Response:
    body: dict[str, Any] = {"outcome": str(result.outcome)}
    if result.reason:
        body["reason"] = result.reason
    if result.outcome is not delivery.Status.RETRY:
        return _answer(200, body)
    body["error"] = f"not delivered yet ({result.reason}); Pub/Sub will redeliver"
    headers = {}
    if result.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(result.retry_after))
    return _answer(429 if result.status == 429 else 503, body, headers)


_LEVELS = {
    delivery.Status.DELIVERED: logging.INFO,
    delivery.Status.IGNORED: logging.INFO,
    delivery.Status.RETRY: logging.WARNING,
    delivery.Status.DEAD_LETTERED: logging.ERROR,
}


def _result_fields(
    envelope: push.PushEnvelope, plan: Plan | None, result: delivery.Result
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "outcome": str(result.outcome),
        "reason": result.reason,
        "detail": logs.redact_emails(result.detail[:500]) if result.detail else None,
        "message_type": plan.message_type if plan else None,
        "event_key": plan.event_key if plan else None,
        "idempotency_key": plan.idempotency_key if plan else None,
        "saasquatch_status": result.status,
        "api_error_code": result.api_error_code,
        "rs_code": result.rs_code,
        "retry_after": result.retry_after,
        "calls": result.calls,
        "dry_run": SETTINGS.dry_run,
        "pubsub_message_id": envelope.message.message_id,
        "delivery_attempt": envelope.delivery_attempt,
        "notes": list(plan.notes) if plan and plan.notes else None,
    }
    return {name: value for name, value in fields.items() if value is not None}


@functions_framework.http
def deliver(request: flask.Request) -> flask.Response:
    """Pub/Sub push: 200 once the message is delivered, ignored by design or dead-lettered;
    429/503 (Pub/Sub redelivers) while SaaSquatch or the dead-letter topic is unavailable."""
    started = time.perf_counter()
    fields: dict[str, Any] = {"entry_point": "deliver"}
    level = logging.INFO
    try:
        webhook.require_post(request.method)
        _authenticate_push(request)
        raw = webhook.read_body(
            request.stream, request.content_length, push.MAX_PUSH_BYTES, "a Pub/Sub push envelope"
        )
        try:
            envelope = push.parse_envelope(raw)
        except push.NotAnEnvelope as error:
            raise webhook.Refusal(400, str(error)) from None
        plan, result = _run(envelope)
        fields.update(_result_fields(envelope, plan, result))
        level = _LEVELS[result.outcome]
        response = _push_answer(result)
    except webhook.Refusal as refusal:
        fields.update(outcome="refused", reason=refusal.message)
        level = logging.WARNING
        response = _answer(refusal.status, {"error": refusal.message}, refusal.headers)
    except Exception:
        LOG.exception("deliver failed", extra={"fields": {"entry_point": "deliver"}})
        fields.update(outcome="retry", reason="internal_error")
        level = logging.ERROR
        response = _answer(500, {"error": "internal error"})
    fields["status"] = response.status_code
    fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    fields.update(
        logs.trace_fields(
            request.headers.get("X-Cloud-Trace-Context"), SETTINGS.GOOGLE_CLOUD_PROJECT
        )
    )
    LOG.log(level, "deliver %s", fields["outcome"], extra={"fields": fields})
    return response
