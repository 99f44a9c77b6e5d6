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


def parse_messages(raw: bytes) -> Items:
    """The body's messages and the items set aside, or a 400 saying what is wrong with the body
    as a whole (in our words, never the parser's exception or advice)."""
    try:
        parsed = strict_json.loads_items(raw)
    except strict_json.NotJson as error:
        raise _invalid(str(error)) from None
    try:
        items = items_from_body(parsed.value)
    except BodyError as error:
        raise _invalid(str(error)) from None
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
