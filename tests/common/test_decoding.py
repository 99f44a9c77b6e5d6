"""Bodies read with a bound and decoded as a stream: gzip (several members too), deflate (zlib
or raw), the limit on the decoded size, corrupt data, other encodings."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.decoding import (
    CorruptBody,
    EndedEarly,
    OverLimit,
    UnsupportedEncoding,
    decoded_body,
)


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate (raw)": raw_deflate,
}


def decode(body: bytes, encoding: str | None, limit: int = 1000) -> bytes:
    return decoded_body(io.BytesIO(body), encoding.split(" ")[0] if encoding else None, limit)


@given(st.binary(max_size=3000), st.sampled_from(sorted(ENCODERS)))
def test_round_trip_within_the_limit(data: bytes, encoding: str) -> None:
    encoded = ENCODERS[encoding](data)
    if len(data) <= 3000 and len(encoded) <= 3000:
        assert decode(encoded, encoding, limit=3000) == data


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_one_decoded_byte_over_the_limit_is_refused(encoding: str) -> None:
    assert decode(ENCODERS[encoding](b"x" * 1000), encoding) == b"x" * 1000
    with pytest.raises(OverLimit, match="decoded body is over the limit of 1000 bytes"):
        decode(ENCODERS[encoding](b"x" * 1001), encoding)


def test_a_bomb_stops_at_the_limit_without_inflating() -> None:
    bomb = gzip.compress(bytes(50_000_000), compresslevel=9)
    assert len(bomb) < 100_000
    with pytest.raises(OverLimit):
        decode(bomb, "gzip", limit=1_000_000)


def test_the_compressed_size_is_bounded_too() -> None:
    noise = gzip.compress(bytes(range(256)) * 8)
    with pytest.raises(OverLimit, match="compressed body"):
        decode(noise + noise, "gzip", limit=len(noise))


def test_gzip_members_are_concatenated() -> None:
    assert decode(gzip.compress(b'{"a":') + gzip.compress(b"1}"), "gzip") == b'{"a":1}'


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"not gzip at all", "gzip", "not valid gzip"),
        (gzip.compress(b"x" * 100)[:-12], "gzip", "gzip data ends early"),
        (zlib.compress(b"abc") + b"junk", "deflate", "after the end"),
        (b"\x78\x9c\xff\xff", "deflate", "not valid deflate"),
    ],
)
def test_corrupt_data_is_refused(body: bytes, encoding: str, message: str) -> None:
    with pytest.raises(CorruptBody, match=message):
        decode(body, encoding)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_other_encodings_are_unsupported(encoding: str) -> None:
    with pytest.raises(UnsupportedEncoding, match="send gzip, deflate or none"):
        decode(b"{}", encoding)


@pytest.mark.parametrize("encoding", [None, "", "identity", " Identity "])
def test_identity_is_read_as_is(encoding: str | None) -> None:
    assert decode(b'{"a": 1}', encoding) == b'{"a": 1}'
    with pytest.raises(OverLimit, match="body is over the limit"):
        decode(b"x" * 1001, encoding)


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_body_shorter_than_its_declared_length_ended_early(encoding: str | None) -> None:
    body = gzip.compress(b'{"a": 1}') if encoding else b'{"a": 1}'
    stream = io.BytesIO(body)
    assert decoded_body(stream, encoding, 1000, declared=len(body)) == b'{"a": 1}'
    with pytest.raises(EndedEarly, match=f"after {len(body)} of its {len(body) + 1} bytes"):
        decoded_body(io.BytesIO(body), encoding, 1000, declared=len(body) + 1)
