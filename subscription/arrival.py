"""What Segment's tracking API does to a message as it arrives, done here for the senders that
talk to ingest directly (Segment's SDKs, HTTP API callers); messages relayed by Segment's
destinations already carry all of it and pass unchanged.

- `POST /v1/track`, `/v1/identify`, ... imply the type of a message that has none.
- `receivedAt` is stamped (UTC, milliseconds) when missing.
- A missing `timestamp` is derived as Segment derives it, correcting the device's clock:
  `receivedAt - (sentAt - originalTimestamp)`, when both are present.
- A missing `messageId` becomes a hash of the message's content (not its transport times), so a
  copy the sender retries gets the same id, and the same SaaSquatch idempotency key.
- A `writeKey` in the message (analytics.js puts one there) is dropped: it may be our token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from common.text import iso_millis
from mapper.track import idempotency_key, parse_timestamp

PATH_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
# The end of the path, so ingest may sit behind a prefix (`/segment/v1/track`).
_TYPED_PATH = re.compile(r"(?:^|/)v1/([a-z]+)/?$")
TRANSPORT_TIMES = ("sentAt", "receivedAt")
CREDENTIALS = ("writeKey",)


def path_type(path: str) -> str | None:
    """The message type a tracking API path implies (`/v1/track` -> `track`), if any."""
    found = _TYPED_PATH.search(path)
    return found.group(1) if found and found.group(1) in PATH_TYPES else None


def complete(messages: Iterable[dict[str, Any]], implied_type: str | None, now: datetime) -> None:
    """Give each message (in place) what the tracking API would have on arrival at `now`."""
    received = iso_millis(now)
    for message in messages:
        if implied_type and not message.get("type"):
            message["type"] = implied_type
        for name in CREDENTIALS:
            message.pop(name, None)
        if message.get("messageId") in (None, ""):
            message["messageId"] = content_id(message)
        if not message.get("receivedAt"):
            message["receivedAt"] = received
        if not message.get("timestamp"):
            corrected = corrected_timestamp(message)
            if corrected is not None:
                message["timestamp"] = corrected


def content_id(message: dict[str, Any]) -> str:
    """The SHA-256 the mapper would use as idempotency key, over all but the transport times."""
    content = {key: value for key, value in message.items() if key not in TRANSPORT_TIMES}
    return idempotency_key(None, content)


def corrected_timestamp(message: dict[str, Any]) -> str | None:
    """`receivedAt - (sentAt - originalTimestamp)`, or None unless all three are readable."""
    received, sent, original = (
        parse_timestamp(message.get(name)) for name in ("receivedAt", "sentAt", "originalTimestamp")
    )
    if received is None or sent is None or original is None:
        return None
    try:
        return iso_millis(received - (sent - original))
    except (OverflowError, ValueError):
        return None
