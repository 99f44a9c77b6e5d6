"""The hosted v2 options end to end: Segment's Python SDK sends to ingest, which publishes to the
Pub/Sub emulator, which pushes to deliver configured with the three JSONata examples of
SaaSquatch's "Segment v2 Subscription" page, which calls the SaaSquatch stand-in.

Each message's calls are checked exactly, once deliver has logged its outcome for every message
(the signal that nothing more is coming).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
from segment.analytics import Client

from tools.emulator import Emulator

from ..factories import recent
from ..support.pipeline import RAW_TOPIC, Pipeline, deliver_env, ingest_env
from ..support.processes import Processes
from ..support.saasquatch_standin import TENANT, SaaSquatchStandIn
from ..support.served import Served

pytestmark = pytest.mark.e2e

BASE = f"/api/v1/{TENANT}/open/account"
TOKEN = "transformers-e2e-token"
EXAMPLES = {
    "IDENTIFY_SEGMENTS_TRANSFORMER": '[traits.trait2, "hardcoded"]',
    "TRACK_UPSERT_STRATEGY": 'event = "Order Completed" ? "ALWAYS" : "MISSING_USER"',
    "TRACK_UPSERT_TRANSFORMER": '{ "customFields": { "plan": properties.plan } }',
}


def outcome_lines(deliver: Served, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """deliver's outcome lines (one per push), once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = deliver.results()
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def calls_to(saasquatch_api: SaaSquatchStandIn, user: str) -> list[tuple[str, int, Any]]:
    path = f"{BASE}/{user}/user/{user}"
    return [
        (request.method, request.status, request.body)
        for request in saasquatch_api.requests
        if request.path in (path, path + "/events")
    ]


def test_the_three_docs_examples_become_the_exact_saasquatch_calls(
    emulator: Emulator, saasquatch_api: SaaSquatchStandIn, processes: Processes
) -> None:
    deliver = processes.serve("deliver", deliver_env(emulator, saasquatch_api.base_url, **EXAMPLES))
    Pipeline(emulator, deliver.url)
    ingest = processes.serve("ingest", ingest_env(emulator, RAW_TOPIC, INGEST_TOKEN=TOKEN))
    saasquatch_api.add_user("buyer", "buyer")
    saasquatch_api.add_user("member", "member")
    timestamp, millis = recent()
    when = datetime.fromisoformat(timestamp)

    errors: list[Any] = []
    client = Client(
        TOKEN,
        host=ingest.url.rstrip("/"),
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )
    client.identify("segmented", {"trait2": "test"}, message_id="m-identify-segments")
    client.track(
        "buyer",
        "Order Completed",
        {"order_id": "o-1", "total": 25, "currency": "usd", "plan": "pro"},
        timestamp=when,
        message_id="m-order-completed",
    )
    client.track(
        "newcomer", "Signed Up", {"plan": "basic"}, timestamp=when, message_id="m-new-signup"
    )
    client.track("member", "Signed Up", {"plan": "team"}, timestamp=when, message_id="m-signup")
    client.shutdown()
    assert errors == []

    lines = outcome_lines(deliver, 4)
    assert [line["outcome"] for line in lines] == ["delivered"] * 4

    # Identify: the segments the expression gives, on the upsert.
    assert calls_to(saasquatch_api, "segmented") == [
        (
            "PUT",
            200,
            {
                "id": "segmented",
                "accountId": "segmented",
                "customFields": {"trait2": "test"},
                "segments": ["test", "hardcoded"],
            },
        )
    ]

    def event(user: str, key: str, message_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "userId": user,
            "accountId": user,
            "idempotencyKey": message_id,
            "events": [{"key": key, "fields": fields, "dateTriggered": millis}],
        }

    def upsert(user: str, plan: str) -> dict[str, Any]:
        return {"id": user, "accountId": user, "customFields": {"plan": plan}}

    # Order Completed: ALWAYS, so the transformed upsert first, then the purchase.
    purchase = event(
        "buyer",
        "purchase",
        "m-order-completed",
        {"order_id": "o-1", "total": 25, "currency": "USD"},
    )
    assert calls_to(saasquatch_api, "buyer") == [
        ("PUT", 200, upsert("buyer", "pro")),
        ("POST", 200, purchase),
    ]
    # Any other event: MISSING_USER. A user SaaSquatch lacks is upserted (transformed) on the
    # 404 and the event sent once more; an existing one gets the event alone.
    signup = event("newcomer", "signedUp", "m-new-signup", {"plan": "basic"})
    assert calls_to(saasquatch_api, "newcomer") == [
        ("POST", 404, signup),
        ("PUT", 200, upsert("newcomer", "basic")),
        ("POST", 200, signup),
    ]
    assert calls_to(saasquatch_api, "member") == [
        ("POST", 200, event("member", "signedUp", "m-signup", {"plan": "team"}))
    ]
    assert len(saasquatch_api.requests) == 7


def test_a_slow_expression_dead_letters_its_message_and_the_next_one_is_delivered(
    emulator: Emulator, saasquatch_api: SaaSquatchStandIn, processes: Processes
) -> None:
    slow = "$count($map([1..1000000], function($v) { $v * 2 }))"
    deliver = processes.serve(
        "deliver",
        deliver_env(
            emulator,
            saasquatch_api.base_url,
            IDENTIFY_SEGMENTS_TRANSFORMER=f'traits.slow ? ({slow} ; "slow") : "fast"',
            TRANSFORMER_TIMEOUT_MS="100",
        ),
    )
    pipeline = Pipeline(emulator, deliver.url)
    pipeline.publish(
        {"type": "identify", "userId": "u-slow", "messageId": "m-slow", "traits": {"slow": True}}
    )
    pipeline.publish({"type": "identify", "userId": "u-fast", "messageId": "m-fast", "traits": {}})
    lines = outcome_lines(deliver, 2)
    assert sorted((line["outcome"], line.get("reason")) for line in lines) == [
        ("dead_lettered", "transformer_failed"),
        ("delivered", None),
    ]
    [dead] = pipeline.dead_letters.pull(1)
    detail = "IDENTIFY_SEGMENTS_TRANSFORMER timed out after 100 ms (JSONata D1012)"
    assert dict(dead.attributes)["reason"] == "transformer_failed"
    assert dict(dead.attributes)["detail"] == detail
    assert json.loads(dead.data)["messageId"] == "m-slow"  # the message itself, to replay
    assert [line["detail"] for line in lines if line["outcome"] == "dead_lettered"] == [detail]
    assert calls_to(saasquatch_api, "u-fast")[0][2]["segments"] == ["fast"]
    assert calls_to(saasquatch_api, "u-slow") == []
