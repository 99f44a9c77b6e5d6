"""What ingest accepts as a body: strict JSON (`common.strict_json`) in one of the shapes Segment
sends (`mapper.dialects`), judged item by item.

A body that is not JSON at all, or not one of the shapes, is a 400: there are no items to save.
Inside a batch, an item that is not an object or holds what strict JSON refuses (`NaN`, a
number out of range, invalid UTF-8) is set aside, as its text and with why, and published
all the same: deliver dead-letters it, where an operator can see, fix and send it again. The
other items go on as usual. Segment drops whatever is answered 4xx, so a 400 for one bad item
would lose all the good ones with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common import strict_json
from common.http import Refusal
from common.outcomes import Reason
from mapper.dialects import BodyError, items_from_body


@dataclass(frozen=True, slots=True)
class SetAside:
    """An item that cannot be a message: its place in the body, its text, and why."""

    index: int
    text: bytes
    why: str


@dataclass(frozen=True, slots=True)
class Items:
    messages: list[dict[str, Any]] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)


# What one request may build, counted before it is built: memory follows the number of objects
# and arrays far more than the body's size. A Segment batch of 4,000 rich events opens about
# 60,000; the measured worst case within the cap is in docs/deploy.md (bench/ingest_memory.py).
MAX_CONTAINERS = 250_000
MAX_ITEMS = 10_000


def parse_messages(raw: bytes) -> Items:
    """The body's messages and the items set aside, or a 400 saying what is wrong with the body
    as a whole (in our words, never the parser's exception or advice); a 413 past the counts
    above."""
    if strict_json.containers(raw, MAX_CONTAINERS) > MAX_CONTAINERS:
        raise Refusal(
            Reason.BODY_TOO_LARGE,
            f"the body holds more than {MAX_CONTAINERS} objects and arrays: send smaller batches",
        )
    try:
        parsed = strict_json.loads_items(raw)
    except strict_json.NotJson as error:
        raise _invalid(str(error)) from None
    try:
        items = items_from_body(parsed.value)
    except BodyError as error:
        raise _invalid(str(error)) from None
    if len(items) > MAX_ITEMS:
        message = f"the body holds {len(items)} items; at most {MAX_ITEMS} are taken at once"
        raise Refusal(Reason.BODY_TOO_LARGE, message)
    found = Items()
    for index, item in enumerate(items):
        why = strict_json.fault(item) if parsed.suspect else None
        if why is None and not isinstance(item, dict):
            why = f"item {index} is a JSON {_kind(item)}, not an object"
        if why is None:
            found.messages.append(item)
        else:
            found.set_aside.append(SetAside(index, strict_json.item_text(item), why))
    return found


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _invalid(message: str) -> Refusal:
    return Refusal(Reason.INVALID_BODY, message)
