"""Small converters that make Segment names and values acceptable to SaaSquatch.

The generic text cuts (`cut_chars`, `cut_bytes`, `id_text`) live in `common.text`, where the Pub/Sub
side uses them too; `cut_chars` and `id_text` are re-exported here for the mapper's tables.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

from pydash import camel_case

from common.text import cut_bytes
from common.text import cut_chars as cut_chars
from common.text import id_text as id_text

NAME_MAX = 64
CUSTOM_FIELD_CHARS = 1024
EVENT_FIELD_BYTES = 1500
EVENT_KEY_MAX = 64

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_NOT_KEY = re.compile(r"[^A-Za-z0-9]")
_TRAIT_SEPARATORS = re.compile(r"[_\- ]")
_LOCALE = re.compile(r"([A-Za-z]{2})[-_]([A-Za-z]{2})")


@lru_cache(maxsize=4096)
def trait_key(name: str) -> str:
    """Lookup key for reserved traits: `firstName`, `first_name` and `First Name` are one trait."""
    return _TRAIT_SEPARATORS.sub("", name).lower()


@lru_cache(maxsize=4096)
def field_name(name: str) -> str | None:
    """A custom/event field name matching `^[A-Za-z0-9_]{1,64}$`, or None when nothing is left."""
    cleaned = _NOT_NAME.sub("", name)[:NAME_MAX]
    return cleaned or None


@lru_cache(maxsize=1024)
def event_key(name: str) -> str | None:
    """lodash-style camelCase (`Signed Up` -> `signedUp`), ASCII alphanumerics only, 64 at most."""
    cleaned = _NOT_KEY.sub("", camel_case(name))[:EVENT_KEY_MAX]
    return cleaned or None


def event_text(value: str) -> str:
    return cut_bytes(value[:CUSTOM_FIELD_CHARS], EVENT_FIELD_BYTES)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def is_number(value: Any) -> bool:
    """JSON numbers only: bool is an int in Python but not in JSON; NaN/Infinity are not JSON."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def locale(value: Any) -> str | None:
    """`en-US`, `en_us`, `EN-us` -> `en_US`; anything else -> None (left out, never an error)."""
    if not isinstance(value, str):
        return None
    match = _LOCALE.fullmatch(value.strip())
    if match is None:
        return None
    return f"{match.group(1).lower()}_{match.group(2).upper()}"
