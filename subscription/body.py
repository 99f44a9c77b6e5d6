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
from mapper.dialects import BodyError, split_body


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


def parse_messages(raw: bytes, budget: int) -> Items:
    """The body's messages and the items set aside, or a 400 saying what is wrong with the body
    as a whole (in our words, never the parser's exception or advice); a 413 past the counts
    above, or when the envelope copied into every item would pass `budget` bytes."""
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
        batch = split_body(parsed.value)
    except BodyError as error:
        raise _invalid(str(error)) from None
    if len(batch.items) > MAX_ITEMS:
        message = f"the body holds {len(batch.items)} items; at most {MAX_ITEMS} are taken at once"
        raise Refusal(Reason.BODY_TOO_LARGE, message)
    # The envelope is judged once (it is the same for every item), and its copies are costed
    # by their bytes before a single one is made.
    shared = {**batch.envelope, **batch.times}
    why = strict_json.fault(shared) if parsed.suspect and shared else None
    if why:
        raise _invalid(f"the batch envelope is not valid JSON: {why}")
    copied = len(strict_json.item_text(shared)) * len(batch.items) if shared else 0
    if copied > budget:
        raise Refusal(
            Reason.BODY_TOO_LARGE,
            f"the messages are over {budget} bytes once each batch item has the "
            "envelope's context: send smaller batches or a smaller envelope context",
        )
    found = Items()
    for index, item in enumerate(batch.items):
        why = strict_json.fault(item) if parsed.suspect else None
        if why is None and not isinstance(item, dict):
            why = f"item {index} is a JSON {_kind(item)}, not an object"
        if why is None:
            found.messages.append(batch.merged(item))
        else:
            text = strict_json.item_text(batch.merged(item))
            found.set_aside.append(SetAside(index, text, why))
    return found


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _invalid(message: str) -> Refusal:
    return Refusal(Reason.INVALID_BODY, message)
