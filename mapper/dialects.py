"""The body shapes (dialects) Segment sends, and strict JSON. Pure: no HTTP, no I/O.

Shapes: one message (an object), a JSON array of messages (Webhooks Actions batching), or an HTTP
API envelope `{"batch": [...], "context": {...}, "integrations": {...}}`. ingest, the backfill
files and the mapping preview all read bodies through `messages_from_body`; a new dialect goes
here.
"""

from __future__ import annotations

import math
from typing import Any

ENVELOPE_KEYS = ("context", "integrations")  # merged into each item's, one level deep
ENVELOPE_TIMES = ("sentAt",)  # given to each item that has none
# Merging copies the envelope's top-level keys into every item; beyond this many copies a small
# body would cost far more memory than its size.
MAX_MERGED_KEYS = 1_000_000
EXPECTED = "a Segment message, an array of them or a batch"


class NotJson(ValueError):
    """Text the JSON parser takes but JSON (and so every consumer downstream) does not."""


def reject_constant(name: str) -> Any:
    """`parse_constant` for strict JSON: `NaN` and `Infinity` are JavaScript, not JSON."""
    raise NotJson(f"{name} is not JSON")


def finite_float(text: str) -> float:
    """`parse_float` that refuses what only fits as infinity (`1e999`): it cannot be published
    as JSON again, nor sent anywhere."""
    value = float(text)
    if not math.isfinite(value):
        raise NotJson(f"the number {text[:24]} is too large")
    return value


class BodyError(ValueError):
    """A request body that is not one of the accepted Segment shapes."""


def messages_from_body(body: Any) -> list[dict[str, Any]]:
    """Split a Segment request body into messages.

    Accepted: one message (object), a JSON array of messages (Webhooks Actions batching), or an
    HTTP API envelope `{"batch": [...], "context": {...}, "integrations": {...}, "sentAt": ...}`
    whose `context`/`integrations` are merged into each item's, one level deep, the item's keys
    winning, and whose `sentAt` goes to each item without one. Anything else in the envelope
    (an SDK's `writeKey`) is dropped.
    """
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict) and "batch" in body and "type" not in body:
        items = body["batch"]
        if not isinstance(items, list):
            raise BodyError('"batch" must be an array of messages')
        envelope = {key: body[key] for key in ENVELOPE_KEYS if isinstance(body.get(key), dict)}
        times = {key: body[key] for key in ENVELOPE_TIMES if isinstance(body.get(key), str)}
        if envelope or times:
            if not all(isinstance(item, dict) for item in items):
                raise BodyError("every item of the batch must be a JSON object")
            copies = len(items) * sum(len(outer) for outer in envelope.values())
            if copies > MAX_MERGED_KEYS:
                raise BodyError(
                    f"the envelope's context and integrations would be copied into {len(items)} "
                    f"items ({copies} keys): send smaller batches or a smaller envelope"
                )
            items = [_merge_envelope(envelope, times, item) for item in items]
    elif isinstance(body, dict):
        return [body]
    else:
        raise BodyError("body must be a JSON object, an array of objects or a batch envelope")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BodyError(f"item {index} is not a JSON object")
    return items


def _merge_envelope(
    envelope: dict[str, dict[str, Any]], times: dict[str, str], item: dict[str, Any]
) -> dict[str, Any]:
    merged = {**times, **item}
    for key, outer in envelope.items():
        inner = item.get(key)
        merged[key] = {**outer, **inner} if isinstance(inner, dict) else inner or dict(outer)
    return merged
