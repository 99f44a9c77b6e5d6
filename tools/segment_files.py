"""Segment messages read from files, one item at a time, so memory stays flat on any file size.

A file is JSON Lines (one message, array or batch envelope per line; Segment's exports and S3/GCS
archives) or one JSON array of messages; either may be gzip-compressed (detected from its first
bytes, not its name). Items are numbered from 1: lines for JSON Lines, array elements for an array.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mapper.dialects import BodyError, messages_from_body, reject_constant

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
# No Segment message comes near this; past it an array element is taken to be broken.
MAX_ITEM_BYTES = 64 << 20

# A backfill file as read: plain, or gzip-compressed.
Readable = gzip.GzipFile | io.BufferedReader


@dataclass(frozen=True, slots=True)
class Item:
    number: int
    messages: list[dict[str, Any]]
    error: str | None = None


_DECODER = json.JSONDecoder(parse_constant=reject_constant)


class SegmentFile:
    """Iterate with `items(resume_from)`; `position()` is how many bytes of the file (compressed
    bytes for gzip) have been read, for a progress bar."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw: IO[bytes] | None = None

    def position(self) -> int:
        return self._raw.tell() if self._raw is not None and not self._raw.closed else 0

    def items(self, resume_from: int = 1) -> Iterator[Item]:
        with self.path.open("rb") as raw:
            self._raw = raw
            stream: Readable = raw
            if raw.peek(2)[:2] == _GZIP_MAGIC:
                stream = gzip.GzipFile(fileobj=raw)
            if stream.peek(4096).lstrip()[:1] == b"[":
                yield from _array_items(stream, resume_from)
            else:
                yield from _line_items(stream, resume_from)


def _line_items(stream: Readable, resume_from: int) -> Iterator[Item]:
    for number, line in enumerate(stream, start=1):
        if number < resume_from or not line.strip():
            continue
        try:
            value = _DECODER.decode(line.decode("utf-8"))
            yield Item(number, messages_from_body(value))
        except UnicodeDecodeError:
            yield Item(number, [], "not UTF-8")
        except BodyError as error:  # before ValueError, which it is
            yield Item(number, [], str(error))
        except (ValueError, RecursionError) as error:
            yield Item(number, [], f"not JSON: {error}"[:200])


def _array_items(stream: Readable, resume_from: int) -> Iterator[Item]:
    """Elements of a top-level array, decoded one by one from a sliding text buffer."""
    text = codecs.getincrementaldecoder("utf-8")("replace")
    buffer = ""
    position = 0
    at_end = False

    def more() -> None:
        nonlocal buffer, position, at_end
        chunk = stream.read(_CHUNK)
        at_end = not chunk
        buffer = buffer[position:] + text.decode(chunk, final=at_end)
        position = 0

    more()
    while (position := _skip_space(buffer, position)) >= len(buffer) and not at_end:
        more()
    position += 1  # past the opening [ (peeked before this was called)
    number = 0
    while True:
        position = _skip_space(buffer, position)
        if position >= len(buffer):
            if at_end:
                yield Item(number + 1, [], "the array ends without a closing ]")
                return
            more()
            continue
        if buffer[position] == "]":
            return
        if number and buffer[position] == ",":
            position = _skip_space(buffer, position + 1)
            if position >= len(buffer) and not at_end:
                more()
                continue
        try:
            value, end = _DECODER.raw_decode(buffer, position)
        except (ValueError, RecursionError) as error:
            if not at_end and len(buffer) - position < MAX_ITEM_BYTES:
                more()  # the element may just continue in the next chunk
                continue
            reason = f"not JSON, the rest of the array cannot be read: {error}"
            yield Item(number + 1, [], reason[:200])
            return
        number += 1
        position = end
        if number < resume_from:
            continue
        try:
            yield Item(number, messages_from_body(value))
        except BodyError as error:
            yield Item(number, [], str(error))


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position
