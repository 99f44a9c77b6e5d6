"""Mapping switches, one typed object; `settings.py` fills it from the environment."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

from .segments import InvalidSegmentsStrategy
from .transformers import DEFAULT_MAX_DEPTH, DEFAULT_TIMEOUT_MS, Transformer

_EVENT_KEY = re.compile(r"[A-Za-z0-9]{1,64}")


class TrackUpsertStrategy(StrEnum):
    MISSING_USER = "missing_user"  # send the event; on 404 upsert the user and send it once more
    ALWAYS = "always"  # upsert the user before every event
    NEVER = "never"  # a 404 is a permanent failure


class InvalidDataStrategy(StrEnum):
    STRINGIFY_FIELD = "stringify_field"  # send the offending value as compact JSON text
    NULL_FIELD = "null_field"  # send null in its place
    DISCARD_EVENT = "discard_event"  # dead-letter the whole event


class MappingOptions(BaseModel):
    """`track_upsert_strategy` is a strategy or a `Transformer` whose value names one per event."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    track_upsert_strategy: TrackUpsertStrategy | Transformer = TrackUpsertStrategy.MISSING_USER
    identify_segments_transformer: Transformer | None = None
    track_upsert_transformer: Transformer | None = None
    invalid_segments_strategy: InvalidSegmentsStrategy = InvalidSegmentsStrategy.DISCARD_INVALID
    invalid_data_strategy: InvalidDataStrategy = InvalidDataStrategy.STRINGIFY_FIELD
    remap_order_completed: bool = True
    event_key_map: dict[str, str] = {}
    ignore_identify: bool = False
    honor_delete: bool = False
    delete_do_not_track: bool = False

    @field_validator("event_key_map")
    @classmethod
    def _keys_are_valid(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [key for key in value.values() if not _EVENT_KEY.fullmatch(key)]
        if bad:
            raise ValueError(f"event keys must match ^[A-Za-z0-9]{{1,64}}$, got {bad!r}")
        return value


_WORD = re.compile(r"[A-Za-z_]+")


def parse_track_upsert_strategy(
    text: str,
    setting: str = "TRACK_UPSERT_STRATEGY",
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> TrackUpsertStrategy | Transformer:
    """A strategy name (any case), else a JSONata expression that gives one per event.

    A bare word that names no strategy (`sometimes`) is refused rather than compiled: as JSONata
    it would read a field of that name and fail on every event. `TransformerSyntaxError` when the
    expression does not parse.
    """
    stripped = text.strip()
    try:
        return TrackUpsertStrategy(stripped.lower())
    except ValueError:
        pass
    if _WORD.fullmatch(stripped):
        choices = ", ".join(strategy.value for strategy in TrackUpsertStrategy)
        raise ValueError(
            f"{setting}: {stripped!r} names no strategy ({choices}); "
            "an expression must be more than a field name"
        )
    return Transformer(setting, stripped, timeout_ms, max_depth)
