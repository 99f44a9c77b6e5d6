"""forward's settings: Segment (write key, endpoint), the webhook types sent and their event
names, its dead letters."""

from __future__ import annotations

import json
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from common.settings import csv, http_url
from pushes.settings import PushSettings
from segment_api.client import US_BASE_URL
from stream import STREAMS, StreamOptions, check_event_names


class ForwardSettings(PushSettings):
    FORWARD_DEAD_LETTER_TOPIC: str = "saasquatch-webhooks-dead-letter"
    SEGMENT_WRITE_KEY: str = ""
    SEGMENT_WRITE_KEY_SECRET: str = ""
    # EU workspaces: https://events.eu1.segmentapis.com (sent to the US, their events never arrive).
    SEGMENT_API_BASE_URL: str = US_BASE_URL
    SEGMENT_TIMEOUT_SECONDS: float = Field(10.0, gt=0, le=60)
    FORWARD_WEBHOOK_TYPES: str = ""  # comma-separated; empty: every type with a declared call
    # Webhook type -> Segment event name, over the table's (the hosted Stream's names).
    FORWARD_EVENT_NAMES: dict[str, str] = Field(default_factory=dict)

    @field_validator("SEGMENT_API_BASE_URL")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            raise ValueError("must be set (US: https://api.segment.io)")
        return http_url(value)

    @field_validator("FORWARD_WEBHOOK_TYPES")
    @classmethod
    def _known_types(cls, value: str) -> str:
        unknown = [kind for kind in csv(value) if kind not in STREAMS]
        if unknown:
            known = ", ".join(STREAMS)
            raise ValueError(f"{', '.join(unknown)} has no Segment call; known: {known}")
        return value

    @field_validator("FORWARD_EVENT_NAMES", mode="before")
    @classmethod
    def _event_names(cls, value: Any) -> dict[str, str]:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except (ValueError, RecursionError):
                raise ValueError(
                    "is not JSON: must be a JSON object of webhook type -> Segment event name"
                ) from None
        return check_event_names(value)

    @model_validator(mode="after")
    def _one_write_key(self) -> Self:
        if bool(self.SEGMENT_WRITE_KEY) == bool(self.SEGMENT_WRITE_KEY_SECRET):
            raise ValueError(
                "set one of SEGMENT_WRITE_KEY_SECRET (a Secret Manager version) or "
                "SEGMENT_WRITE_KEY: forward sends nowhere without it"
            )
        return self

    @property
    def stream_options(self) -> StreamOptions:
        types = csv(self.FORWARD_WEBHOOK_TYPES)
        return StreamOptions(
            types=frozenset(types) if types else None, event_names=self.FORWARD_EVENT_NAMES
        )
