"""Pure SaaSquatch webhook -> Segment mapping: one webhook in, a `Forwarding` out. No I/O.

The forward path's mapper, the mirror of `mapper` (Segment -> SaaSquatch): `STREAMS` declares
each webhook type's Segment call and `map_webhook` runs any row of it; `fit` then makes each
call fit Segment's size limit by leaving out what is optional. The Segment message id comes
from the webhook's `id`, which SaaSquatch keeps across its retries, so Segment (which
deduplicates by `messageId`) counts a retried webhook once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from common.outcomes import Outcome, Reason
from common.text import id_text, iso_millis

from .table import DROPPED, STREAMS, Field, Paths, Stream

__all__ = [
    "DROPPED",
    "INTEGRATIONS",
    "LIBRARY",
    "STREAMS",
    "Forwarding",
    "StreamOptions",
    "check_event_names",
    "fit",
    "map_webhook",
    "message_id",
    "optional_fields",
]

LIBRARY = {"name": "segment-saasquatch", "version": "0.1.0"}
MESSAGE_ID_MAX = 99  # Segment: "less than 100 characters"
EVENT_NAME_MAX = 200
_PREFIX = "saasquatch-"
# The loop guard: a forwarded call routed back towards SaaSquatch is not delivered there, by
# deliver (which honours "SaaSquatch": false) nor by the hosted destination ("SaaSquatch v2").
INTEGRATIONS = {"SaaSquatch": False, "SaaSquatch v2": False}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRIMMED_NAME_MAX = 64  # SaaSquatch's own limit on a custom field's name
# The names listed in `trimmedFields`: SaaSquatch allows 100 custom fields, so a real user's are
# all named; past that, `trimmedCount` alone (the list must not be what breaks the 32 KB).
TRIMMED_LISTED = 100

Measure = Callable[[Mapping[str, Any]], int]


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """`types`: the webhook types forwarded (None: every type `STREAMS` declares).
    `event_names`: webhook type -> Segment event name, over the table's (checked by
    `check_event_names`)."""

    types: frozenset[str] | None = None
    event_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Forwarding:
    """What one webhook becomes: `delivered` (send `calls` to Segment in one batch),
    `ignored` or `dead_lettered` (no calls; `reason` says why). `trimmed`: the properties
    `fit` left out to stay under Segment's limit."""

    outcome: Outcome
    reason: Reason | None = None
    detail: str | None = None
    webhook_type: str | None = None
    calls: tuple[dict[str, Any], ...] = ()
    trimmed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": str(self.outcome)}
        for name in ("reason", "detail", "webhook_type"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.calls:
            out["calls"] = list(self.calls)
        return out


def check_event_names(value: Any) -> dict[str, str]:
    """`value` as webhook type -> event name, or a `ValueError` saying what is wrong: only
    types that become a track, each named by a non-empty string of at most 200 characters."""
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object of webhook type -> Segment event name")
    tracks = [kind for kind, stream in STREAMS.items() if stream.call == "track"]
    for kind, name in value.items():
        if kind not in STREAMS:
            raise ValueError(f"{kind} has no Segment call; renamable: {', '.join(tracks)}")
        if STREAMS[kind].call != "track":
            raise ValueError(f"{kind} becomes an {STREAMS[kind].call}, which has no event name")
        if not isinstance(name, str) or not name.strip() or len(name) > EVENT_NAME_MAX:
            raise ValueError(
                f"the name for {kind} must be a non-empty string of at most "
                f"{EVENT_NAME_MAX} characters"
            )
    return dict(value)


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
    call = _call(stream, webhook, webhook_id, data, options.event_names.get(kind))
    if call is None:
        return _invalid(f"no user id at data.{' or data.'.join(stream.user)}", kind)
    return Forwarding(Outcome.DELIVERED, webhook_type=kind, calls=(call,))


def _call(
    stream: Stream,
    webhook: dict[str, Any],
    webhook_id: str,
    data: dict[str, Any],
    event: str | None,
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
        call["event"] = event or stream.event
    fields = {
        name: _sent(value, rule)
        for name, rule in stream.fields.items()
        if (value := _first(data, rule.paths)) is not None
    }
    extra = data.get(stream.spread) if stream.spread else None
    if isinstance(extra, dict):
        fields.update(
            {
                name: value
                for name, value in extra.items()
                if name not in fields and name not in stream.fields and value is not None
            }
        )
    call["traits" if stream.call == "identify" else "properties"] = fields
    when = _iso(webhook.get("created"))
    if isinstance(when, str):
        call["timestamp"] = when
    call["integrations"] = dict(INTEGRATIONS)
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


def _sent(value: Any, rule: Field) -> Any:
    if rule.date:
        return _iso(value)
    if rule.dates_in:
        return _dates_within(value, rule.dates_in)
    return value


def _dates_within(value: Any, names: frozenset[str]) -> Any:
    """`value` with the members called `names` of its objects (in lists too) as ISO dates."""
    if isinstance(value, list):
        return [_dates_within(item, names) for item in value]
    if isinstance(value, dict):
        return {
            key: _iso(item) if key in names else _dates_within(item, names)
            for key, item in value.items()
        }
    return value


def _iso(value: Any) -> Any:
    """Epoch milliseconds as ISO 8601 UTC (`2019-10-03T19:21:48.430Z`); anything else (a text,
    a number no calendar holds) as it is, so nothing is lost."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return value
    try:
        return iso_millis(_EPOCH + timedelta(milliseconds=value))
    except (OverflowError, ValueError):
        return value


# --- fitting Segment's size limit ---------------------------------------------------------------


def fit(forwarding: Forwarding, limit: int, measure: Measure) -> Forwarding:
    """Each call within `limit` bytes as `measure` counts them (the Segment client's own
    encoding): the custom fields are left out, largest first, then the row's optional fields,
    largest first, until it fits; their names go in `context.saasquatch.trimmedFields`. A
    call that cannot fit with all of them gone is a dead letter. Never raises."""
    if forwarding.outcome is not Outcome.DELIVERED or forwarding.webhook_type not in STREAMS:
        return forwarding
    try:
        return _fit(forwarding, STREAMS[forwarding.webhook_type], limit, measure)
    except Exception as error:  # a bug: a dead letter, not a loss
        return Forwarding(
            Outcome.DEAD_LETTERED,
            Reason.MAPPING_ERROR,
            type(error).__name__,
            forwarding.webhook_type,
        )


def _fit(forwarding: Forwarding, stream: Stream, limit: int, measure: Measure) -> Forwarding:
    calls: list[dict[str, Any]] = []
    trimmed: list[str] = []
    for call in forwarding.calls:
        size = measure(call)
        if size <= limit:
            calls.append(call)
            continue
        fitted, left_out = _trim(call, stream, size, limit, measure)
        if fitted is None:
            return Forwarding(
                Outcome.DEAD_LETTERED,
                Reason.SEGMENT_MESSAGE_TOO_LARGE,
                f"{call['type']} of {size} bytes: over {limit} bytes even with every "
                "optional field left out",
                forwarding.webhook_type,
            )
        calls.append(fitted)
        trimmed += left_out
    return replace(forwarding, calls=tuple(calls), trimmed=tuple(trimmed))


def optional_fields(call: Mapping[str, Any], stream: Stream, measure: Measure) -> list[str]:
    """The properties (or traits) of `call` that may be left out, in the order they would be:
    the custom fields (what the row does not declare), largest first, then the row's
    optional fields, largest first (by `measure`; a tie by name)."""
    values = call.get("traits" if stream.call == "identify" else "properties") or {}
    custom = [name for name in values if name not in stream.fields]
    declared = [name for name, rule in stream.fields.items() if rule.optional and name in values]
    sizes = {name: measure({name: values[name]}) for name in [*custom, *declared]}

    def largest_first(names: list[str]) -> list[str]:
        return sorted(names, key=lambda name: (-sizes[name], name))

    return largest_first(custom) + largest_first(declared)


def _trim(
    call: dict[str, Any], stream: Stream, size: int, limit: int, measure: Measure
) -> tuple[dict[str, Any] | None, list[str]]:
    """`call` without its optional fields, largest first, until `measure` says it fits."""
    key = "traits" if stream.call == "identify" else "properties"
    values = dict(call[key])
    left_out: list[str] = []
    for name in optional_fields(call, stream, measure):
        del values[name]
        left_out.append(name)
        size -= measure({name: call[key][name]}) - 1  # `"name":value,` no longer written
        if size > limit:  # still over by the estimate: leave out the next, measure less
            continue
        candidate = _with(call, key, values, left_out)
        size = measure(candidate)
        if size <= limit:
            return candidate, left_out
    candidate = _with(call, key, values, left_out)
    return (candidate, left_out) if left_out and measure(candidate) <= limit else (None, [])


def _with(
    call: dict[str, Any], key: str, values: dict[str, Any], left_out: list[str]
) -> dict[str, Any]:
    origin = {
        **call["context"]["saasquatch"],
        "trimmedFields": [name[:TRIMMED_NAME_MAX] for name in left_out[:TRIMMED_LISTED]],
        "trimmedCount": len(left_out),
    }
    return {**call, key: dict(values), "context": {**call["context"], "saasquatch": origin}}
