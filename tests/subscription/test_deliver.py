"""`deliver` as the Functions Framework serves it: push envelopes in, SaaSquatch calls out (to
its stand-in), dead letters on the in-memory topic (the real client once, on the emulator)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..factories import EMAIL, PROJECT, envelope, identify, track
from ..support.fakes import FakeTopic
from ..support.functions import MakeDeliver
from ..support.saasquatch_standin import (
    API_KEY,
    TENANT,
    SaaSquatchStandIn,
    error_body,
    is_events,
)


def log_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def deliver_lines(out: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(out) if line.get("entry_point") == "deliver"]


# --- delivered ------------------------------------------------------------------------------------


def test_identify_push_is_upserted_and_acked(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn
) -> None:
    client = make_deliver()
    answer = client.post("/", json=envelope(identify()))
    assert answer.status_code == 200
    assert answer.json == {"outcome": "delivered"}
    [sent] = saasquatch_api.requests
    assert (sent.method, sent.path) == ("PUT", f"/api/v1/{TENANT}/open/account/u-1001/user/u-1001")
    assert sent.headers["Authorization"] == saasquatch_api.basic(API_KEY)
    assert sent.body == {
        "id": "u-1001",
        "accountId": "u-1001",
        "email": EMAIL,
        "firstName": "Peter",
        "lastName": "Gibbons",
        "customFields": {"plan": "pro"},
    }


def test_ignored_by_design_is_acked_without_a_call(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, dead_lettered: FakeTopic
) -> None:
    client = make_deliver()
    answer = client.post("/", json=envelope({"type": "page", "userId": "u-1"}))
    assert answer.status_code == 200
    assert answer.json == {"outcome": "ignored", "reason": "unsupported_type"}
    assert saasquatch_api.requests == []
    assert dead_lettered.pull(1, timeout=1) == []


# --- dead letters ---------------------------------------------------------------------------------


def test_data_that_is_not_json_is_dead_lettered_and_acked(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, dead_lettered: FakeTopic
) -> None:
    client = make_deliver()
    answer = client.post("/", json=envelope(b"\xff not json", {"type": "track"}, "99"))
    assert answer.status_code == 200
    assert answer.json == {"outcome": "dead_lettered", "reason": "malformed_message"}
    [letter] = dead_lettered.pull(1)
    assert letter.data == b"\xff not json"
    attributes = dict(letter.attributes)
    assert attributes["reason"] == "malformed_message"
    assert attributes["type"] == "track", "the original attributes are kept"
    assert attributes["sourceMessageId"] == "99"
    assert attributes["sourceSubscription"] == f"projects/{PROJECT}/subscriptions/deliver"
    assert "status" not in attributes, "SaaSquatch was never called"
    assert saasquatch_api.requests == []


@pytest.mark.parametrize("data", [b"[1, 2]", b'"text"', b"", b"{"])
def test_data_that_is_not_a_json_object_is_dead_lettered(
    make_deliver: MakeDeliver, dead_lettered: FakeTopic, data: bytes
) -> None:
    client = make_deliver()
    assert client.post("/", json=envelope(data)).json["reason"] == "malformed_message"
    [letter] = dead_lettered.pull(1)
    assert letter.data == data


def test_a_rejected_call_is_dead_lettered_with_saasquatch_answer(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, dead_lettered: FakeTopic
) -> None:
    client = make_deliver()
    saasquatch_api.fail(400)
    before = datetime.now(UTC)
    original = envelope(identify(), {"type": "identify", "messageId": "m-ident-0001"})
    original["message"]["orderingKey"] = "u-1001"
    original["deliveryAttempt"] = 3
    answer = client.post("/", json=original)
    assert answer.status_code == 200
    assert answer.json == {"outcome": "dead_lettered", "reason": "saasquatch_rejected"}
    [letter] = dead_lettered.pull(1)
    assert json.loads(letter.data) == identify()
    attributes = dict(letter.attributes)
    assert attributes["reason"] == "saasquatch_rejected"
    assert attributes["status"] == "400"
    assert attributes["apiErrorCode"] == "FAULT_400"
    assert attributes["rsCode"] == "RS400"
    assert attributes["detail"].startswith("upsert_user: SaaSquatch answered 400")
    assert attributes["orderingKey"] == "u-1001"
    assert attributes["deliveryAttempt"] == "3"
    assert attributes["type"] == "identify"
    assert attributes["messageId"] == "m-ident-0001"
    when = datetime.fromisoformat(attributes["deadLetteredAt"])
    assert before - timedelta(seconds=1) <= when <= datetime.now(UTC)


def test_mapping_dead_letters_are_published_too(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, dead_lettered: FakeTopic
) -> None:
    client = make_deliver()
    old = track(timestamp="2020-01-01T00:00:00Z")
    answer = client.post("/", json=envelope(old))
    assert answer.json == {"outcome": "dead_lettered", "reason": "timestamp_out_of_window"}
    [letter] = dead_lettered.pull(1)
    assert letter.attributes["reason"] == "timestamp_out_of_window"
    assert saasquatch_api.requests == []


def test_when_the_dead_letter_publish_fails_the_push_is_nacked(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, dead_lettered: FakeTopic
) -> None:
    dead_lettered.down = True
    saasquatch_api.fail(400)
    answer = make_deliver().post("/", json=envelope(identify()))
    assert answer.status_code == 503
    assert answer.json["reason"] == "dead_letter_publish_failed"
    dead_lettered.down = False
    saasquatch_api.fail(400)
    assert make_deliver().post("/", json=envelope(identify())).status_code == 200
    [letter] = dead_lettered.pull()
    assert letter.attributes["reason"] == "saasquatch_rejected"


def test_the_real_client_nacks_when_the_dead_letter_topic_is_missing(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, emulator: Any
) -> None:
    emulator.reset()  # no dead-letter topic at all
    client = make_deliver(DEAD_LETTER_TOPIC="missing-topic", PUBLISH_TIMEOUT_SECONDS="2")
    saasquatch_api.fail(400)
    answer = client.post("/", json=envelope(identify()))
    assert answer.status_code == 503
    assert answer.json["reason"] == "dead_letter_publish_failed"
    assert "error" in answer.json


# --- retries --------------------------------------------------------------------------------------


def test_a_server_error_is_nacked_with_503(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, dead_lettered: FakeTopic
) -> None:
    client = make_deliver()
    saasquatch_api.fail(500)
    answer = client.post("/", json=envelope(identify()))
    assert answer.status_code == 503
    assert answer.json["outcome"] == "retry"
    assert answer.json["reason"] == "saasquatch_unavailable"
    assert "Retry-After" not in answer.headers
    assert dead_lettered.pull(1, timeout=1) == []


def test_a_rate_limit_passes_retry_after_on_to_pubsub(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn
) -> None:
    client = make_deliver()
    saasquatch_api.fail(429, headers={"Retry-After": "2.5"})
    answer = client.post("/", json=envelope(identify()))
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.json["reason"] == "saasquatch_rate_limited"


def test_a_missing_user_is_created_then_the_event_sent(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn
) -> None:
    client = make_deliver()
    answer = client.post("/", json=envelope(track()))
    assert answer.json == {"outcome": "delivered", "reason": "user_created"}
    assert [(r.method, r.status) for r in saasquatch_api.requests] == [
        ("POST", 404),
        ("PUT", 200),
        ("POST", 200),
    ]


def test_the_same_push_twice_is_one_event_and_two_acks(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn
) -> None:
    client = make_deliver()
    saasquatch_api.add_user("u-1001", "u-1001")
    message = track(messageId="not a valid key: spaces & symbols")
    first = client.post("/", json=envelope(message))
    second = client.post("/", json=envelope(message, message_id="4712"))
    assert first.json == {"outcome": "delivered"}
    assert second.json == {"outcome": "delivered", "reason": "already_delivered"}
    events = [r for r in saasquatch_api.requests if is_events(r)]
    assert events[0].body["idempotencyKey"] == events[1].body["idempotencyKey"]
    assert len(events[0].body["idempotencyKey"]) == 64, "a SHA-256 of the messageId"
    assert [r.status for r in events] == [200, 409]
    assert list(saasquatch_api.delivered_events.values()) == [1]


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"not json", 400),
        (b"[]", 400),
        (b'{"subscription": "s"}', 400),
        (b'{"message": {"data": "not base64!"}}', 400),
        (b'{"message": {"data": 12}}', 400),
        (b'{"message": {"data": "e30=", "attributes": {"a": 1}}}', 400),
    ],
)
def test_a_request_that_is_not_a_push_envelope_is_400(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, body: bytes, status: int
) -> None:
    client = make_deliver()
    answer = client.post("/", data=body, content_type="application/json")
    assert answer.status_code == status
    assert answer.json.keys() == {"error", "reason"}
    assert answer.json["reason"] == "invalid_body"
    assert saasquatch_api.requests == []


def test_only_post_is_accepted(make_deliver: MakeDeliver) -> None:
    answer = make_deliver().get("/")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert "error" in answer.json


# --- logs and dry run -----------------------------------------------------------------------------


def test_one_log_line_per_message_with_its_outcome_and_no_secrets(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_deliver()
    message = track(userId=EMAIL, messageId="m-log-00001")
    original = envelope(message, message_id="777")
    original["deliveryAttempt"] = 2
    client.post("/", json=original, headers={"X-Cloud-Trace-Context": "abc123/1;o=1"})
    out = capsys.readouterr().out
    [line] = deliver_lines(out)
    assert line["outcome"] == "delivered"
    assert line["reason"] == "user_created"
    assert line["message_type"] == "track"
    # A sender's text (the event name) is a hash in the log: printf %s signedUp | sha256sum
    assert line["event_key"] == "sha256:" + hashlib.sha256(b"signedUp").hexdigest()[:12]
    assert line["idempotency_key"] == "m-log-00001"
    assert line["saasquatch_status"] == 200
    assert line["calls"] == 3
    assert 0 < line["saasquatch_ms"] <= line["latency_ms"]
    assert line["pubsub_message_id"] == "777"
    assert line["delivery_attempt"] == 2
    assert line["status"] == 200
    assert line["latency_ms"] >= 0
    assert line["dry_run"] is False
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/abc123"
    assert API_KEY not in out
    assert EMAIL not in out


def test_a_failure_detail_from_saasquatch_is_logged_without_the_email(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    dead_lettered: FakeTopic,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_deliver(TRACK_UPSERT_STRATEGY="never")
    client.post("/", json=envelope(track(userId=EMAIL)))
    out = capsys.readouterr().out
    [line] = deliver_lines(out)
    assert (line["outcome"], line["reason"]) == ("dead_lettered", "user_not_found")
    assert line["severity"] == "ERROR"
    # SaaSquatch's own words quote the id: never in the log, only with the dead letter.
    assert line["detail"] == "track_event: SaaSquatch answered 404 (USER_NOT_FOUND, RS014)"
    assert "No user with id" not in out and EMAIL not in out
    [letter] = dead_lettered.pull()
    assert f"No user with id {EMAIL}" in letter.attributes["detail"]


def test_dry_run_logs_the_exact_calls_and_sends_nothing(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_deliver(DRY_RUN="true")
    answer = client.post("/", json=envelope(identify(userId=EMAIL)))
    assert answer.json == {"outcome": "delivered"}
    assert saasquatch_api.requests == []
    out = capsys.readouterr().out
    [call] = [line for line in log_lines(out) if line.get("dry_run") is True and "url" in line]
    assert call["method"] == "PUT"
    base = f"{saasquatch_api.base_url}/api/v1/{TENANT}"
    assert call["url"] == f"{base}/open/account/{{accountId}}/user/{{userId}}"
    # Names and shapes, never values: not the email, not the name, not the ids.
    assert call["body"]["email"] == f"str({len(EMAIL)})"
    assert call["body"]["firstName"] == "str(5)"
    assert "Peter" not in json.dumps(call)
    [line] = deliver_lines(out)
    assert (line["outcome"], line["dry_run"]) == ("delivered", True)
    assert EMAIL not in out
    assert API_KEY not in out


def test_without_a_tenant_deliver_runs_dry(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_deliver(SAASQUATCH_TENANT_ALIAS=None, SAASQUATCH_API_KEY=None)
    assert client.post("/", json=envelope(identify())).json == {"outcome": "delivered"}
    assert saasquatch_api.requests == []
    out = capsys.readouterr().out
    assert "/api/v1/TENANT_ALIAS/open/account/{accountId}/user/{userId}" in out
    assert "u-1001" not in out


@pytest.mark.parametrize(
    "message",
    [
        identify(userId=".."),
        identify(traits={"account_id": ".."}),
        track(userId="."),
        track(context={"traits": {"accountId": ".."}}),
        {"type": "delete", "userId": "..", "messageId": "m-del-1"},
    ],
    ids=["identify user", "identify account", "track user", "track account", "delete user"],
)
def test_a_dot_segment_id_is_dead_lettered_and_never_sent(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    dead_lettered: FakeTopic,
    message: dict[str, Any],
) -> None:
    """`..` as an id would reach another endpoint with the tenant's API key at any front end
    that removes dot segments (the stand-in does, as real ones do)."""
    answer = make_deliver(HONOR_DELETE="true").post("/", json=envelope(message))
    assert answer.json == {"outcome": "dead_lettered", "reason": "dot_segment_id"}
    assert saasquatch_api.requests == []
    [letter] = dead_lettered.pull()
    assert letter.attributes["reason"] == "dot_segment_id"
    assert json.loads(letter.data) == message


def test_nothing_a_sender_wrote_reaches_the_log_even_when_saasquatch_quotes_it(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    dead_lettered: FakeTopic,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SaaSquatch's validation errors quote the request: a stand-in that echoes the whole body
    back. Names, an avatar URL, a card number, a password, a token put in a property, a
    property name and an event name that are someone's email: none of it in the log line."""
    secrets = {
        "firstName": "Evelyn",
        "imageUrl": "https://cdn.example/private/evelyn.png",
        "card": "4111 1111 1111 1111",
        "password": "hunter2-Correct-Horse",
        "token": "seg-7f3c9a1e-live-token",
    }
    echo = lambda request: error_body(  # noqa: E731
        400, f"invalid request {json.dumps(request.body)}", "INVALID", "RS002"
    )
    saasquatch_api.fail(400, body=echo, match=is_events)
    saasquatch_api.add_user("u-echo", "u-echo")
    message = track(
        userId="u-echo",
        event="eve.private@victim.example",
        properties={**secrets, "eve.private@victim.example": [1, 2]},
    )
    answer = make_deliver().post("/", json=envelope(message))
    assert answer.json == {"outcome": "dead_lettered", "reason": "saasquatch_rejected"}
    out = capsys.readouterr().out
    [line] = deliver_lines(out)
    assert line["detail"] == "track_event: SaaSquatch answered 400 (INVALID, RS002)"
    for text in [*secrets.values(), "eve.private", "evePrivate", "victim"]:
        assert text not in out, text
    [letter] = dead_lettered.pull()
    assert "hunter2-Correct-Horse" in letter.attributes["detail"]  # the operator's copy
