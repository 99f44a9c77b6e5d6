"""forward's handler on the push-consumer core, with in-memory ports (Segment and the
dead-letter topic): what each answer becomes for Pub/Sub, for the dead-letter topic and for the
log line. The real Segment client is tested on the wire in test_forward.py, the whole path in
tests/pipeline/test_forward_e2e.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import pytest
from flask.testing import FlaskClient

from segment_api.client import (
    MAX_MESSAGE_BYTES,
    KeyUnavailable,
    MessageTooLarge,
    SegmentError,
    encode,
)
from stream.forward import create_handler
from stream.forward_settings import ForwardSettings

from ..factories import PROJECT
from ..support.fakes import FakeTopic
from ..support.functions import client_for

HOOK = {
    "id": "wh-7",
    "type": "reward.created",
    "tenantAlias": "test_tenant",
    "live": True,
    "created": 1764672000123,
    "data": {"id": "r-1", "userId": "u-1", "accountId": "a-1", "type": "CREDIT"},
}


class FakeSegment:
    """forward's `Segment` port: keeps each batch, or raises what it is told to."""

    def __init__(self) -> None:
        self.batches: list[Sequence[dict[str, Any]]] = []
        self.error: SegmentError | None = None

    def send_batch(self, messages: Sequence[dict[str, Any]]) -> int:
        if self.error is not None:
            raise self.error
        self.batches.append(messages)
        return 200


@pytest.fixture
def segment() -> FakeSegment:
    return FakeSegment()


@pytest.fixture
def dead_lettered() -> FakeTopic:
    return FakeTopic("saasquatch-webhooks-dead-letter")


@pytest.fixture
def forward(segment: FakeSegment, dead_lettered: FakeTopic) -> FlaskClient:
    settings = ForwardSettings.checked(GOOGLE_CLOUD_PROJECT=PROJECT, SEGMENT_WRITE_KEY="wk")
    return client_for(create_handler(settings, segment=segment, dead_letters=dead_lettered))


def push(data: bytes | dict[str, Any]) -> dict[str, Any]:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    message = {"data": base64.b64encode(raw).decode(), "messageId": "ps-1", "attributes": {}}
    return {"message": message, "subscription": "projects/p/subscriptions/forward"}


def log_line(out: str) -> dict[str, Any]:
    [line] = [json.loads(x) for x in out.splitlines() if '"entry_point": "forward"' in x]
    return line


def test_a_webhook_is_sent_as_one_batch_and_acked(
    forward: FlaskClient, segment: FakeSegment, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = forward.post("/", json=push(HOOK))
    assert (answer.status_code, answer.json) == (200, {"outcome": "delivered"})
    [batch] = segment.batches
    assert [call["event"] for call in batch] == ["Reward Created"]
    assert batch[0]["integrations"] == {"SaaSquatch": False, "SaaSquatch v2": False}
    line = log_line(capsys.readouterr().out)
    assert (line["webhook_type"], line["segment_status"], line["calls"]) == (
        "reward.created",
        200,
        1,
    )
    assert line["segment_ms"] >= 0


@pytest.mark.parametrize(
    ("error", "status", "reason", "retry_after"),
    [
        (SegmentError("Segment answered 429", 429, 2.5), 429, "segment_rate_limited", "3"),
        (SegmentError("Segment answered 503", 503), 503, "segment_unavailable", None),
        (SegmentError("no answer within the timeout"), 503, "segment_unreachable", None),
        (KeyUnavailable("write key unavailable"), 503, "write_key_unavailable", None),
    ],
)
def test_what_segment_cannot_take_now_is_redelivered(
    forward: FlaskClient,
    segment: FakeSegment,
    dead_lettered: FakeTopic,
    error: SegmentError,
    status: int,
    reason: str,
    retry_after: str | None,
) -> None:
    segment.error = error
    answer = forward.post("/", json=push(HOOK))
    assert (answer.status_code, answer.json["reason"]) == (status, reason)
    assert answer.headers.get("Retry-After") == retry_after
    assert dead_lettered.pull() == []


@pytest.mark.parametrize(
    ("error", "reason", "status"),
    [
        (SegmentError("Segment answered 400", 400), "segment_rejected", "400"),
        (SegmentError("Segment answered 401", 401), "segment_unauthorized", "401"),
        (SegmentError("Segment answered 404", 404), "segment_rejected", "404"),
        (
            MessageTooLarge("a track of 40870 bytes is over 32 KB"),
            "segment_message_too_large",
            None,
        ),
    ],
)
def test_what_segment_will_never_take_is_dead_lettered_with_the_webhook_as_sent(
    forward: FlaskClient,
    segment: FakeSegment,
    dead_lettered: FakeTopic,
    error: SegmentError,
    reason: str,
    status: str | None,
) -> None:
    segment.error = error
    answer = forward.post("/", json=push(HOOK))
    assert (answer.status_code, answer.json) == (
        200,
        {"outcome": "dead_lettered", "reason": reason},
    )
    [letter] = dead_lettered.pull()
    assert json.loads(letter.data) == HOOK
    assert letter.attributes["reason"] == reason
    assert letter.attributes.get("status") == status
    assert letter.attributes["sourceMessageId"] == "ps-1"


def test_data_that_is_not_a_json_object_is_dead_lettered(
    forward: FlaskClient, segment: FakeSegment, dead_lettered: FakeTopic
) -> None:
    answer = forward.post("/", json=push(b"[1, 2]"))
    assert answer.json == {"outcome": "dead_lettered", "reason": "malformed_message"}
    [letter] = dead_lettered.pull()
    assert letter.data == b"[1, 2]"
    assert segment.batches == []


def test_a_dead_letter_that_cannot_be_published_is_redelivered(
    forward: FlaskClient, segment: FakeSegment, dead_lettered: FakeTopic
) -> None:
    segment.error = SegmentError("Segment answered 400", 400)
    dead_lettered.down = True
    answer = forward.post("/", json=push(HOOK))
    assert (answer.status_code, answer.json["reason"]) == (503, "dead_letter_publish_failed")


def big_user(fields: int, chars: int) -> dict[str, Any]:
    custom = {f"custom_{i:03}": "v" * chars for i in range(fields)}
    return {
        "id": "wh-big",
        "type": "user.created",
        "tenantAlias": "test_tenant",
        "live": True,
        "created": 1764672000123,
        "data": {
            "id": "u-9",
            "accountId": "a-9",
            "email": "nine@example.com",
            "customFields": custom,
        },
    }


def test_a_user_of_100_custom_fields_of_1024_characters_reaches_segment_trimmed(
    forward: FlaskClient,
    segment: FakeSegment,
    dead_lettered: FakeTopic,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SaaSquatch's limits (100 custom fields of 1,024 characters) make an identify of about
    104 KB; it reaches Segment under 32 KB, the fields left out named, nothing dead-lettered."""
    answer = forward.post("/", json=push(big_user(100, 1024)))
    assert (answer.status_code, answer.json) == (200, {"outcome": "delivered"})
    [[identify]] = segment.batches
    assert len(encode(identify)) <= MAX_MESSAGE_BYTES
    trimmed = identify["context"]["saasquatch"]["trimmedFields"]
    kept = [name for name in identify["traits"] if name.startswith("custom_")]
    assert sorted(trimmed + kept) == [f"custom_{i:03}" for i in range(100)]
    assert len(trimmed) > 60 and kept
    assert identify["traits"]["email"] == "nine@example.com"
    assert dead_lettered.pull() == []
    line = log_line(capsys.readouterr().out)
    assert line["trimmed_count"] == len(trimmed)
    assert line["trimmed_fields"] == trimmed[:20]
    assert "vvvv" not in json.dumps(line)


def test_a_message_that_cannot_fit_is_dead_lettered_without_a_call(
    forward: FlaskClient, segment: FakeSegment, dead_lettered: FakeTopic
) -> None:
    hook = {**HOOK, "data": {"userId": "u-1", "type": "CREDIT", "name": "n" * 40_000}}
    answer = forward.post("/", json=push(hook))
    assert answer.json == {"outcome": "dead_lettered", "reason": "segment_message_too_large"}
    assert segment.batches == []
    [letter] = dead_lettered.pull()
    assert json.loads(letter.data) == hook
    assert letter.attributes["detail"].endswith("even with every optional field left out")


def test_the_event_names_setting_renames_what_reaches_segment(
    segment: FakeSegment, dead_lettered: FakeTopic
) -> None:
    settings = ForwardSettings.checked(
        GOOGLE_CLOUD_PROJECT=PROJECT,
        SEGMENT_WRITE_KEY="wk",
        FORWARD_EVENT_NAMES='{"reward.created": "Reward Given"}',
    )
    client = client_for(create_handler(settings, segment=segment, dead_letters=dead_lettered))
    assert client.post("/", json=push(HOOK)).json == {"outcome": "delivered"}
    assert segment.batches[0][0]["event"] == "Reward Given"
