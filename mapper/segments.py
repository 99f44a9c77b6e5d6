"""SaaSquatch user segments: the operations an upsert carries, and what to do with invalid ones.

An operation is a segment name (the user joins it), `~name` (the user leaves it) or `~*` (the
user leaves every segment; `["~*", "A"]` leaves the user in `A` only). SaaSquatch documents
segment names as alphanumeric and nothing more, so the rule here is `^~?[A-Za-z0-9]+$`, or
exactly `~*`; order is kept, since it matters.

What a transformer produces is checked by `INVALID_SEGMENTS_STRATEGY`: `discard_invalid` drops
each invalid one, `discard_all` drops them all when any is invalid, `sanitize` strips every
character that is not a letter or digit (after a leading `~`) and drops what is left empty.
Notes count what was dropped, never the names (they come from traits).
"""

from __future__ import annotations

import re
from enum import StrEnum

from .notes import Notes

OPERATION = re.compile(r"~?[A-Za-z0-9]+")
CLEAR_ALL = "~*"
_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


class InvalidSegmentsStrategy(StrEnum):
    DISCARD_INVALID = "discard_invalid"
    DISCARD_ALL = "discard_all"
    SANITIZE = "sanitize"


def is_valid(operation: str) -> bool:
    return operation == CLEAR_ALL or OPERATION.fullmatch(operation) is not None


def sanitized(operation: str) -> str | None:
    """`operation` with what no segment name may hold removed; None when nothing is left."""
    if operation == CLEAR_ALL:
        return operation
    leave = operation.startswith("~")
    name = _NOT_ALPHANUMERIC.sub("", operation[1:] if leave else operation)
    return ("~" + name if leave else name) if name else None


def checked_segments(
    operations: list[str], strategy: InvalidSegmentsStrategy, notes: Notes
) -> list[str]:
    """The operations to send, by `strategy`."""
    invalid = [operation for operation in operations if not is_valid(operation)]
    if not invalid:
        return list(operations)
    if strategy is InvalidSegmentsStrategy.DISCARD_ALL:
        notes.say(f"segments left out: all {len(operations)} ({len(invalid)} invalid)")
        return []
    if strategy is InvalidSegmentsStrategy.DISCARD_INVALID:
        notes.say(f"segments left out: {len(invalid)} invalid")
        return [operation for operation in operations if is_valid(operation)]
    kept = [clean for clean in map(sanitized, operations) if clean is not None]
    notes.say(f"segments sanitized: {len(invalid)} invalid, {len(operations) - len(kept)} left out")
    return kept
