"""What ingest adds to a message on arrival, as Segment's tracking API would: the type from the
path, receivedAt, a clock-corrected timestamp, a content id; an SDK's writeKey is dropped."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapper.track import idempotency_key
from subscription.arrival import complete, content_id, path_type
from subscription.raw_events import encode_raw_event

NOW = datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC)


def arrived(message: dict[str, Any], implied: str | None = None) -> dict[str, Any]:
    message = copy.deepcopy(message)
    complete([message], implied, NOW)
    return message


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/track", "track"),
        ("/v1/identify/", "identify"),
        ("/segment/v1/page", "page"),
        ("/v1/screen", "screen"),
        ("/v1/group", "group"),
        ("/v1/alias", "alias"),
        ("/v1/batch", None),
        ("/v1/import", None),
        ("/", None),
        ("/v1/purchase", None),
        ("/v1/track/extra", None),
        ("/v2/track", None),
    ],
)
def test_the_path_implies_a_type(path: str, kind: str | None) -> None:
    assert path_type(path) == kind


def test_a_relayed_message_passes_unchanged() -> None:
    relayed = {
        "type": "track",
        "event": "Signed Up",
        "messageId": "m-1",
        "timestamp": "2026-11-29T09:00:00.000Z",
        "receivedAt": "2026-11-29T09:00:01.000Z",
    }
    assert arrived(relayed, "identify") == relayed


def test_a_bare_http_api_call_gets_type_id_and_receipt_time() -> None:
    message = arrived({"userId": "u-1", "event": "Signed Up"}, "track")
    assert message["type"] == "track"
    assert message["receivedAt"] == "2026-11-29T10:00:00.123Z"
    assert "timestamp" not in message  # the mapper falls back to receivedAt
    assert message["messageId"] == idempotency_key(
        None, {"userId": "u-1", "event": "Signed Up", "type": "track"}
    )


def test_the_timestamp_is_corrected_for_the_device_clock() -> None:
    # The device's clock is 5 minutes fast: it says it sent at 10:05:00 what happened at 10:04:58.
    message = arrived(
        {
            "type": "track",
            "originalTimestamp": "2026-11-29T10:04:58.000Z",
            "sentAt": "2026-11-29T10:05:00.000+00:00",
        }
    )
    assert message["timestamp"] == "2026-11-29T09:59:58.123Z"


@pytest.mark.parametrize(
    "times",
    [
        {"originalTimestamp": "2026-11-29T10:04:58Z"},
        {"sentAt": "2026-11-29T10:05:00Z"},
        {"originalTimestamp": "not a date", "sentAt": "2026-11-29T10:05:00Z"},
        {"originalTimestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"},
    ],
)
def test_without_both_readable_times_no_timestamp_is_made(times: dict[str, str]) -> None:
    assert "timestamp" not in arrived({"type": "track", **times})


def test_a_write_key_in_the_message_is_dropped() -> None:
    assert "writeKey" not in arrived({"type": "track", "writeKey": "the-token"})


@given(
    st.dictionaries(st.sampled_from(["userId", "event", "properties", "type"]), st.text()),
    st.text(min_size=1),
    st.text(min_size=1),
)
def test_a_retried_copy_gets_the_same_id(body: dict[str, Any], sent: str, other: str) -> None:
    """The generated id ignores the transport times, which differ between a send and its retry."""
    first = arrived({**body, "sentAt": sent})
    again = arrived({**body, "sentAt": other, "receivedAt": other})
    assert first["messageId"] == again["messageId"] == content_id({**body, "sentAt": sent})


def test_an_explicit_id_is_kept_even_when_odd() -> None:
    assert arrived({"type": "track", "messageId": 42})["messageId"] == 42


def test_attributes_and_ordering_keys_are_cut_by_utf8_bytes() -> None:
    long_id = "é" * 600  # 1,200 bytes
    encoded = encode_raw_event({"type": "track", "messageId": long_id, "userId": long_id}, True)
    for text in (encoded.attributes["messageId"], encoded.ordering_key):
        assert text == "é" * 512 and len(text.encode("utf-8")) == 1024
