"""Request bodies read with a bound, decoding `Content-Encoding: gzip` or `deflate` as a stream.

The limit holds for the bytes on the wire and for the decoded bytes, checked while decoding, so
a small compressed body that would inflate to gigabytes (a "zip bomb") stops at `limit + 1`
decoded bytes and never sits in memory whole.
"""

from __future__ import annotations

import zlib
from typing import IO

CHUNK = 64 * 1024
IDENTITY = frozenset({"", "identity"})
GZIP = frozenset({"gzip", "x-gzip"})
DEFLATE = "deflate"


class UnsupportedEncoding(ValueError):
    """A `Content-Encoding` we cannot decode."""


class CorruptBody(ValueError):
    """A compressed body that does not decode."""


class OverLimit(ValueError):
    """More bytes than the limit, on the wire or decoded."""


class EndedEarly(ValueError):
    """Fewer bytes on the wire than the declared `Content-Length`: the client stopped (or was
    cut off) before the end. gunicorn hands over a short body without saying so."""


def decoded_body(
    stream: IO[bytes], encoding: str | None, limit: int, declared: int | None = None
) -> bytes:
    """The body, decoded, at most `limit` bytes; `declared` is its `Content-Length`, if any."""
    coding = (encoding or "").strip().lower()
    if coding in IDENTITY:
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise OverLimit(f"body is over the limit of {limit} bytes")
        _check_length(len(raw), declared)
        return raw
    if coding not in GZIP and coding != DEFLATE:
        raise UnsupportedEncoding(
            "this Content-Encoding is not supported: send gzip, deflate or none"
        )
    return _inflate(stream, coding, limit, declared)


def _check_length(received: int, declared: int | None) -> None:
    if declared is not None and received < declared:
        raise EndedEarly(f"the body ended after {received} of its {declared} bytes")


def _inflate(stream: IO[bytes], coding: str, limit: int, declared: int | None) -> bytes:
    name = "gzip" if coding in GZIP else "deflate"
    decoded = bytearray()
    decoder: zlib._Decompress | None = None
    received = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        received += len(chunk)
        if received > limit:
            raise OverLimit(f"compressed body is over the limit of {limit} bytes")
        if decoder is None:
            decoder = zlib.decompressobj(_window(coding, chunk))
        pending = chunk
        while pending:
            try:
                decoded += decoder.decompress(pending, limit + 1 - len(decoded))
            except zlib.error:
                raise CorruptBody(f"body is not valid {name} data") from None
            if len(decoded) > limit:
                raise OverLimit(f"decoded body is over the limit of {limit} bytes")
            pending = decoder.unconsumed_tail
            if decoder.eof:
                pending = decoder.unused_data + pending
                if pending and name == "gzip":
                    decoder = zlib.decompressobj(_window(coding, pending))  # another member
                elif pending:
                    raise CorruptBody("data after the end of the deflate stream")
    _check_length(received, declared)
    if decoder is None:
        return b""
    if not decoder.eof:
        raise CorruptBody(f"{name} data ends early")
    return bytes(decoded)


def _window(coding: str, first: bytes) -> int:
    """zlib's `wbits` for the stream: gzip; for deflate, the zlib wrapper HTTP specifies, or
    raw deflate, which some senders use instead (told apart by the zlib header check)."""
    if coding in GZIP:
        return 16 + zlib.MAX_WBITS
    if len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS
