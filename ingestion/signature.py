"""Segment's `X-Signature`: hex HMAC-SHA1 of the body with the shared secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any

from common.http import Refusal


def js_stringify(value: Any) -> str:
    """`JSON.stringify` as Segment computes it: compact, non-ASCII kept, integral floats as ints."""
    return json.dumps(_js_numbers(value), ensure_ascii=False, separators=(",", ":"))


def _js_numbers(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value) if abs(value) < 1e21 else value
    if isinstance(value, dict):
        return {key: _js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_js_numbers(item) for item in value]
    return value


def check_signature(
    secret: str,
    header: str | None,
    raw: bytes,
    messages: list[dict[str, Any]],
    challenge: str,
) -> None:
    """A 401 (with `challenge`) unless `header` signs the body.

    For a single message the signature covers the raw body. For a batched array Segment signs
    the first event as it serialises it, so we re-serialise the first message the way
    `JSON.stringify` does; numbers printed in exponent form may differ, and the other events of
    the batch are not covered by any signature.
    """
    if not header:
        raise Refusal(401, "missing X-Signature header", {"WWW-Authenticate": challenge})
    given = header.strip().lower().encode("ascii", "replace")
    key = secret.encode("utf-8")
    candidates = [raw]
    if messages and raw.lstrip()[:1] == b"[":
        candidates.append(js_stringify(messages[0]).encode("utf-8", "surrogatepass"))
    valid = [
        hmac.compare_digest(given, hmac.new(key, body, hashlib.sha1).hexdigest().encode())
        for body in candidates
    ]
    if not any(valid):
        raise Refusal(401, "X-Signature does not match the body", {"WWW-Authenticate": challenge})
