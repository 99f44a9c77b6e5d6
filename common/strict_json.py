"""Strict JSON, the one reading every receiver and consumer uses: UTF-8 only (a UTF-8 byte-order
mark is dropped; UTF-16 and UTF-32 are not guessed), no `NaN` or `Infinity`, no number that
only fits as infinity or silently becomes 0, no integer past Python's digit limit, no invalid
UTF-8 (surrogate bytes included).

`loads` raises `NotJson` for the first of these. `loads_items` is for a body that carries many
messages (a Segment batch): only what makes the body unreadable as a whole raises; a value
strict JSON refuses is kept as `Refused` (and invalid UTF-8 as the bytes it was), so the caller
can set that one item aside (`fault`) and deliver the others, keeping the item as its text
(`item_text`). A lone surrogate written as an escape (`"\\ud83c"`) is valid JSON that
JavaScript's `JSON.stringify` really sends: it stays, and is written as U+FFFD when published.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

UTF8_BOM = b"\xef\xbb\xbf"
# What starts a UTF-16 or UTF-32 text: a byte-order mark, or a NUL among the first bytes (JSON
# text starts with an ASCII character, which those encodings write with a zero byte).
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
# Python's own limit on converting digits to an int (PEP 651's sys.int_info).
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300
# The characters `surrogateescape` maps undecodable bytes to.
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")
_NONZERO_DIGIT = re.compile(r"[1-9]")


# A JSON string, escapes included: what is skipped when counting the containers a text opens.
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def containers(raw: bytes, cap: int) -> int:
    """How many objects and arrays `raw` opens, exactly when that may be more than `cap` (the
    braces and brackets outside strings), else a cheap upper bound. Counted on the bytes,
    before anything is built: parsing is where memory goes (an 8 MiB `[{},{},...]` is 2.8
    million dicts, over a gigabyte)."""
    bound = raw.count(b"{") + raw.count(b"[")
    if bound <= cap:
        return bound
    # The sentinel closes a string left open at the end (a trailing backslash escapes its
    # space): every match then succeeds, so the work is one pass. Without it, each quote of an
    # unterminated string would be tried to the end of the body: quadratic time.
    outside = _STRINGS.sub(b"", raw + b' "')
    return outside.count(b"{") + outside.count(b"[")


class NotJson(ValueError):
    """Bytes that are not strict JSON; the message says what, in our words."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A value strict JSON refuses, as it was written, and why."""

    text: str
    why: str


def _number(text: str) -> float | Refused:
    value = float(text)
    if not math.isfinite(value):
        return Refused(text, "a number is too large")
    if value == 0.0 and _NONZERO_DIGIT.search(text.split("e")[0].split("E")[0]):
        return Refused(text, "a number is too small (it would become 0)")
    return value


def _integer(text: str) -> int | Refused:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return Refused(text, f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _constant(name: str) -> Refused:
    return Refused(name, f"{name} is not JSON")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A body read by `loads_items`: its value, and whether anything in it was refused (only
    then is an item worth searching with `fault`)."""

    value: Any
    suspect: bool


def loads_items(raw: bytes) -> Parsed:
    """The body's value, with what strict JSON refuses kept in place (see the module's doc);
    `NotJson` only when the body cannot be read as JSON text at all."""
    text, invalid_utf8 = _text(raw)
    refused: list[Refused] = []

    def kept(value: Any) -> Any:
        if isinstance(value, Refused):
            refused.append(value)
        return value

    decoder = json.JSONDecoder(
        parse_float=lambda text: kept(_number(text)),
        parse_int=lambda text: kept(_integer(text)),
        parse_constant=lambda name: kept(_constant(name)),
    )
    try:
        value = decoder.decode(text)
    except RecursionError:
        raise NotJson("the body is nested too deeply") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise NotJson(f"the body is not valid JSON: {error.msg} at {where}") from None
    return Parsed(value, invalid_utf8 or bool(refused))


def loads(raw: bytes) -> Any:
    """Strict JSON from `raw`, or `NotJson` saying what is wrong."""
    parsed = loads_items(raw)
    if parsed.suspect:
        why = fault(parsed.value)
        if why:
            raise NotJson(f"the body is not valid JSON: {why}")
    return parsed.value


def fault(value: Any) -> str | None:
    """Why `value` (from `loads_items`) is not strict JSON, or None when it is."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Refused):
            return item.why
        if isinstance(item, str):
            if _ESCAPED_BYTES.search(item):
                return "a string is not valid UTF-8"
        elif isinstance(item, dict):
            for key, inner in item.items():
                if _ESCAPED_BYTES.search(key):
                    return "a name is not valid UTF-8"
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return None


def item_text(value: Any) -> bytes:
    """`value` written back as JSON, what strict JSON refused as it was written and invalid
    UTF-8 as the bytes it was: the item as close to what was sent as can be kept."""
    return _write(value).encode("utf-8", "surrogateescape")


class _Text(str):
    """Text already written (punctuation, a name): put out as it is."""


def _write(value: Any) -> str:
    """JSON text for `value`, without recursion: an item may nest as deep as the parser
    allowed, which is deeper than Python's own stack."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item)
        elif isinstance(item, Refused):
            out.append(item.text)
        elif isinstance(item, str):
            out.append(_string(item))
        elif isinstance(item, dict):
            parts: list[Any] = [_Text("{")]
            for index, (key, inner) in enumerate(item.items()):
                parts += [_Text(("," if index else "") + _string(key) + ":"), inner]
            stack.extend(reversed([*parts, _Text("}")]))
        elif isinstance(item, list):
            parts = [_Text("[")]
            for index, inner in enumerate(item):
                parts += [_Text(","), inner] if index else [inner]
            stack.extend(reversed([*parts, _Text("]")]))
        else:
            out.append(json.dumps(item))
    return "".join(out)


def _string(text: str) -> str:
    written = json.dumps(text, ensure_ascii=False)
    # Other lone surrogates (from escapes) cannot be encoded: write them as escapes again.
    return re.sub("[\ud800-\udc7f\udd00-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", written)


def _text(raw: bytes) -> tuple[str, bool]:
    """The body as text, and whether some of it was not UTF-8 (kept, escaped)."""
    if raw.startswith(_WIDE_BOMS) or b"\x00" in raw[:4]:
        raise NotJson("the body is not UTF-8 (it looks like UTF-16 or UTF-32): send UTF-8")
    raw = raw.removeprefix(UTF8_BOM)
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape"), True
