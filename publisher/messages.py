"""A message to publish: data, attributes and (with ordering) its key; and the attribute that
says where a raw event came from, when not from Segment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

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
