"""A message to publish: data, attributes and (with ordering) its key; the attribute that says
where a raw event came from, when not from Segment; and `Topic`, the port every handler publishes
through (`Publisher` in production, an in-memory topic in the tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

# Set by the operator tools on what they (re)publish to the raw-events topic; deliver looks such
# events up in its delivery ledger before sending them (they may be repeats).
ORIGIN_ATTRIBUTE = "origin"


class Origin(StrEnum):
    BACKFILL = "backfill"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    ordering_key: str = ""


class PublishError(Exception):
    """At least one message was not confirmed by Pub/Sub in time."""


class Topic(Protocol):
    """Where a handler publishes: `publish_all` returns once every message is confirmed (their
    ids, in order) or raises `PublishError`. `ordering` says whether ordering keys are kept."""

    @property
    def ordering(self) -> bool: ...

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> list[str]: ...
