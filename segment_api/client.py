"""One Segment HTTP Tracking API client per process: `/v1/batch`, Basic auth with the write key.

Segment answers 200 for a batch it took (it deduplicates by `messageId`), 400 for a body it
will never take, 401/403 for a wrong write key, 429 (with `Retry-After`) when rate-limited and
5xx when down. The client says which; the forward handler decides what that means.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from common.retry_after import parse_retry_after
from common.secrets import Secret
from common.text import iso_millis, valid_text

US_BASE_URL = "https://api.segment.io"
EU_BASE_URL = "https://events.eu1.segmentapis.com"
MAX_BATCH_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024


class SegmentError(Exception):
    """Segment did not take the batch. `status` is None when no answer came."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class KeyUnavailable(SegmentError):
    """The write key could not be read (Secret Manager), so nothing was sent."""


class MessageTooLarge(SegmentError):
    """A message over Segment's 32 KB: Segment would refuse it every time."""


def write_key_auth(write_key: str) -> str:
    """Segment's Basic auth: the write key as the user name and an empty password."""
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode("ascii")


class SegmentClient:
    """Sends batches; safe to share between threads. Never retries: Pub/Sub redelivers."""

    def __init__(
        self,
        base_url: str,
        write_key: Secret,
        timeout: float,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = base_url.rstrip("/") + "/v1/batch"
        self._write_key = write_key
        self._timeout = (min(timeout, 3.05), timeout)
        self._clock = clock
        self._session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=32, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def send_batch(self, messages: Sequence[dict[str, Any]]) -> int:
        """Segment's status (2xx) for the batch, or a `SegmentError` saying why not."""
        encoded = [encode(message) for message in messages]  # each written once, sized, joined
        for message, data in zip(messages, encoded, strict=True):
            if len(data) > MAX_MESSAGE_BYTES:
                raise MessageTooLarge(f"a {message.get('type')} of {len(data)} bytes is over 32 KB")
        sent_at = encode(iso_millis(datetime.fromtimestamp(self._clock(), UTC)))
        body = b'{"batch":[' + b",".join(encoded) + b'],"sentAt":' + sent_at + b"}"
        try:
            key = self._write_key.value()
        except Exception as error:
            raise KeyUnavailable(f"write key unavailable: {type(error).__name__}") from None
        headers = {"Content-Type": "application/json", "Authorization": write_key_auth(key)}
        try:
            response = self._session.post(
                self.url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise SegmentError("no answer within the timeout") from None
        except requests.RequestException as error:
            raise SegmentError(type(error).__name__) from None
        status = response.status_code
        if 200 <= status < 300:
            return status
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        raise SegmentError(f"Segment answered {status}", status, retry_after)


def encode(value: Any) -> bytes:
    """`value` as the client writes it into a batch: compact JSON in UTF-8, a lone surrogate
    (valid in a JSON escape, not in UTF-8) as U+FFFD. The one encoding, so what forward
    measures against the limit is what Segment receives."""
    return valid_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"))).encode()


def message_bytes(message: Any) -> int:
    """A message's size as Segment counts it against `MAX_MESSAGE_BYTES`."""
    return len(encode(message))
