"""Segment's `X-Signature`: hex HMAC-SHA1, with the shared secret, of the bytes Segment signed.

A single event (and anything from the classic Webhooks destination) is signed over the whole
body. A batch from Webhooks (Actions) is signed over its first element only, as JavaScript
serialised it; that text is in the body as sent, so it is checked there, byte for byte, and
never re-serialised (Python and JavaScript write numbers and escapes differently).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from common.http import Refusal
from common.outcomes import Reason

_WHITESPACE = b" \t\r\n"
_DECODER = json.JSONDecoder()


def signed_texts(raw: bytes) -> list[bytes]:
    """What a valid signature may cover: the whole body and, for an array, its first element."""
    candidates = [raw]
    stripped = raw.lstrip(_WHITESPACE)
    if stripped[:1] == b"[":
        first = first_element(stripped)
        if first is not None:
            candidates.append(first)
    return candidates


def first_element(array: bytes) -> bytes | None:
    """The raw bytes of the first element of a JSON array's text, or None if there is none.

    The JSON decoder reports where the element ends; everything before it is `[` and ASCII
    whitespace, so character and byte offsets agree up to the start.
    """
    try:
        text = array.decode("utf-8")
    except UnicodeDecodeError:
        return None
    start = 1
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    if start >= len(text) or text[start] == "]":
        return None
    try:
        _, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    return text[start:end].encode("utf-8")


def check_signature(secret: str, header: str | None, raw: bytes, challenge: str) -> None:
    """A 401 (with `challenge`) unless `header` is the signature of what Segment signed."""
    if not header:
        raise Refusal(
            Reason.BAD_SIGNATURE, "missing X-Signature header", {"WWW-Authenticate": challenge}
        )
    given = header.strip().lower().encode("ascii", "replace")
    key = secret.encode("utf-8")
    # Every candidate is compared, so the time taken does not tell which one was close.
    valid = [
        hmac.compare_digest(given, hmac.new(key, text, hashlib.sha1).hexdigest().encode())
        for text in signed_texts(raw)
    ]
    if not any(valid):
        message = "X-Signature does not match the body"
        raise Refusal(Reason.BAD_SIGNATURE, message, {"WWW-Authenticate": challenge})
