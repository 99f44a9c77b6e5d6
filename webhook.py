"""The HTTP side of ingest: bearer token, Segment signature, body size and JSON.

Each check returns a `Refusal` (status + message) or the value; `main.ingest` answers with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import IO, Any

from mapper.segment import BodyError, messages_from_body


class Refusal(Exception):
    """A request we answer with an error status and a JSON message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def require_post(method: str) -> None:
    if method != "POST":
        raise Refusal(405, "only POST is accepted", {"Allow": "POST"})


def unauthorized(message: str) -> Refusal:
    return Refusal(401, message, {"WWW-Authenticate": 'Bearer realm="segment-saasquatch"'})


def bearer_token(header: str | None) -> str:
    if not header:
        raise unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise unauthorized(f"unsupported authorization scheme {scheme[:16]!r}: use Bearer")
    token = token.strip()
    if not token:
        raise unauthorized("empty bearer token")
    return token


def read_body(
    stream: IO[bytes],
    content_length: int | None,
    limit: int,
    expected: str = "a Segment message, an array of them or a batch",
) -> bytes:
    """At most `limit` bytes; refused before reading when the declared length is already over."""
    if content_length is not None and content_length > limit:
        raise Refusal(413, f"body is {content_length} bytes; the limit is {limit}")
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise Refusal(413, f"body is over the limit of {limit} bytes")
    if not raw.strip():
        raise Refusal(400, f"empty body: send {expected}")
    return raw


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_messages(raw: bytes) -> list[dict[str, Any]]:
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise Refusal(400, "body is not UTF-8 JSON") from None
    except RecursionError:
        raise Refusal(400, "body is nested too deeply") from None
    except ValueError as error:
        raise Refusal(400, f"body is not valid JSON: {str(error)[:200]}") from None
    try:
        return messages_from_body(body)
    except BodyError as error:
        raise Refusal(400, str(error)) from None


def js_stringify(value: Any) -> str:
    """`JSON.stringify` as Segment computes it: compact, non-ASCII kept, integral floats as ints."""
    return json.dumps(_js_numbers(value), ensure_ascii=False, separators=(",", ":"))


def _js_numbers(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value) if abs(value) < 1e21 else value
    if isinstance(value, dict):
        return {key: _js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_js_numbers(item) for item in value]
    return value


def check_signature(
    secret: str, header: str | None, raw: bytes, messages: list[dict[str, Any]]
) -> None:
    """Segment's `X-Signature`: hex HMAC-SHA1 with the shared secret.

    For a single message it covers the raw body. For a batched array Segment signs the first
    event as it serialises it, so we re-serialise the first message the way `JSON.stringify`
    does; numbers printed in exponent form may differ, and the other events of the batch are
    not covered by any signature.
    """
    if not header:
        raise unauthorized("missing X-Signature header")
    given = header.strip().lower().encode("ascii", "replace")
    key = secret.encode("utf-8")
    candidates = [raw]
    if messages and raw.lstrip()[:1] == b"[":
        candidates.append(js_stringify(messages[0]).encode("utf-8", "surrogatepass"))
    valid = [
        hmac.compare_digest(given, hmac.new(key, body, hashlib.sha1).hexdigest().encode())
        for body in candidates
    ]
    if not any(valid):
        raise unauthorized("X-Signature does not match the body")
