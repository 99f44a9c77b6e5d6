"""track -> SaaSquatch user event (key, fields, date, idempotency key, upsert strategy)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from common.outcomes import Outcome, Reason
from saasquatch.calls import Call, Purpose, UserEvent, UserEventsBody, compact, user_path

from . import ecommerce, sanitize
from .cookies import referral_cookie
from .identify import upsert_call
from .notes import Notes
from .options import InvalidDataStrategy, MappingOptions, TrackUpsertStrategy
from .plan import Plan, Undeliverable
from .segment import SegmentMessage, account_for
from .transforming import track_upsert_strategy, upsert_fields

# Segment E-commerce v2 events that SaaSquatch treats as reserved events.
RESERVED_EVENTS = {"Order Completed": "purchase", "Order Refunded": "refund"}

MAX_PAST = timedelta(days=180)
MAX_FUTURE = timedelta(days=90)
TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "receivedAt")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._-]{8,64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def event_key(name: str, options: MappingOptions) -> str | None:
    if name in options.event_key_map:
        return options.event_key_map[name]
    if name == "Order Refunded" or (name == "Order Completed" and options.remap_order_completed):
        return RESERVED_EVENTS[name]
    return sanitize.event_key(name)


def idempotency_key(message_id: str | None, message: dict[str, Any]) -> str:
    """The messageId when SaaSquatch accepts it as is; otherwise a stable SHA-256 of it.

    Without a messageId the hash covers the whole message, so a re-sent copy still matches.
    """
    if message_id is not None and _IDEMPOTENCY_KEY.fullmatch(message_id):
        return message_id
    source = message_id if message_id is not None else canonical_json(message)
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def canonical_json(message: dict[str, Any]) -> str:
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 with or without offset or fraction; no offset means UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def event_time(message: SegmentMessage, now: datetime) -> datetime | None:
    """When the event happened (its first readable timestamp), inside SaaSquatch's window."""
    for name in TIMESTAMP_FIELDS:
        when = parse_timestamp(getattr(message, name))
        if when is None:
            continue
        if when < now - MAX_PAST or when > now + MAX_FUTURE:
            raise Undeliverable(
                Reason.TIMESTAMP_OUT_OF_WINDOW,
                f"{name} is more than {MAX_PAST.days} days in the past or "
                f"{MAX_FUTURE.days} days in the future",
            )
        return when
    return None


def epoch_ms(when: datetime | None) -> int | None:
    return None if when is None else (when - _EPOCH) // _MILLISECOND


class _Invalid(Exception):
    """A custom event value SaaSquatch would reject (an array inside an array)."""


def _event_value(value: Any, strategy: InvalidDataStrategy, path: str, notes: Notes) -> Any:
    if isinstance(value, str):
        return sanitize.event_text(value)
    if value is None or isinstance(value, bool) or sanitize.is_number(value):
        return value
    if isinstance(value, dict):
        return _event_object(value, strategy, f"{path}.", notes)
    if isinstance(value, list):
        if any(isinstance(item, list) for item in value):
            return _invalid(value, strategy, path, "array of arrays", notes)
        return [_event_value(item, strategy, f"{path}[]", notes) for item in value]
    return _invalid(value, strategy, path, "not a JSON value", notes)


def _invalid(value: Any, strategy: InvalidDataStrategy, path: str, why: str, notes: Notes) -> Any:
    if strategy is InvalidDataStrategy.DISCARD_EVENT:
        raise Undeliverable(Reason.INVALID_EVENT_DATA, f"{path}: {why}")
    notes.add(f"invalid values ({strategy})", f"{path}: {why}")
    if strategy is InvalidDataStrategy.NULL_FIELD:
        return None
    try:
        return sanitize.event_text(sanitize.compact_json(value))
    except (ValueError, RecursionError):
        return None


def _event_object(
    properties: dict[str, Any], strategy: InvalidDataStrategy, path: str, notes: Notes
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for raw_name, raw_value in properties.items():
        name = sanitize.field_name(raw_name)
        if name is None or name in fields:
            notes.add("fields left out", f"{path}{sanitize.cut_chars(raw_name, 64)}")
            continue
        fields[name] = _event_value(raw_value, strategy, f"{path}{name}", notes)
    return fields


def event_fields(
    key: str, properties: dict[str, Any], options: MappingOptions, notes: Notes
) -> dict[str, Any]:
    schema = ecommerce.SCHEMAS.get(key)
    if schema is not None:
        fields = schema.read(properties, notes)
        invalid = notes.invalid_values
        if invalid and options.invalid_data_strategy is InvalidDataStrategy.DISCARD_EVENT:
            raise Undeliverable(Reason.INVALID_EVENT_DATA, "; ".join(invalid))
        return fields
    return _event_object(properties, options.invalid_data_strategy, "", notes)


def map_track(
    message: SegmentMessage,
    raw: dict[str, Any],
    user: str,
    options: MappingOptions,
    now: datetime,
    remembered: str | None = None,
) -> Plan:
    name = message.event
    if not isinstance(name, str) or not name.strip():
        raise Undeliverable(Reason.MISSING_EVENT_NAME, "a track message needs a non-empty `event`")
    key = event_key(name, options)
    if key is None:
        raise Undeliverable(Reason.INVALID_EVENT_KEY, "the event name has no letters or digits")
    notes = Notes()
    traits = message.context.traits
    account = account_for(traits, user, remembered)
    key_for_retries = idempotency_key(message.message_id, raw)
    happened = event_time(message, now)
    event = cast(
        UserEvent,
        compact(
            {
                "key": key,
                "fields": event_fields(key, message.properties, options, notes),
                "dateTriggered": epoch_ms(happened),
            }
        ),
    )
    body: UserEventsBody = {
        "userId": user,
        "accountId": account.id,
        "idempotencyKey": key_for_retries,
        "events": [event],
    }
    send = Call(Purpose.TRACK_EVENT, "POST", user_path(account.id, user) + "/events", dict(body))
    strategy = track_upsert_strategy(raw, options)
    calls: tuple[Call, ...] = (send,)
    fallback: Call | None = None
    if strategy is not TrackUpsertStrategy.NEVER:
        transformed = upsert_fields(raw, options, notes)
        cookies = referral_cookie(raw, notes)
        upsert = upsert_call(
            message, user, account, traits, transformed=transformed, cookies=cookies
        )
        if strategy is TrackUpsertStrategy.ALWAYS:
            calls = (upsert, send)
        else:
            fallback = upsert
    return Plan(
        Outcome.DELIVERED,
        message_type="track",
        event_key=key,
        idempotency_key=key_for_retries,
        event_time=happened,
        calls=calls,
        upsert_on_missing_user=fallback,
        notes=notes.lines(),
        note_counts=notes.summary(),
        account=account,
    )
