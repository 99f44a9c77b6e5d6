"""Structured JSON log lines that Cloud Logging reads as they are (severity, message, trace)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

_TRACE_KEY = "logging.googleapis.com/trace"
MAX_TRACEBACK_CHARS = 16_000


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage()}
        entry.update(safe_fields(getattr(record, "fields", {})))
        if record.exc_info:
            # Bounded (its end names the error): a RecursionError's traceback ran to 1.3 MB,
            # past Cloud Logging's 256 KB entry limit.
            entry["exception"] = self.formatException(record.exc_info)[-MAX_TRACEBACK_CHARS:]
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` is now (servers and test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup(level: str) -> logging.Logger:
    """The project's logger, writing one JSON object per line to stdout."""
    logger = logging.getLogger("segment_saasquatch")
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(_JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def trace_fields(header: str | None, project: str) -> dict[str, str]:
    """Cloud Logging's trace field from `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`."""
    if not header or not project:
        return {}
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id.isalnum():
        return {}
    return {_TRACE_KEY: f"projects/{project}/traces/{trace_id}"}


# The one redaction rule every log line goes through (the formatter applies it): a line holds
# names, shapes, codes and our own ids. Text made by a sender (an event name: its key) is logged
# as a hash, so lines can be matched without holding it; free text that may quote one (a detail,
# an error) is bounded and has emails, addresses and key-like strings masked.
HASHED_FIELDS = frozenset({"event_key"})
MASKED_FIELDS = frozenset({"detail"})
MASKED_CHARS = 500


def safe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as a log line may hold them (see above)."""
    if not (HASHED_FIELDS & fields.keys() or MASKED_FIELDS & fields.keys()):
        return fields
    safe = dict(fields)
    for name in HASHED_FIELDS & safe.keys():
        if isinstance(safe[name], str):
            safe[name] = hashed(safe[name])
    for name in MASKED_FIELDS & safe.keys():
        if isinstance(safe[name], str):
            safe[name] = redact(safe[name][:MASKED_CHARS])
    return safe


def hashed(text: str) -> str:
    """A sender's text as a log holds it: `sha256:` and the first 12 hex digits of its SHA-256
    (`printf %s signedUp | sha256sum | cut -c1-12` finds a key's lines)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


# An address anywhere in a text, also percent-encoded in a URL path (`%40`).
_EMAIL = re.compile(
    r"(?P<local>[^\s@\"'<>()\[\]{},;:/?#=&]+?)(?P<at>@|%40)"
    r"(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)


def redact_emails(value: Any) -> Any:
    """`value` with every email address in its strings (keys too) redacted, at any depth."""
    return _each_string(value, lambda text: _EMAIL.sub(_redacted, text))


def _each_string(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to every string in it (keys too), at any depth."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {
            _each_string(key, change): _each_string(item, change) for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_each_string(item, change) for item in value]
    return value


def shape(value: Any, _in_events: bool = False) -> Any:
    """`value` with its keys (names) kept and every other value replaced by its type and size:
    `"str(16)"`, `"number"`, `"bool"`. For logs that must show a body's form, never its content.
    An event's `key` (in a list named `events`) names a kind of event, not a person: kept."""
    if isinstance(value, dict):
        shown = {key: shape(item, key == "events") for key, item in value.items()}
        if _in_events and isinstance(value.get("key"), str):
            shown["key"] = value["key"]
        return shown
    if isinstance(value, (list, tuple)):
        return [shape(item, _in_events) for item in value]
    if isinstance(value, str):
        return f"str({len(value)})"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return None if value is None else type(value).__name__


# IPv4 and IPv6 addresses, and strings that look like keys or tokens: a known key prefix
# (`sk_live_`, `TEST_`, `LIVE_`, `Bearer `...) or a long unbroken run of letters and digits.
_IP = re.compile(
    r"(?<![\w.:])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
    r"|(?<![\w:.])[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?![\w:])"
)
_KEY_LIKE = re.compile(
    r"\b(?:sk|pk|rk)_(?:live|test)_\w+|\b(?:TEST|LIVE)_\w{6,}|(?<=Bearer )\S+|(?<=Basic )\S+"
    r"|\b[A-Za-z0-9_\-+/]{32,}={0,2}"
)


def redact(value: Any) -> Any:
    """`redact_emails`, and IP addresses and key-like strings masked too: for text that comes
    from outside (a SaaSquatch error message may quote what it was sent)."""
    return _each_string(value, _redact_text)


def _redact_text(text: str) -> str:
    return _EMAIL.sub(_redacted, _KEY_LIKE.sub("[key]", _IP.sub(_ip_masked, text)))


def _ip_masked(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match[0])
    except ValueError:
        return match[0]  # a time, a version: not an address
    return "[ip]"


def _redacted(match: re.Match[str]) -> str:
    return f"{match['local'][:1]}***{match['at']}{match['domain']}"
