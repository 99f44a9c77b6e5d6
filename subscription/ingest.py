"""ingest: authenticate -> read (decoding gzip) -> parse -> (verify signature) -> complete each
message as Segment's API would -> publish every message -> answer (the steps around its own are
the receiver core's, `receiving.receiver`).

It answers 200 only once every message of the request is confirmed by Pub/Sub; anything short of
that is a 503, so Segment retries (Segment drops what we answer with a 4xx).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import flask

from common.http import Refusal, RetryLater
from common.outcomes import Reason
from common.request_log import Handler
from common.secrets import SecretUnavailable, secret_manager_fetch
from mapper.dialects import EXPECTED
from publisher import OutgoingMessage, Publisher, Topic
from receiving.receiver import Accepted, Body, Receiver, receiver

from .arrival import complete, path_type
from .body import SetAside, parse_messages
from .credentials import CHALLENGE, TokenVerifier, presented_token
from .ingest_settings import IngestSettings
from .raw_events import encode_raw_event
from .signature import check_signature

# Segment's Webhooks (Actions) destination lets its user pick any of these; they mean the same.
METHODS = ("POST", "PUT", "PATCH")
# What one request may publish, per byte of the body limit. Published messages are about as
# large as the body; a batch envelope's `context` is copied into every item, though, so a small
# body could otherwise become gigabytes of messages.
PUBLISHED_PER_BODY_BYTE = 2


def encoded_within(
    messages: list[dict[str, Any]], ordering: bool, budget: int, spent: int = 0
) -> list[OutgoingMessage]:
    """Every message encoded, or a 413 as soon as they pass `budget` bytes together (with the
    `spent` bytes of what else the request publishes)."""
    outgoing, total = [], spent
    for message in messages:
        if total > budget:
            break
        encoded = encode_raw_event(message, ordering)
        total += len(encoded.data)
        outgoing.append(encoded)
    if total > budget:
        raise Refusal(
            Reason.BODY_TOO_LARGE,
            f"the messages are over {budget} bytes once each batch item has the "
            "envelope's context: send smaller batches or a smaller envelope context",
        )
    return outgoing


# The attribute that marks an item ingest set aside (its value says why): deliver dead-letters
# such a message as `malformed_message`, keeping this attribute for the operator.
INVALID_ITEM_ATTRIBUTE = "invalidItem"


def set_aside_message(item: SetAside) -> OutgoingMessage:
    """An item that cannot be a message, as its text, for deliver to dead-letter."""
    return OutgoingMessage(item.text, {INVALID_ITEM_ATTRIBUTE: item.why[:256]})


class TokenStore(Protocol):
    """ingest's port to the accepted tokens (`TokenVerifier` in production): `verify` says
    whether a token is accepted, or raises `SecretUnavailable` when that cannot be known."""

    def verify(self, presented: str) -> bool: ...


def create_handler(
    settings: IngestSettings,
    *,
    raw_events: Topic | None = None,
    tokens: TokenStore | None = None,
) -> Handler:
    """The `ingest` request handler for these settings. Its ports (the raw-events topic, the
    token store) are built from the settings unless given; nothing is called until a request
    comes."""
    if tokens is None:
        tokens = TokenVerifier(
            settings.ingest_tokens,
            settings.ingest_token_secrets,
            secret_manager_fetch(settings.SECRET_MANAGER_ENDPOINT),
            settings.cache_policy,
        )
    if raw_events is None:
        raw_events = Publisher(
            settings.GOOGLE_CLOUD_PROJECT,
            settings.PUBSUB_TOPIC,
            ordering=settings.PUBSUB_ORDERING,
            timeout=settings.PUBLISH_TIMEOUT_SECONDS,
        )
    token_store, topic = tokens, raw_events
    limit = settings.MAX_BODY_BYTES

    def authenticate(request: flask.Request) -> None:
        token = presented_token(request.headers.get("Authorization"))
        try:
            accepted = token_store.verify(token)
        except SecretUnavailable:
            raise RetryLater(
                Reason.TOKEN_STORE_UNAVAILABLE, "token store unavailable, retry later"
            ) from None
        if not accepted:
            raise Refusal(Reason.WRONG_TOKEN, "wrong token", {"WWW-Authenticate": CHALLENGE})

    def accept(request: flask.Request, raw: bytes, _: None) -> Accepted:
        budget = PUBLISHED_PER_BODY_BYTE * limit
        items = parse_messages(raw, budget)
        if settings.SEGMENT_SHARED_SECRET:
            check_signature(
                settings.SEGMENT_SHARED_SECRET, request.headers.get("X-Signature"), raw, CHALLENGE
            )
        messages = items.messages
        complete(messages, path_type(request.path), datetime.now(UTC))
        # Set aside, but published all the same (deliver dead-letters them, with why); their
        # text counts against the same budget as the messages.
        set_aside = [set_aside_message(item) for item in items.set_aside]
        spent = sum(len(message.data) for message in set_aside)
        outgoing = encoded_within(messages, topic.ordering, budget, spent)
        outgoing += set_aside
        fields: dict[str, Any] = {"count": len(outgoing)}
        if items.set_aside:
            fields["invalid"] = len(items.set_aside)
            fields["invalid_why"] = sorted({item.why for item in items.set_aside})[:5]
            answer = {"accepted": len(outgoing), "invalid": len(items.set_aside)}
            return Accepted(outgoing, fields, answer)
        return Accepted(outgoing, fields)

    steps = Receiver(METHODS, Body(limit, EXPECTED, decode=True), authenticate, accept)
    return receiver("ingest", steps, topic=topic, settings=settings)
