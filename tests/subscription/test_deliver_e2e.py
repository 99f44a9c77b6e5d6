"""The delivery half of the pipeline, end to end: messages published to the real Pub/Sub emulator
are pushed to `deliver` (served by functions-framework), which calls the SaaSquatch stand-in.

The emulator redelivers a nacked push after about a second; tests wait for outcomes, and sleep
for a fixed time only to show that something did *not* happen again.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tools.emulator import Emulator
from tools.processes import free_port

from ..factories import ORDER_COMPLETED_FIELDS, PAYLOADS, recent, track
from ..support.pipeline import Pipeline, deliver_env
from ..support.processes import Processes
from ..support.saasquatch_standin import API_KEY, TENANT, Recorded, SaaSquatchStandIn
from ..support.served import Served

pytestmark = pytest.mark.e2e

BASE = f"/api/v1/{TENANT}/open/account"


@pytest.fixture
def pipeline(
    emulator: Emulator, deliver_server: Served, saasquatch_api: SaaSquatchStandIn
) -> Pipeline:
    return Pipeline(emulator, deliver_server.url)


def with_key(key: str):
    def match(request: Recorded) -> bool:
        return isinstance(request.body, dict) and request.body.get("idempotencyKey") == key

    return match


def events_for(saasquatch_api: SaaSquatchStandIn, key: str) -> list[Recorded]:
    return [r for r in saasquatch_api.requests if with_key(key)(r)]


# --- the exact calls ---------------------------------------------------------------------------


def test_identify_track_purchase_and_refund_become_the_exact_saasquatch_calls(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn
) -> None:
    # The buyer exists; the identified user is new.
    saasquatch_api.add_user("user-1234", "user-1234")
    timestamp, millis = recent()
    identify = {
        "type": "identify",
        "userId": "peter@initech.com",
        "messageId": "m-e2e-identify",
        "traits": {
            "email": "peter@initech.com",
            "name": "Peter Gibbons",
            "accountId": "initech",
            "plan": "enterprise",
        },
        "context": {"locale": "en-US"},
    }
    signed_up = track("m-e2e-signup", userId="user-1234")
    purchase = json.loads((PAYLOADS / "order_completed.json").read_text())
    purchase["timestamp"] = timestamp
    refund = {
        "type": "track",
        "event": "Order Refunded",
        "userId": "user-1234",
        "messageId": "m-e2e-refund",
        "timestamp": timestamp,
        "properties": {"order_id": "50314b8e9bcf000000000000", "total": "27.50", "currency": "usd"},
    }
    for message in (identify, signed_up, purchase, refund):
        pipeline.publish(message, type=message["type"])

    assert saasquatch_api.wait_for(lambda: len(saasquatch_api.answered(200)) == 4)
    time.sleep(0.5)  # nothing more arrives
    assert len(saasquatch_api.requests) == 4
    for request in saasquatch_api.requests:
        assert request.headers["Authorization"] == saasquatch_api.basic(API_KEY)
        assert request.headers["Content-Type"] == "application/json"
    [upsert] = [r for r in saasquatch_api.requests if r.method == "PUT"]
    assert upsert.path == f"{BASE}/initech/user/peter%40initech.com"
    assert upsert.body == {
        "id": "peter@initech.com",
        "accountId": "initech",
        "email": "peter@initech.com",
        "firstName": "Peter",
        "lastName": "Gibbons",
        "locale": "en_US",
        "customFields": {"plan": "enterprise"},
    }
    events = [r for r in saasquatch_api.requests if r.method == "POST"]
    assert {r.path for r in events} == {f"{BASE}/user-1234/user/user-1234/events"}
    by_key = {r.body["idempotencyKey"]: r.body for r in events}
    assert by_key["m-e2e-signup"] == {
        "userId": "user-1234",
        "accountId": "user-1234",
        "idempotencyKey": "m-e2e-signup",
        "events": [{"key": "signedUp", "fields": {"plan": "pro"}, "dateTriggered": millis}],
    }
    assert by_key[purchase["messageId"]]["events"] == [
        {
            "key": "purchase",
            "fields": ORDER_COMPLETED_FIELDS,
            "dateTriggered": millis,
        }
    ]
    assert by_key["m-e2e-refund"] == {
        "userId": "user-1234",
        "accountId": "user-1234",
        "idempotencyKey": "m-e2e-refund",
        "events": [
            {
                "key": "refund",
                "fields": {
                    "order_id": "50314b8e9bcf000000000000",
                    "total": 27.5,
                    "currency": "USD",
                },
                "dateTriggered": millis,
            }
        ],
    }
    assert pipeline.dead_letters.pull(1, timeout=1) == []


# --- faults ---------------------------------------------------------------------------------------


def test_transient_failures_end_in_exactly_one_delivery_per_event(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn, deliver_server: Served
) -> None:
    saasquatch_api.add_user("u-1001", "u-1001")
    faults = {"m-fault-500": 500, "m-fault-503": 503, "m-fault-429": 429}
    for key, status in faults.items():
        saasquatch_api.fail(status, times=2, match=with_key(key), headers={"Retry-After": "1"})
        pipeline.publish(track(key))

    delivered = saasquatch_api.wait_for(
        lambda: set(saasquatch_api.delivered_events) == set(faults), 45
    )
    assert delivered, (
        [(r.body.get("idempotencyKey"), r.status, r.client_port) for r in saasquatch_api.requests],
        deliver_server.output()[-4000:],
    )
    time.sleep(2)  # long enough for any stray redelivery to show up
    assert saasquatch_api.delivered_events == dict.fromkeys(faults, 1)
    for key, status in faults.items():
        assert [r.status for r in events_for(saasquatch_api, key)] == [status, status, 200]
    assert pipeline.dead_letters.pull(1, timeout=1) == []
    retries = [line for line in deliver_server.results() if line.get("outcome") == "retry"]
    assert {line["status"] for line in retries} >= {503, 429}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "saasquatch_rejected"),
        (401, "saasquatch_unauthorized"),
        (403, "saasquatch_unauthorized"),
    ],
)
def test_permanent_failures_are_dead_lettered_once_and_acked(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn, status: int, reason: str
) -> None:
    saasquatch_api.add_user("u-1001", "u-1001")
    key = f"m-permanent-{status}"
    saasquatch_api.fail(status, times=100, match=with_key(key))
    pipeline.publish(track(key), type="track", messageId=key)
    [letter] = pipeline.dead_letters.pull(1)
    assert json.loads(letter.data)["messageId"] == key
    attributes = dict(letter.attributes)
    assert attributes["reason"] == reason
    assert attributes["status"] == str(status)
    assert attributes["apiErrorCode"] == f"FAULT_{status}"
    assert (attributes["type"], attributes["messageId"]) == ("track", key)
    time.sleep(3)  # a nacked push would have been redelivered by now
    assert len(events_for(saasquatch_api, key)) == 1, "acked: never pushed again"
    assert pipeline.dead_letters.pull(1, timeout=1) == []


def test_an_event_for_a_user_saasquatch_does_not_know_yet_upserts_first(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn
) -> None:
    message = track("m-new-user-01", context={"traits": {"email": "joanna@chotchkies.com"}})
    pipeline.publish(message)
    assert saasquatch_api.wait_for(lambda: saasquatch_api.delivered_events["m-new-user-01"] == 1)
    assert [(r.method, r.status) for r in saasquatch_api.requests] == [
        ("POST", 404),
        ("PUT", 200),
        ("POST", 200),
    ]
    assert saasquatch_api.requests[1].body == {
        "id": "u-1001",
        "accountId": "u-1001",
        "email": "joanna@chotchkies.com",
    }


def test_a_timeout_is_retried_and_the_late_success_is_not_counted_twice(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn
) -> None:
    """SaaSquatch records the event but answers after our 0.5 s timeout: the redelivery gets
    409 for the same idempotency key, which counts as delivered."""
    saasquatch_api.add_user("u-1001", "u-1001")
    saasquatch_api.fail(None, delay=1.5, match=with_key("m-slow-0001"))
    pipeline.publish(track("m-slow-0001"))
    assert saasquatch_api.wait_for(
        lambda: [r.status for r in events_for(saasquatch_api, "m-slow-0001")] == [200, 409]
    )
    assert saasquatch_api.delivered_events["m-slow-0001"] == 1
    assert pipeline.dead_letters.pull(1, timeout=1) == []


def test_a_refused_connection_is_retried_until_saasquatch_is_back(
    emulator: Emulator, saasquatch_api: SaaSquatchStandIn, processes: Processes
) -> None:
    port = free_port()
    env = deliver_env(emulator, f"http://127.0.0.1:{port}")
    lonely = processes.serve("deliver", env)
    pipeline = Pipeline(emulator, lonely.url)
    pipeline.publish(track("m-refused-01"))
    assert wait(
        lambda: any(line.get("reason") == "saasquatch_unreachable" for line in lonely.results())
    )
    with SaaSquatchStandIn(port=port) as late:
        late.add_user("u-1001", "u-1001")
        assert late.wait_for(lambda: late.delivered_events["m-refused-01"] == 1, timeout=30)
    assert pipeline.dead_letters.pull(1, timeout=1) == []


def test_data_that_is_not_json_is_dead_lettered(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn
) -> None:
    pipeline.publish(b"\x00\x01 definitely not json", source="test")
    [letter] = pipeline.dead_letters.pull(1)
    assert letter.data == b"\x00\x01 definitely not json"
    assert letter.attributes["reason"] == "malformed_message"
    assert letter.attributes["source"] == "test"
    assert saasquatch_api.requests == []


def test_the_same_message_published_twice_is_one_event(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn, deliver_server: Served
) -> None:
    saasquatch_api.add_user("u-1001", "u-1001")
    message = track("m-twice-0001")
    pipeline.publish(message)
    assert saasquatch_api.wait_for(lambda: len(events_for(saasquatch_api, "m-twice-0001")) == 1)
    pipeline.publish(message)  # Segment retried, or an operator replayed it
    assert saasquatch_api.wait_for(lambda: len(events_for(saasquatch_api, "m-twice-0001")) == 2)
    time.sleep(2)
    assert [r.status for r in events_for(saasquatch_api, "m-twice-0001")] == [200, 409]
    assert saasquatch_api.delivered_events["m-twice-0001"] == 1
    outcomes = [
        (line["outcome"], line.get("reason"))
        for line in deliver_server.results()
        if line.get("idempotency_key") == "m-twice-0001"
    ]
    assert outcomes == [("delivered", None), ("delivered", "already_delivered")]
    assert pipeline.dead_letters.pull(1, timeout=1) == []


def wait(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
