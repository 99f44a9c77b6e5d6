"""A Segment message encoded as ingest publishes it to the raw-events topic.

Backfill and dead-letter replay publish through these too, so every path into the topic makes
the same data, attributes and ordering key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from common.text import cut_bytes, id_text, valid_text
from publisher import ORIGIN_ATTRIBUTE, Origin, OutgoingMessage

# Pub/Sub's limit for an attribute value and an ordering key, in UTF-8 bytes.
ATTRIBUTE_BYTES = 1024


def encode_raw_event(
    message: Mapping[str, Any], ordering: bool, origin: Origin | None = None
) -> OutgoingMessage:
    """Its compact JSON, `type`/`messageId` attributes (and `origin` for a tool's message), and
    with ordering on, the key `userId` (else `anonymousId`)."""
    attributes: dict[str, str] = {ORIGIN_ATTRIBUTE: origin} if origin else {}
    kind = message.get("type")
    if isinstance(kind, str) and kind:
        attributes["type"] = cut_bytes(kind, ATTRIBUTE_BYTES)
    message_id = id_text(message.get("messageId"))
    if message_id:
        attributes["messageId"] = cut_bytes(message_id, ATTRIBUTE_BYTES)
    return OutgoingMessage(
        raw_event_data(message), attributes, ordering_key(message) if ordering else ""
    )


def raw_event_data(message: Mapping[str, Any]) -> bytes:
    """Compact JSON in valid UTF-8, non-ASCII raw. A lone surrogate (valid in a JSON escape, as
    JavaScript writes one, but not in UTF-8 nor in most consumers) becomes U+FFFD."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return valid_text(text).encode("utf-8")


def ordering_key(message: Mapping[str, Any]) -> str:
    """One user's key: `userId`, else `anonymousId` (empty when it has neither)."""
    key = id_text(message.get("userId")) or id_text(message.get("anonymousId")) or ""
    return cut_bytes(key, ATTRIBUTE_BYTES)
