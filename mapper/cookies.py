"""The referral cookie -> the user upsert's `cookies` (what squatch.js sends for attribution).

squatch.js keeps the `_saasquatch` cookie (base64url of a JSON object naming the referrer's
codes) and sends its value as the upsert's `cookies`; our web plugin (`web/`) puts the same value
at `COOKIE_PATH` in an identify. SaaSquatch documents the field as Base64URL-encoded JSON and
refuses anything else with RS052, so a value that is not base64url of a JSON object of sane size
is left out here, with a note naming why (never the value), and deliver retries a refused upsert
without it (`subscription/execute.py`). `referredByCodes` is sent beside it: SaaSquatch applies
the explicit codes first and the cookie only without them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .notes import Notes
from .sanitize import trait_key

# Where the web plugin puts the cookie's value in a Segment message: Segment's place for one
# destination's per-call options, which no other tool or warehouse turns into data (why, in
# docs/web-plugin.md). One place, read by identify and by the track's upsert alike; each name
# matches ignoring case and `_`, `-`, space, as the `integrations` opt-out does.
COOKIE_PATH: tuple[str, ...] = ("integrations", "SaaSquatch", "cookies")
COOKIE_FIELD = ".".join(COOKIE_PATH)

# A browser keeps at most 4096 bytes of a cookie's name and value together, so a longer value
# never came from a cookie; SaaSquatch's own cookies are a few hundred characters.
MAX_COOKIE_CHARS = 4096

# The base64url alphabet (RFC 4648 section 5), then the optional `=` padding. Standard base64
# (`+`, `/`) is refused: SaaSquatch documents Base64URL, squatch.js and the plugin write only
# base64url, so `+` or `/` means something else wrote the value.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

# squatch.js's cookie nests four levels (domain -> `{tenant}_CODE` -> `codes`/`codesExp` -> code);
# a value nested far deeper was not written by it, and only costs SaaSquatch (and us) to parse.
MAX_COOKIE_DEPTH = 10

NOTE_HEADING = "referral cookie left out"


class CookieRefused(ValueError):
    """Why a value is not sent as `cookies` (said without the value)."""


def checked_cookie(value: Any) -> str:
    """`value` unchanged when it is base64url (padding optional) of a JSON object and at most
    `MAX_COOKIE_CHARS` long; `CookieRefused` saying why otherwise. Never raises anything else."""
    if not isinstance(value, str):
        raise CookieRefused(f"not a string ({_kind(value)})")
    if not value:
        raise CookieRefused("empty")
    if len(value) > MAX_COOKIE_CHARS:
        raise CookieRefused(f"over {MAX_COOKIE_CHARS} characters")
    decoded = _decoded(value)
    try:
        text = decoded.decode("utf-8")
        parsed = json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CookieRefused("not base64url of JSON") from None
    if not isinstance(parsed, dict):
        raise CookieRefused("not a JSON object")
    if _depth(parsed) > MAX_COOKIE_DEPTH:
        raise CookieRefused(f"nested deeper than {MAX_COOKIE_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _decoded(value: str) -> bytes:
    body = value.rstrip("=")
    padding = len(value) - len(body)
    if not _BASE64URL.fullmatch(body):
        raise CookieRefused("not base64url")
    if len(body) % 4 == 1 or (padding and (padding > 2 or len(value) % 4)):
        raise CookieRefused("not base64url (its length)")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise CookieRefused("not base64url") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def found_at(message: dict[str, Any], path: tuple[str, ...] = COOKIE_PATH) -> Any:
    """What `message` holds at `path` (None when a step is missing or not an object); at each
    step the name as written, else the first key that matches it like a reserved trait."""
    value: Any = message
    for name in path:
        if not isinstance(value, dict):
            return None
        if name in value:
            value = value[name]
            continue
        wanted = trait_key(name)
        value = next((item for key, item in value.items() if trait_key(key) == wanted), None)
    return value


def referral_cookie(message: dict[str, Any], notes: Notes) -> str | None:
    """The message's referral cookie for the upsert's `cookies`, or None: absent (no note), or
    refused (a note saying where and why, never the value)."""
    value = found_at(message)
    if value is None:
        return None
    try:
        return checked_cookie(value)
    except CookieRefused as refused:
        notes.add(NOTE_HEADING, f"{COOKIE_FIELD}: {refused}")
        return None
