"""What ingest accepts as a body: JSON (strictly), in one of the shapes Segment sends.

Shapes: one message (an object), a JSON array of messages (Webhooks Actions batching), or an HTTP
API envelope `{"batch": [...], "context": {...}, "integrations": {...}}`. Backfill files and the
mapping preview read the same shapes through `messages_from_body`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from common.http import Refusal
from common.outcomes import Reason

ENVELOPE_KEYS = ("context", "integrations")  # merged into each item's, one level deep
ENVELOPE_TIMES = ("sentAt",)  # given to each item that has none
# Merging copies the envelope's top-level keys into every item; beyond this many copies a small
# body would cost far more memory than its size.
MAX_MERGED_KEYS = 1_000_000
EXPECTED = "a Segment message, an array of them or a batch"


class NotJson(ValueError):
    """Text the JSON parser takes but JSON (and so every consumer downstream) does not."""


def reject_constant(name: str) -> Any:
    """`parse_constant` for strict JSON: `NaN` and `Infinity` are JavaScript, not JSON."""
    raise NotJson(f"{name} is not JSON")


def finite_float(text: str) -> float:
    """`parse_float` that refuses what only fits as infinity (`1e999`): it cannot be published
    as JSON again, nor sent anywhere."""
    value = float(text)
    if not math.isfinite(value):
        raise NotJson(f"the number {text[:24]} is too large")
    return value


def parse_messages(raw: bytes) -> list[dict[str, Any]]:
    """The messages of a request body, or a 400 saying what is wrong with it (in our words,
    never the parser's exception or advice)."""
    try:
        body = json.loads(raw, parse_constant=reject_constant, parse_float=finite_float)
    except UnicodeDecodeError:
        raise _invalid("body is not UTF-8 JSON") from None
    except RecursionError:
        raise _invalid("body is nested too deeply") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise _invalid(f"body is not valid JSON: {error.msg} at {where}") from None
    except NotJson as error:
        raise _invalid(f"body is not valid JSON: {error}") from None
    except ValueError:  # Python's own bound on integer digits is the only other one
        raise _invalid("body is not valid JSON: a number has too many digits") from None
    try:
        return messages_from_body(body)
    except BodyError as error:
        raise _invalid(str(error)) from None


def _invalid(message: str) -> Refusal:
    return Refusal(400, Reason.INVALID_BODY, message)


class BodyError(ValueError):
    """A request body that is not one of the accepted Segment shapes."""


def messages_from_body(body: Any) -> list[dict[str, Any]]:
    """Split a Segment request body into messages.

    Accepted: one message (object), a JSON array of messages (Webhooks Actions batching), or an
    HTTP API envelope `{"batch": [...], "context": {...}, "integrations": {...}, "sentAt": ...}`
    whose `context`/`integrations` are merged into each item's, one level deep, the item's keys
    winning, and whose `sentAt` goes to each item without one. Anything else in the envelope
    (an SDK's `writeKey`) is dropped.
    """
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict) and "batch" in body and "type" not in body:
        items = body["batch"]
        if not isinstance(items, list):
            raise BodyError('"batch" must be an array of messages')
        envelope = {key: body[key] for key in ENVELOPE_KEYS if isinstance(body.get(key), dict)}
        times = {key: body[key] for key in ENVELOPE_TIMES if isinstance(body.get(key), str)}
        if envelope or times:
            if not all(isinstance(item, dict) for item in items):
                raise BodyError("every item of the batch must be a JSON object")
            copies = len(items) * sum(len(outer) for outer in envelope.values())
            if copies > MAX_MERGED_KEYS:
                raise BodyError(
                    f"the envelope's context and integrations would be copied into {len(items)} "
                    f"items ({copies} keys): send smaller batches or a smaller envelope"
                )
            items = [_merge_envelope(envelope, times, item) for item in items]
    elif isinstance(body, dict):
        return [body]
    else:
        raise BodyError("body must be a JSON object, an array of objects or a batch envelope")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BodyError(f"item {index} is not a JSON object")
    return items


def _merge_envelope(
    envelope: dict[str, dict[str, Any]], times: dict[str, str], item: dict[str, Any]
) -> dict[str, Any]:
    merged = {**times, **item}
    for key, outer in envelope.items():
        inner = item.get(key)
        merged[key] = {**outer, **inner} if isinstance(inner, dict) else inner or dict(outer)
    return merged
