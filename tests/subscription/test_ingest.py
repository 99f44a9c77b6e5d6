"""ingest: what a 200 guarantees, and every refusal. Behaviour through the in-memory topic; the
real Pub/Sub client (both publish paths, ordering, an outage) on the emulator."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from publisher import DIRECT_MIN_MESSAGES

from ..factories import PROJECT, TOKEN
from ..factories import numbered_identify as identify
from ..support.fakes import FakeTopic
from ..support.functions import MakeIngest
from ..support.pubsub import Topic

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_single_message_is_in_the_topic_after_200(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    message = identify(1)
    response = make_ingest().post("/", json=message, headers=AUTH)
    assert (response.status_code, response.get_json()) == (200, {"accepted": 1})
    (pulled,) = raw_events.pull(1)
    assert json.loads(pulled.data) == message
    assert dict(pulled.attributes) == {"type": "identify", "messageId": "msg-identify-00001"}
    assert pulled.ordering_key == ""


def test_a_batch_of_500_arrives_whole(make_ingest: MakeIngest, raw_events: FakeTopic) -> None:
    batch = [identify(n) for n in range(500)]
    response = make_ingest().post("/", json=batch, headers=AUTH)
    assert (response.status_code, response.get_json()) == (200, {"accepted": 500})
    pulled = raw_events.pull(500)
    assert sorted(json.loads(m.data)["messageId"] for m in pulled) == sorted(
        m["messageId"] for m in batch
    )
    assert len(pulled) == 500


def test_http_api_batch_envelope_arrives_whole_with_context_merged(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    body = {
        "batch": [
            identify(1),
            {
                "type": "track",
                "userId": "user-2",
                "event": "Signed Up",
                "messageId": "m-track-2",
                "context": {"ip": "10.0.0.2"},
            },
        ],
        "context": {"ip": "10.0.0.1", "library": {"name": "analytics-python", "version": "2.3"}},
        "integrations": {"All": True},
        "sentAt": "2026-11-29T10:00:00Z",
    }
    response = make_ingest().post("/", json=body, headers=AUTH)
    assert (response.status_code, response.get_json()) == (200, {"accepted": 2})
    pulled = {m.attributes["messageId"]: json.loads(m.data) for m in raw_events.pull(2)}
    assert pulled["msg-identify-00001"]["context"] == body["context"]
    assert pulled["m-track-2"]["context"] == {
        "ip": "10.0.0.2",
        "library": {"name": "analytics-python", "version": "2.3"},
    }
    assert pulled["m-track-2"]["integrations"] == {"All": True}


def test_ordering_key_is_user_id_else_anonymous_id(emulator: Any, make_ingest: MakeIngest) -> None:
    """With ordering on, the real client (the batching one, keyed) on the emulator."""
    ordered = Topic("ordered-raw", ordering=True)
    client = make_ingest(PUBSUB_TOPIC=ordered.name, PUBSUB_ORDERING="true")
    batch = [
        identify(1),
        {"type": "track", "anonymousId": "anon-9", "event": "Viewed", "messageId": "m-anon-9"},
        {"type": "track", "userId": 42, "event": "Signed Up", "messageId": "m-numeric-42"},
    ]
    assert client.post("/", json=batch, headers=AUTH).status_code == 200
    keys = {m.attributes["messageId"]: m.ordering_key for m in ordered.pull(3)}
    assert keys == {"msg-identify-00001": "user-1", "m-anon-9": "anon-9", "m-numeric-42": "42"}


REFUSALS = [
    ("no header", "POST", {}, json.dumps(identify()), 401, "missing_credentials"),
    (
        "basic",
        "POST",
        {"Authorization": "Basic c2VnbWVudDpzZWNyZXQ="},
        json.dumps(identify()),
        401,
        "malformed_credentials",
    ),
    (
        "wrong token",
        "POST",
        {"Authorization": "Bearer not-the-token"},
        json.dumps(identify()),
        401,
        "wrong_token",
    ),
    (
        "empty bearer",
        "POST",
        {"Authorization": "Bearer "},
        json.dumps(identify()),
        401,
        "malformed_credentials",
    ),
    ("empty body", "POST", AUTH, "", 400, "invalid_body"),
    ("invalid json", "POST", AUTH, '{"type": "identify",', 400, "invalid_body"),
    ("json string", "POST", AUTH, '"identify"', 400, "invalid_body"),
    ("json number", "POST", AUTH, "42", 400, "invalid_body"),
    ("utf-16", "POST", AUTH, json.dumps(identify()).encode("utf-16"), 400, "invalid_body"),
    ("utf-32", "POST", AUTH, json.dumps(identify()).encode("utf-32"), 400, "invalid_body"),
    ("batch not an array", "POST", AUTH, '{"batch": {"type": "identify"}}', 400, "invalid_body"),
    ("gzip that is not", "POST", {**AUTH, "Content-Encoding": "gzip"}, "{}", 400, "malformed_body"),
    ("brotli", "POST", {**AUTH, "Content-Encoding": "br"}, "{}", 415, "unsupported_encoding"),
    ("GET", "GET", AUTH, "", 405, "method_not_allowed"),
]


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "reason"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusals_answer_json_with_their_reason_and_publish_nothing(
    make_ingest: MakeIngest,
    raw_events: FakeTopic,
    method: str,
    headers: dict[str, str],
    body: str | bytes,
    status: int,
    reason: str,
) -> None:
    client = make_ingest()
    response = client.open("/", method=method, data=body, headers=headers)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert isinstance(error, str) and error
    assert response.get_json()["reason"] == reason
    # Said in our words: no exception name, no library's advice, no stack trace.
    assert not re.search(r"Error\b|Exception|sys\.|Traceback", response.get_data(as_text=True))
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if status == 405:
        assert response.headers["Allow"] == "POST, PUT, PATCH"
    assert_only_marker_published(client, raw_events)


# What strict JSON refuses, or what is not an object, inside one item of a batch.
BAD_ITEMS = {
    "not an object": (b"1", "item 1 is a JSON number, not an object"),
    "NaN": (b'{"type":"track","userId":"u","event":"E","properties":{"x":NaN}}', "NaN is not JSON"),
    "1e999": (b'{"type":"track","userId":"u","properties":{"x":1e999}}', "a number is too large"),
    "underflow": (
        b'{"type":"track","userId":"u","properties":{"x":1.0e-400}}',
        "a number is too small (it would become 0)",
    ),
    "5000 digits": (
        b'{"type":"track","userId":"u","properties":{"x":' + b"9" * 5000 + b"}}",
        "an integer has more than 4300 digits",
    ),
    "invalid utf-8": (b'{"type":"identify","userId":"\xff\xfe"}', "a string is not valid UTF-8"),
    "surrogate bytes": (
        b'{"type":"identify","userId":"\xed\xa0\x80"}',
        "a string is not valid UTF-8",
    ),
}


@pytest.mark.parametrize("bad", BAD_ITEMS, ids=list(BAD_ITEMS))
def test_one_bad_item_is_set_aside_and_every_good_one_published(
    make_ingest: MakeIngest, raw_events: FakeTopic, bad: str
) -> None:
    """Segment drops a batch answered 4xx: one bad item must not cost the 3,999 good ones. It
    is published as its text, marked with why, for deliver to dead-letter."""
    text, why = BAD_ITEMS[bad]
    good = [identify(n) for n in range(4000)]
    body = (
        b"["
        + b",".join(
            [
                *(json.dumps(m).encode() for m in good[:1]),
                text,
                *(json.dumps(m).encode() for m in good[1:]),
            ]
        )
        + b"]"
    )
    answer = make_ingest().post("/", data=body, headers=AUTH)
    assert (answer.status_code, answer.get_json()) == (200, {"accepted": 4001, "invalid": 1})
    published = raw_events.pull()
    marked = [m for m in published if "invalidItem" in m.attributes]
    assert [m.attributes["invalidItem"] for m in marked] == [why]
    assert marked[0].data == text
    assert sorted(json.loads(m.data)["messageId"] for m in published if m not in marked) == sorted(
        m["messageId"] for m in good
    )


def assert_only_marker_published(client: FlaskClient, raw_events: FakeTopic) -> None:
    marker = identify(99999)
    assert client.post("/", json=marker, headers=AUTH).status_code == 200
    assert [json.loads(m.data) for m in raw_events.pull(2, timeout=3)] == [marker]


def test_body_one_byte_over_the_limit_is_413(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    body = json.dumps(identify()).encode()
    client = make_ingest(MAX_BODY_BYTES=len(body) - 1)
    response = client.post("/", data=body, headers=AUTH)
    assert response.status_code == 413
    assert "limit" in response.get_json()["error"]
    exact = make_ingest(MAX_BODY_BYTES=len(body))
    assert exact.post("/", data=body, headers=AUTH).status_code == 200
    assert len(raw_events.pull(2, timeout=3)) == 1


def test_lone_surrogates_anywhere_are_published_as_replacement_characters(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    """Valid in a JSON escape, invalid in UTF-8: in ids, attributes and values they become
    U+FFFD, so Pub/Sub takes the message and every consumer can read it."""
    body = (
        '{"type": "track", "event": "Signed Up", "userId": "u-\\ud83c", '
        '"messageId": "m-\\udc00-1", "properties": {"note": "half \\ud83c"}}'
    )
    client = make_ingest()
    assert client.post("/", data=body, headers=AUTH).get_json() == {"accepted": 1}
    (pulled,) = raw_events.pull(1)
    message = json.loads(pulled.data.decode("utf-8"))
    assert message["messageId"] == pulled.attributes["messageId"] == "m-\ufffd-1"
    assert (message["userId"], message["properties"]["note"]) == ("u-\ufffd", "half \ufffd")


def test_several_direct_tokens_are_accepted(make_ingest: MakeIngest) -> None:
    client = make_ingest(INGEST_TOKEN="old-token, new-token")
    for token in ("old-token", "new-token"):
        headers = {"Authorization": f"bearer {token}"}
        assert client.post("/", json=identify(), headers=headers).status_code == 200
    assert client.post("/", json=identify(), headers=AUTH).status_code == 401


def test_a_publish_that_fails_is_503_and_nothing_is_acknowledged(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    client = make_ingest()
    raw_events.down = True
    for body in (identify(), [identify(n) for n in range(DIRECT_MIN_MESSAGES)]):
        response = client.post("/", json=body, headers=AUTH)
        assert response.status_code == 503
        assert response.get_json() == {
            "error": "could not publish to Pub/Sub in time, retry later",
            "reason": "publish_failed",
        }
    raw_events.down = False
    assert client.post("/", json=identify(), headers=AUTH).status_code == 200
    assert len(raw_events.pull()) == 1


def test_publish_failure_is_503_within_the_timeout_then_recovers(
    make_ingest: MakeIngest, emulator: Any
) -> None:
    """The real client's small-request path (coalesced) on the emulator: a topic that does not
    exist yet is a 503 within the publish timeout, then works once it does."""
    client = make_ingest(PUBSUB_TOPIC="not-created-yet", PUBLISH_TIMEOUT_SECONDS="2")
    response = client.post("/", json=identify(), headers=AUTH)
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "could not publish to Pub/Sub in time, retry later",
        "reason": "publish_failed",
    }
    created = Topic("not-created-yet")
    response = client.post("/", json=identify(), headers=AUTH)
    assert response.status_code == 200
    assert len(created.pull(1)) == 1


def test_a_large_batch_that_cannot_be_published_is_503_too(
    make_ingest: MakeIngest, emulator: Any
) -> None:
    """Batches of DIRECT_MIN_MESSAGES or more take the direct Publish path."""
    client = make_ingest(PUBSUB_TOPIC="not-there-either", PUBLISH_TIMEOUT_SECONDS="2")
    batch = [identify(n) for n in range(DIRECT_MIN_MESSAGES)]
    response = client.post("/", json=batch, headers=AUTH)
    assert response.status_code == 503
    created = Topic("not-there-either")
    assert client.post("/", json=batch, headers=AUTH).get_json() == {"accepted": len(batch)}
    assert len(created.pull(len(batch))) == len(batch)


def sign(body: bytes, secret: str = "segment-shared") -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_signature_over_the_raw_body(make_ingest: MakeIngest) -> None:
    client = make_ingest(SEGMENT_SHARED_SECRET="segment-shared")
    body = json.dumps(identify(), indent=2).encode()
    ok = client.post("/", data=body, headers={**AUTH, "X-Signature": sign(body)})
    assert ok.status_code == 200
    assert client.post("/", data=body, headers=AUTH).status_code == 401
    bad = client.post("/", data=body, headers={**AUTH, "X-Signature": sign(body, "other")})
    assert (bad.status_code, bad.get_json()) == (
        401,
        {"error": "X-Signature does not match the body", "reason": "bad_signature"},
    )


def test_signature_of_a_batch_covers_its_first_element_as_sent(make_ingest: MakeIngest) -> None:
    """Whatever the whitespace around it; js_bodies has the bytes JavaScript writes."""
    client = make_ingest(SEGMENT_SHARED_SECRET="segment-shared")
    first = '{"type":"track","userId":"\u00fc-1","properties":{"total":30.0,"x":1E2}}'
    body = f"\n [ {first} ,\n{json.dumps(identify(2))}]".encode()
    response = client.post("/", data=body, headers={**AUTH, "X-Signature": sign(first.encode())})
    assert (response.status_code, response.get_json()) == (200, {"accepted": 2})
    upper = sign(first.encode()).upper()
    assert client.post("/", data=body, headers={**AUTH, "X-Signature": upper}).status_code == 200
    # The classic Webhooks destination signs the whole body, batch or not.
    whole = client.post("/", data=body, headers={**AUTH, "X-Signature": sign(body)})
    assert whole.status_code == 200


def test_one_structured_log_line_per_request_without_token_or_body(
    make_ingest: MakeIngest, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_ingest()
    capsys.readouterr()
    headers = {**AUTH, "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"}
    client.post("/", json=[identify(1), identify(2)], headers=headers)
    client.post("/", json=identify(3), headers={"Authorization": "Bearer guess-token"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    ok, refused = lines
    assert ok["severity"] == "INFO"
    assert (ok["status"], ok["count"], ok["outcome"]) == (200, 2, "accepted")
    assert ok["latency_ms"] >= 0
    assert ok["logging.googleapis.com/trace"] == (
        f"projects/{PROJECT}/traces/105445aa7843bc8bf206b12000100000"
    )
    assert (refused["status"], refused["outcome"], refused["reason"]) == (
        401,
        "refused",
        "wrong_token",
    )
    assert refused["severity"] == "WARNING" and "count" not in refused
    text = json.dumps(lines)
    for secret in (TOKEN, "guess-token", "user1@example.com", "plan"):
        assert secret not in text
