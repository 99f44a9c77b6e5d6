"""Structured JSON log lines that Cloud Logging reads as they are (severity, message, trace)."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

_TRACE_KEY = "logging.googleapis.com/trace"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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


# An address anywhere in a text, also percent-encoded in a URL path (`%40`).
_EMAIL = re.compile(
    r"(?P<local>[^\s@\"'<>()\[\]{},;:/?#=&]+?)(?P<at>@|%40)"
    r"(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)


def redact_emails(value: Any) -> Any:
    """`value` with every email address in its strings (keys too) redacted, at any depth."""
    if isinstance(value, str):
        return _EMAIL.sub(_redacted, value)
    if isinstance(value, dict):
        return {redact_emails(key): redact_emails(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_emails(item) for item in value]
    return value


def _redacted(match: re.Match[str]) -> str:
    return f"{match['local'][:1]}***{match['at']}{match['domain']}"
