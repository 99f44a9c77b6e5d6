"""Pure Segment -> SaaSquatch mapping: one message in, a `Plan` out. No I/O, no environment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .identify import upsert_call, user_path
from .options import InvalidDataStrategy, MappingOptions, TrackUpsertStrategy
from .plan import Call, Outcome, Plan, Purpose, Undeliverable, dead_letter, ignored
from .segment import (
    IGNORED_TYPES,
    SUPPORTED_TYPES,
    SegmentMessage,
    account_id,
)
from .track import map_track

__all__ = [
    "Call",
    "InvalidDataStrategy",
    "MappingOptions",
    "Outcome",
    "Plan",
    "Purpose",
    "TrackUpsertStrategy",
    "map_message",
]

DEFAULT_OPTIONS = MappingOptions()


def map_message(message: Any, options: MappingOptions = DEFAULT_OPTIONS, *, now: datetime) -> Plan:
    """Decide what one Segment message becomes. Never raises: every input ends in a Plan.

    `now` (timezone-aware) is passed in so the timestamp window is testable and the mapper stays
    pure.
    """
    if not isinstance(message, dict):
        return dead_letter("malformed_message", "a Segment message must be a JSON object")
    try:
        parsed = SegmentMessage.model_validate(message)
    except ValidationError as error:
        return dead_letter("invalid_message", _describe(error))
    kind = parsed.type
    try:
        return _map(parsed, message, kind, options, now)
    except Undeliverable as error:
        return dead_letter(error.reason, error.detail, message_type=kind)
    except Exception as error:  # a bug or a pathological value must not lose the message
        return dead_letter("mapping_error", type(error).__name__, message_type=kind)


def _map(
    parsed: SegmentMessage,
    raw: dict[str, Any],
    kind: str | None,
    options: MappingOptions,
    now: datetime,
) -> Plan:
    if kind in IGNORED_TYPES:
        return ignored("unsupported_type", kind)
    if kind not in SUPPORTED_TYPES:
        return dead_letter("unknown_type", f"type {kind!r} is not a Segment message type")
    if parsed.excludes_saasquatch():
        return ignored("excluded_by_integrations", kind)
    user = parsed.user_id
    if user is None:
        return ignored("anonymous", kind)
    if kind == "track":
        return map_track(parsed, raw, user, options, now)
    if kind == "identify":
        if options.ignore_identify:
            return ignored("identify_disabled", kind)
        notes: list[str] = []
        call = upsert_call(parsed, user, parsed.traits, notes)
        return Plan(Outcome.DELIVER, message_type=kind, calls=(call,), notes=tuple(notes))
    if not options.honor_delete:
        return ignored("delete_disabled", kind)
    account = account_id(parsed.traits or parsed.context.traits, user)
    do_not_track = "true" if options.delete_do_not_track else "false"
    call = Call(
        Purpose.DELETE_USER, "DELETE", user_path(account, user), params={"doNotTrack": do_not_track}
    )
    return Plan(Outcome.DELIVER, message_type=kind, calls=(call,))


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    return f"{where}: {first['msg']} ({error.error_count()} problem(s))"
