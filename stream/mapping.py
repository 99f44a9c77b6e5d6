"""Pure SaaSquatch webhook -> Segment mapping: one webhook in, a `Forwarding` out. No I/O.

The forward path's mapper, the mirror of `mapper` (Segment -> SaaSquatch): `STREAMS` declares
each webhook type's Segment call and `map_webhook` runs any row of it. The Segment message id
comes from the webhook's `id`, which SaaSquatch keeps across its retries, so Segment (which
deduplicates by `messageId`) counts a retried webhook once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.outcomes import Outcome, Reason
from common.text import id_text, iso_millis

from .table import STREAMS, Paths, Stream

__all__ = ["LIBRARY", "STREAMS", "Forwarding", "StreamOptions", "map_webhook", "message_id"]

LIBRARY = {"name": "segment-saasquatch", "version": "0.1.0"}
MESSAGE_ID_MAX = 99  # Segment: "less than 100 characters"
_PREFIX = "saasquatch-"


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """`types`: the webhook types forwarded (None: every type `STREAMS` declares)."""

    types: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Forwarding:
    """What one webhook becomes: `delivered` (send `calls` to Segment in one batch),
    `ignored` or `dead_lettered` (no calls; `reason` says why)."""

    outcome: Outcome
    reason: Reason | None = None
    detail: str | None = None
    webhook_type: str | None = None
    calls: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": str(self.outcome)}
        for name in ("reason", "detail", "webhook_type"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.calls:
            out["calls"] = list(self.calls)
        return out


def message_id(webhook_id: str) -> str:
    """`saasquatch-<id>`, or a SHA-256 of the id when that would pass Segment's limit."""
    candidate = _PREFIX + webhook_id
    if len(candidate) <= MESSAGE_ID_MAX:
        return candidate
    return _PREFIX + hashlib.sha256(webhook_id.encode("utf-8", "surrogatepass")).hexdigest()


def map_webhook(webhook: Any, options: StreamOptions | None = None) -> Forwarding:
    """Decide what one webhook becomes. Never raises: every input ends in a Forwarding."""
    options = options or StreamOptions()
    try:
        return _map(webhook, options)
    except Exception as error:  # a bug or a pathological value: a dead letter, not a loss
        return Forwarding(Outcome.DEAD_LETTERED, Reason.MAPPING_ERROR, type(error).__name__)


def _invalid(detail: str, kind: str | None = None) -> Forwarding:
    return Forwarding(Outcome.DEAD_LETTERED, Reason.INVALID_WEBHOOK, detail, kind)


def _map(webhook: Any, options: StreamOptions) -> Forwarding:
    if not isinstance(webhook, dict):
        return _invalid("a webhook must be a JSON object")
    kind = webhook.get("type")
    if not isinstance(kind, str) or not kind:
        return _invalid("a webhook needs a `type`")
    if kind == "test":
        return Forwarding(Outcome.IGNORED, Reason.TEST_WEBHOOK, webhook_type=kind)
    stream = STREAMS.get(kind)
    if stream is None:
        detail = "no Segment call is declared for this type"
        return Forwarding(Outcome.IGNORED, Reason.WEBHOOK_NOT_FORWARDED, detail, kind)
    if options.types is not None and kind not in options.types:
        detail = "not in FORWARD_WEBHOOK_TYPES"
        return Forwarding(Outcome.IGNORED, Reason.WEBHOOK_NOT_FORWARDED, detail, kind)
    webhook_id = webhook.get("id")
    if not isinstance(webhook_id, str) or not webhook_id.strip():
        return _invalid("a webhook needs an `id` (the Segment messageId comes from it)", kind)
    data = webhook.get("data")
    if not isinstance(data, dict):
        return _invalid("`data` must be an object", kind)
    call = _call(stream, webhook, webhook_id, data)
    if call is None:
        return _invalid(f"no user id at data.{' or data.'.join(stream.user)}", kind)
    return Forwarding(Outcome.DELIVERED, webhook_type=kind, calls=(call,))


def _call(
    stream: Stream, webhook: dict[str, Any], webhook_id: str, data: dict[str, Any]
) -> dict[str, Any] | None:
    call: dict[str, Any] = {"type": stream.call, "messageId": message_id(webhook_id)}
    user = id_text(_first(data, stream.user))
    if user is not None:
        call["userId"] = user
    elif stream.tenant_wide:
        call["anonymousId"] = f"saasquatch-tenant-{webhook.get('tenantAlias') or 'unknown'}"
    else:
        return None
    if stream.event is not None:
        call["event"] = stream.event
    fields = {
        name: value
        for name, paths in stream.fields.items()
        if (value := _first(data, paths)) is not None
    }
    extra = data.get(stream.spread) if stream.spread else None
    if isinstance(extra, dict):
        fields.update({name: value for name, value in extra.items() if name not in fields})
    call["traits" if stream.call == "identify" else "properties"] = fields
    when = _timestamp(webhook.get("created"))
    if when is not None:
        call["timestamp"] = when
    call["context"] = {"library": dict(LIBRARY), "saasquatch": _origin(webhook, webhook_id)}
    return call


def _origin(webhook: dict[str, Any], webhook_id: str) -> dict[str, Any]:
    """Where the call came from, so a Segment user can tell forwarded calls apart."""
    origin: dict[str, Any] = {"webhookId": webhook_id, "webhookType": webhook["type"]}
    if isinstance(webhook.get("tenantAlias"), str):
        origin["tenantAlias"] = webhook["tenantAlias"]
    if isinstance(webhook.get("live"), bool):
        origin["live"] = webhook["live"]
    return origin


def _first(data: dict[str, Any], paths: Paths) -> Any:
    for path in paths:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def _timestamp(created: Any) -> str | None:
    """The webhook's `created` (epoch milliseconds) as ISO 8601 UTC, when it is one."""
    if isinstance(created, bool) or not isinstance(created, int | float):
        return None
    try:
        when = datetime.fromtimestamp(created / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return iso_millis(when)
