"""`Retry-After` as the destinations send it (SaaSquatch, Segment): seconds or an HTTP date."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime

# The longest Retry-After we pass on; beyond it Pub/Sub's own backoff is the better guide.
MAX_RETRY_AFTER = 600.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or an HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
