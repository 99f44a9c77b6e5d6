"""track -> user event: key, fields, date, idempotency key and upsert strategy."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.outcomes import Outcome
from saasquatch.calls import Purpose

from ..factories import NOW, plan_for, spec_track
from ..support.saasquatch_rules import check_events, check_upsert


def event_of(message: dict[str, Any], **options: Any) -> dict[str, Any]:
    """The single event body the plan sends, checked against SaaSquatch's rules."""
    plan = plan_for(message, **options)
    assert plan.outcome is Outcome.DELIVERED, plan
    sends = [call for call in plan.calls if call.purpose is Purpose.TRACK_EVENT]
    assert len(sends) == 1
    assert sends[0].body is not None
    check_events(sends[0].body)
    return sends[0].body


def test_custom_event_becomes_one_exact_call_with_upsert_on_missing_user() -> None:
    plan = plan_for(spec_track())
    (send,) = plan.calls
    assert (send.method, send.path) == ("POST", "/open/account/AiUGstSDIg/user/AiUGstSDIg/events")
    assert send.headers == {}
    assert send.body == {
        "userId": "AiUGstSDIg",
        "accountId": "AiUGstSDIg",
        "idempotencyKey": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
        "events": [
            {
                "key": "courseClicked",
                "fields": {"title": "Intro to Analytics", "course_level": 2},
                "dateTriggered": 1794514878998,
            }
        ],
    }
    upsert = plan.upsert_on_missing_user
    assert upsert is not None
    assert (upsert.method, upsert.path) == ("PUT", "/open/account/AiUGstSDIg/user/AiUGstSDIg")
    assert upsert.body == {
        "id": "AiUGstSDIg",
        "accountId": "AiUGstSDIg",
        "email": "ada@example.com",
        "firstName": "Ada",
        "locale": "en_GB",
    }, "a track's upsert carries standard fields only, never custom fields"
    assert upsert.headers["X-Forwarded-For"] == "108.0.78.21"
    check_upsert(upsert.body)
    assert (plan.event_key, plan.idempotency_key) == (
        "courseClicked",
        "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    )


def test_upsert_strategy_always_upserts_first() -> None:
    plan = plan_for(spec_track(), track_upsert_strategy="always")
    assert [call.purpose for call in plan.calls] == [Purpose.UPSERT_USER, Purpose.TRACK_EVENT]
    assert plan.upsert_on_missing_user is None


def test_upsert_strategy_never_sends_only_the_event() -> None:
    plan = plan_for(spec_track(), track_upsert_strategy="never")
    assert [call.purpose for call in plan.calls] == [Purpose.TRACK_EVENT]
    assert plan.upsert_on_missing_user is None


def test_account_id_in_context_traits_makes_a_shared_account() -> None:
    message = spec_track()
    message["context"]["traits"]["account_id"] = "acme"
    message["traits"] = {"account_id": "ignored-for-track"}
    plan = plan_for(message)
    (send,) = plan.calls
    assert send.path == "/open/account/acme/user/AiUGstSDIg/events"
    assert send.body is not None and send.body["accountId"] == "acme"
    assert plan.upsert_on_missing_user is not None
    assert plan.upsert_on_missing_user.path == "/open/account/acme/user/AiUGstSDIg"


@pytest.mark.parametrize(
    ("event", "key"),
    [
        ("Signed Up", "signedUp"),
        ("checkout_started", "checkoutStarted"),
        ("PDF Downloaded", "pdfDownloaded"),
        ("fooBar", "fooBar"),
        ("--foo-bar--", "fooBar"),
        ("Video Played (HD) 2x", "videoPlayedHd2X"),
        ("Café Visité", "cafeVisite"),
        ("Level Up 🎮", "levelUp"),
        ("A" * 100, "a" * 64),
    ],
)
def test_event_names_are_camel_cased_like_lodash(event: str, key: str) -> None:
    assert event_of(spec_track(event=event))["events"][0]["key"] == key


def test_configured_event_key_map_wins_over_everything() -> None:
    options = {"event_key_map": {"Order Completed": "bigOrder", "Signed Up": "registered"}}
    assert event_of(spec_track(event="Signed Up"), **options)["events"][0]["key"] == "registered"
    body = event_of(spec_track(event="Order Completed", properties={"total": 5}), **options)
    assert body["events"][0] == {
        "key": "bigOrder",
        "fields": {"total": 5},
        "dateTriggered": 1794514878998,
    }


@pytest.mark.parametrize("event", ["🎉🎉", "---", "   "])
def test_event_name_without_letters_or_digits_is_dead_lettered(event: str) -> None:
    plan = plan_for(spec_track(event=event))
    assert plan.outcome is Outcome.DEAD_LETTERED
    assert plan.reason in {"invalid_event_key", "missing_event_name"}
    assert plan.calls == ()


def test_track_without_event_name_is_dead_lettered() -> None:
    message = spec_track()
    del message["event"]
    plan = plan_for(message)
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, "missing_event_name")


def test_custom_event_field_names_are_sanitised_recursively() -> None:
    properties = {
        "plan-name": "pro",
        "plan name": "dup",
        "cart": {"item count": 3, "the-items": [{"sku id": "A"}], "😀": 1},
        "!!!": "gone",
    }
    body = event_of(spec_track(properties=properties))
    assert body["events"][0]["fields"] == {
        "planname": "pro",
        "cart": {"itemcount": 3, "theitems": [{"skuid": "A"}]},
    }


def test_event_strings_are_cut_to_1500_bytes_without_splitting_a_character() -> None:
    properties = {"ascii": "a" * 4096, "emoji": "🎉" * 4096, "mixed": "é" * 1000}
    fields = event_of(spec_track(properties=properties))["events"][0]["fields"]
    assert fields["ascii"] == "a" * 1024
    assert fields["emoji"] == "🎉" * 375  # 4 bytes each: 1500 bytes exactly
    assert fields["mixed"] == "é" * 750  # 2 bytes each
    for value in fields.values():
        assert len(value.encode("utf-8")) <= 1500


def test_byte_cut_never_splits_a_multibyte_character() -> None:
    value = "a" + "€" * 600  # 1 + 3*600 bytes; a naive cut lands mid-character
    fields = event_of(spec_track(properties={"v": value}))["events"][0]["fields"]
    assert fields["v"] == "a" + "€" * 499
    fields["v"].encode("utf-8")


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("stringify_field", {"matrix": "[[1,2],[3]]", "ok": [1, 2]}),
        ("null_field", {"matrix": None, "ok": [1, 2]}),
    ],
)
def test_arrays_of_arrays_follow_the_invalid_data_strategy(
    strategy: str, expected: dict[str, Any]
) -> None:
    properties = {"matrix": [[1, 2], [3]], "ok": [1, 2]}
    fields = event_of(spec_track(properties=properties), invalid_data_strategy=strategy)
    assert fields["events"][0]["fields"] == expected


def test_discard_event_strategy_dead_letters_arrays_of_arrays() -> None:
    plan = plan_for(
        spec_track(properties={"deep": {"matrix": [[1]]}}), invalid_data_strategy="discard_event"
    )
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, "invalid_event_data")
    assert plan.detail is not None and "deep.matrix" in plan.detail


@pytest.mark.parametrize(
    ("timestamp", "expected_ms"),
    [
        ("2026-11-12T20:21:18.998Z", 1794514878998),
        ("2026-11-12T20:21:18Z", 1794514878000),  # no milliseconds
        ("2026-11-12T22:21:18.998+02:00", 1794514878998),  # offset
        ("2026-11-12T15:21:18.998-0500", 1794514878998),
        ("2026-11-12T20:21:18.998123456Z", 1794514878998),  # nanoseconds
        ("2026-11-12T20:21:18", 1794514878000),  # no offset means UTC
    ],
)
def test_date_triggered_is_epoch_milliseconds(timestamp: str, expected_ms: int) -> None:
    body = event_of(spec_track(timestamp=timestamp))
    assert body["events"][0]["dateTriggered"] == expected_ms


def test_date_triggered_falls_back_to_original_timestamp_then_received_at() -> None:
    message = spec_track(timestamp="yesterday-ish")
    assert event_of(message)["events"][0]["dateTriggered"] == 1794514878996
    del message["originalTimestamp"]
    assert event_of(message)["events"][0]["dateTriggered"] == 1794514879300
    del message["receivedAt"]
    assert "dateTriggered" not in event_of(message)["events"][0]


@pytest.mark.parametrize(
    "when", [NOW - timedelta(days=181), NOW + timedelta(days=91), datetime(1999, 1, 1, tzinfo=UTC)]
)
def test_timestamps_out_of_window_are_dead_lettered(when: datetime) -> None:
    plan = plan_for(spec_track(timestamp=when.isoformat()))
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, "timestamp_out_of_window")


@pytest.mark.parametrize("when", [NOW - timedelta(days=179), NOW + timedelta(days=89)])
def test_timestamps_inside_the_window_are_delivered(when: datetime) -> None:
    assert plan_for(spec_track(timestamp=when.isoformat())).outcome is Outcome.DELIVERED


@pytest.mark.parametrize(
    "message_id",
    ["ajs-f8ca1e4de5024d9430b3928bd8ac6b96", "12345678", "a.b_c-D9", "x" * 64],
)
def test_message_id_that_fits_is_the_idempotency_key(message_id: str) -> None:
    assert event_of(spec_track(messageId=message_id))["idempotencyKey"] == message_id


@pytest.mark.parametrize(
    "message_id", ["short", "1234567", "x" * 65, "has space 123", "ünïcode-id-1", 42]
)
def test_message_id_that_does_not_fit_is_hashed(message_id: Any) -> None:
    expected = hashlib.sha256(str(message_id).encode()).hexdigest()
    assert event_of(spec_track(messageId=message_id))["idempotencyKey"] == expected


def test_without_message_id_the_same_message_gets_the_same_key() -> None:
    first = spec_track()
    del first["messageId"]
    second = copy.deepcopy(first)
    second["properties"] = dict(reversed(list(first["properties"].items())))  # key order
    key = event_of(first)["idempotencyKey"]
    assert len(key) == 64
    assert event_of(second)["idempotencyKey"] == key
    second["properties"]["title"] = "Another course"
    assert event_of(second)["idempotencyKey"] != key


def test_anonymous_only_track_is_ignored() -> None:
    message = spec_track()
    del message["userId"]
    plan = plan_for(message)
    assert (plan.outcome, plan.reason, plan.calls) == (Outcome.IGNORED, "anonymous", ())


def test_unicode_user_and_fields_are_kept() -> None:
    body = event_of(spec_track(userId="用户-42", properties={"città": "Zürich 🇨🇭"}))
    assert body["userId"] == "用户-42"
    assert body["events"][0]["fields"] == {"citt": "Zürich 🇨🇭"}
