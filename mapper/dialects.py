"""The body shapes (dialects) Segment sends. Pure: no HTTP, no I/O (strict JSON itself is
`common.strict_json`).

Shapes: one message (an object), a JSON array of messages (Webhooks Actions batching), or an HTTP
API envelope `{"batch": [...], "context": {...}, "integrations": {...}}`. ingest, the backfill
files and the mapping preview all read bodies through `messages_from_body`; a new dialect goes
here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ENVELOPE_KEYS = ("context", "integrations")  # merged into each item's, one level deep
ENVELOPE_TIMES = ("sentAt",)  # given to each item that has none
# Merging copies the envelope's top-level keys into every item; beyond this many copies a small
# body would cost far more memory than its size.
MAX_MERGED_KEYS = 1_000_000
EXPECTED = "a Segment message, an array of them or a batch"


def reject_constant(name: str) -> Any:
    """`parse_constant` for strict JSON: `NaN` and `Infinity` are JavaScript, not JSON."""
    raise ValueError(f"{name} is not JSON")


class BodyError(ValueError):
    """A request body that is not one of the accepted Segment shapes."""


def messages_from_body(body: Any) -> list[dict[str, Any]]:
    """A Segment request body's messages, each merged with the envelope (`split_body`), or
    `BodyError` when an item is not an object (ingest judges items one by one instead)."""
    batch = split_body(body)
    for index, item in enumerate(batch.items):
        if not isinstance(item, dict):
            raise BodyError(f"item {index} is not a JSON object")
    return [batch.merged(item) for item in batch.items]


@dataclass(frozen=True, slots=True)
class Batch:
    """A body's items as sent, and what its envelope gives each object item (`merged`)."""

    items: list[Any]
    envelope: dict[str, dict[str, Any]] = field(default_factory=dict)
    times: dict[str, str] = field(default_factory=dict)

    def merged(self, item: Any) -> Any:
        """`item` with the envelope's `context`/`integrations` merged in, one level deep (the
        item's keys winning), and its `sentAt` when the item has none; other items as they
        are."""
        if not (self.envelope or self.times) or not isinstance(item, dict):
            return item
        return _merge_envelope(self.envelope, self.times, item)


def split_body(body: Any) -> Batch:
    """A Segment request body's items and envelope, or `BodyError`.

    Accepted: one message (object), a JSON array of messages (Webhooks Actions batching), or an
    HTTP API envelope `{"batch": [...], "context": {...}, "integrations": {...}, "sentAt": ...}`.
    Anything else in the envelope (an SDK's `writeKey`) is dropped.
    """
    if isinstance(body, list):
        return Batch(body)
    if isinstance(body, dict) and "batch" in body and "type" not in body:
        items = body["batch"]
        if not isinstance(items, list):
            raise BodyError('"batch" must be an array of messages')
        envelope = {key: body[key] for key in ENVELOPE_KEYS if isinstance(body.get(key), dict)}
        times = {key: body[key] for key in ENVELOPE_TIMES if isinstance(body.get(key), str)}
        copies = len(items) * sum(len(outer) for outer in envelope.values())
        if copies > MAX_MERGED_KEYS:
            raise BodyError(
                f"the envelope's context and integrations would be copied into {len(items)} "
                f"items ({copies} keys): send smaller batches or a smaller envelope"
            )
        return Batch(items, envelope, times)
    if isinstance(body, dict):
        return Batch([body])
    raise BodyError("body must be a JSON object, an array of objects or a batch envelope")


def _merge_envelope(
    envelope: dict[str, dict[str, Any]], times: dict[str, str], item: dict[str, Any]
) -> dict[str, Any]:
    merged = {**times, **item}
    for key, outer in envelope.items():
        inner = item.get(key)
        merged[key] = {**outer, **inner} if isinstance(inner, dict) else inner or dict(outer)
    return merged
