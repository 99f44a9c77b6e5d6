"""Mapping switches, one typed object; `settings.py` fills it from the environment."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

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
    model_config = ConfigDict(frozen=True, extra="forbid")

    track_upsert_strategy: TrackUpsertStrategy = TrackUpsertStrategy.MISSING_USER
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
