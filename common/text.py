"""Text cuts that keep strings sendable: valid UTF-8, within a limit in characters or bytes.

Pure helpers with no knowledge of Segment or SaaSquatch, shared by the mapper (field limits) and
the Pub/Sub side (attribute limits).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

# A surrogate in a decoded str is always a lone one: JSON's escaped pairs decode to one character.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(value: str) -> str:
    """Replace lone surrogates (valid in JSON escapes, invalid in UTF-8) with U+FFFD, the
    replacement character, so the text can be sent."""
    if value.isascii():  # the usual case, and cheap to tell
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def cut_chars(value: str, limit: int) -> str:
    return valid_text(value[:limit])


def cut_bytes(value: str, limit: int) -> str:
    """Cut to at most `limit` UTF-8 bytes without splitting a character."""
    value = valid_text(value)
    if len(value) * 4 <= limit:
        return value
    encoded = value.encode("utf-8")
    if len(encoded) <= limit:
        return value
    return encoded[:limit].decode("utf-8", "ignore")


def id_text(value: Any) -> str | None:
    """Segment ids as strings: numbers use their JSON form; blanks, bools and objects are no id."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def iso_millis(when: datetime) -> str:
    """`2026-11-29T10:00:00.123Z`, as Segment writes its timestamps."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
