"""Structured JSON log lines that Cloud Logging reads as they are (severity, message, trace)."""

from __future__ import annotations

import json
import logging
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


def redact_email(value: str) -> str:
    """`peter.gibbons@example.com` -> `p***@example.com`: enough to recognise, not to reuse."""
    local, at, domain = value.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
