"""forward's parts without Pub/Sub: what each Segment answer means, the Segment client on the
wire (Basic auth with the write key, the batch body, its limits), and the settings' refusals."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from common.outcomes import Outcome, Reason
from common.settings import ConfigError
from saasquatch.client import FixedApiKey
from segment_api.client import EU_BASE_URL, SegmentClient, SegmentError
from stream import map_webhook
from stream.forward import classify, send
from stream.forward_settings import ForwardSettings

from ..support.segment_standin import WRITE_KEY, SegmentStandIn

HOOK = {"id": "w-1", "type": "reward.created", "created": 1764672000123, "data": {"userId": "u"}}


@pytest.fixture
def segment_api() -> Iterator[SegmentStandIn]:
    with SegmentStandIn() as stand_in:
        yield stand_in


def client(base_url: str, key: str = WRITE_KEY) -> SegmentClient:
    return SegmentClient(base_url, FixedApiKey(key), timeout=2, clock=lambda: 1764672001.5)


def test_a_batch_goes_to_v1_batch_with_the_write_key_as_basic_user(
    segment_api: SegmentStandIn,
) -> None:
    calls = map_webhook(HOOK).calls
    assert client(segment_api.base_url).send_batch(calls) == 200
    [batch] = segment_api.batches
    expected = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    assert batch.headers["Authorization"] == f"Basic {expected}"
    assert batch.headers["Content-Type"] == "application/json"
    assert batch.body == {"batch": list(calls), "sentAt": "2025-12-02T10:40:01.500Z"}


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "reason"),
    [
        (429, {"Retry-After": "7"}, Outcome.RETRY, Reason.SEGMENT_RATE_LIMITED),
        (500, {}, Outcome.RETRY, Reason.SEGMENT_UNAVAILABLE),
        (503, {}, Outcome.RETRY, Reason.SEGMENT_UNAVAILABLE),
        (408, {}, Outcome.RETRY, Reason.SEGMENT_UNAVAILABLE),
        (400, {}, Outcome.DEAD_LETTERED, Reason.SEGMENT_REJECTED),
        (413, {}, Outcome.DEAD_LETTERED, Reason.SEGMENT_REJECTED),
        (401, {}, Outcome.DEAD_LETTERED, Reason.SEGMENT_UNAUTHORIZED),
        (403, {}, Outcome.DEAD_LETTERED, Reason.SEGMENT_UNAUTHORIZED),
    ],
)
def test_each_segment_answer_is_retried_or_dead_lettered(
    segment_api: SegmentStandIn,
    status: int,
    headers: dict[str, str],
    outcome: Outcome,
    reason: Reason,
) -> None:
    segment_api.fail(status, **headers)
    result = send(map_webhook(HOOK), client(segment_api.base_url))
    assert (result.outcome, result.reason, result.status) == (outcome, reason, status)
    assert result.retry_after == (7.0 if headers else None)


def test_a_wrong_write_key_is_segment_unauthorized(segment_api: SegmentStandIn) -> None:
    result = send(map_webhook(HOOK), client(segment_api.base_url, key="wrong"))
    assert (result.outcome, result.reason, result.status) == (
        Outcome.DEAD_LETTERED,
        Reason.SEGMENT_UNAUTHORIZED,
        401,
    )


def test_no_answer_is_retried() -> None:
    result = send(map_webhook(HOOK), client("http://127.0.0.1:9"))
    assert (result.outcome, result.reason, result.status) == (
        Outcome.RETRY,
        Reason.SEGMENT_UNREACHABLE,
        None,
    )


def test_a_message_over_32_kb_is_a_dead_letter_and_nothing_is_sent(
    segment_api: SegmentStandIn,
) -> None:
    hook = {**HOOK, "data": {"userId": "u", "name": "x" * 40_000}}
    result = send(map_webhook(hook), client(segment_api.base_url))
    assert (result.outcome, result.reason) == (
        Outcome.DEAD_LETTERED,
        Reason.SEGMENT_MESSAGE_TOO_LARGE,
    )
    assert segment_api.batches == []


def test_what_the_mapper_ignores_or_dead_letters_sends_nothing(segment_api: SegmentStandIn) -> None:
    segment = client(segment_api.base_url)
    assert send(map_webhook({**HOOK, "type": "test"}), segment).reason is Reason.TEST_WEBHOOK
    assert send(map_webhook({**HOOK, "data": {}}), segment).reason is Reason.INVALID_WEBHOOK
    assert segment_api.batches == []


def test_classify_keeps_segments_status_and_retry_after() -> None:
    result = classify(SegmentError("Segment answered 429", 429, 3.0))
    assert (result.status, result.retry_after, result.calls) == (429, 3.0, 1)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({}, "set one of SEGMENT_WRITE_KEY_SECRET"),
        ({"SEGMENT_WRITE_KEY": "k", "SEGMENT_WRITE_KEY_SECRET": "s"}, "set one of"),
        (
            {"SEGMENT_WRITE_KEY": "k", "FORWARD_WEBHOOK_TYPES": "user.deleted"},
            "user.deleted has no",
        ),
        ({"SEGMENT_WRITE_KEY": "k", "SEGMENT_API_BASE_URL": "events.eu1"}, "SEGMENT_API_BASE_URL"),
        (
            {"SEGMENT_WRITE_KEY": "k", "FORWARD_EVENT_NAMES": "Referral Started"},
            "FORWARD_EVENT_NAMES: is not JSON",
        ),
        (
            {"SEGMENT_WRITE_KEY": "k", "FORWARD_EVENT_NAMES": '["Referral Started"]'},
            "FORWARD_EVENT_NAMES: must be a JSON object",
        ),
        (
            {"SEGMENT_WRITE_KEY": "k", "FORWARD_EVENT_NAMES": '{"referral.created": "X"}'},
            "FORWARD_EVENT_NAMES: referral.created has no Segment call",
        ),
        (
            {"SEGMENT_WRITE_KEY": "k", "FORWARD_EVENT_NAMES": '{"user.created": "Signed Up"}'},
            "FORWARD_EVENT_NAMES: user.created becomes an identify",
        ),
        (
            {"SEGMENT_WRITE_KEY": "k", "FORWARD_EVENT_NAMES": '{"reward.created": ""}'},
            "FORWARD_EVENT_NAMES: the name for reward.created must be a non-empty string",
        ),
        (
            {"SEGMENT_WRITE_KEY": "k", "FORWARD_EVENT_NAMES": '{"a":' * 100_000},
            "FORWARD_EVENT_NAMES: is not JSON",
        ),
    ],
)
def test_forward_refuses_an_unsafe_start_naming_the_setting(
    settings: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        ForwardSettings.checked(**settings)


def test_the_allow_list_and_the_eu_endpoint_are_read() -> None:
    settings = ForwardSettings.checked(
        SEGMENT_WRITE_KEY="k",
        SEGMENT_API_BASE_URL=EU_BASE_URL + "/",
        FORWARD_WEBHOOK_TYPES="reward.created, user.created",
    )
    assert settings.SEGMENT_API_BASE_URL == EU_BASE_URL
    assert settings.stream_options.types == {"reward.created", "user.created"}
    assert ForwardSettings.checked(SEGMENT_WRITE_KEY="k").stream_options.types is None


def test_event_names_are_read_and_reach_the_mapper() -> None:
    settings = ForwardSettings.from_env(
        {
            "SEGMENT_WRITE_KEY": "k",
            "FORWARD_EVENT_NAMES": '{"referral.started": "Referral Started"}',
        }
    )
    hook = {
        "id": "w-2",
        "type": "referral.started",
        "data": {"id": "r-1", "referrer": {"id": "u-1"}},
    }
    [call] = map_webhook(hook, settings.stream_options).calls
    assert call["event"] == "Referral Started"
    assert ForwardSettings.default("FORWARD_EVENT_NAMES") == "{}"
    [call] = map_webhook(hook, ForwardSettings.checked(SEGMENT_WRITE_KEY="k").stream_options).calls
    assert call["event"] == "Referral Created"


def test_a_lone_surrogate_is_sent_as_valid_utf_8(segment_api: SegmentStandIn) -> None:
    """JSON allows `"\\ud800"`, UTF-8 does not: the client writes U+FFFD instead of failing."""
    hook = {**HOOK, "data": {"userId": "u", "name": "half \ud83d of a pair"}}
    assert client(segment_api.base_url).send_batch(map_webhook(hook).calls) == 200
    [batch] = segment_api.batches
    assert batch.body["batch"][0]["properties"]["name"] == "half \ufffd of a pair"
