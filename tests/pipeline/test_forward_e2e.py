"""The reverse direction end to end: a signed SaaSquatch webhook posted to saasquatch_webhook,
published to its topic on the Pub/Sub emulator, pushed to forward, which sends the Segment
batch to a Segment HTTP API stand-in (Basic auth with the write key, `/v1/batch`). The webhooks
are made now, by our tenant (the receiver drops other tenants' and old ones)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1

from stream import map_webhook
from tools import dead_letters
from tools.emulator import Emulator

from ..factories import PROJECT
from ..support.processes import Processes
from ..support.pubsub import Topic
from ..support.segment_standin import WRITE_KEY, SegmentStandIn
from ..support.served import Served
from ..support.webhook_signing import KID, JwksStandIn, detached_jws, new_key

pytestmark = pytest.mark.e2e

WEBHOOKS = "e2e-saasquatch-webhooks"
DEAD_LETTERS = "e2e-webhook-dead-letters"
KEY = new_key()
TENANT = "test_tenant"


def iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def webhook(kind: str, data: dict[str, Any], webhook_id: str, created: int) -> dict[str, Any]:
    return {
        "id": webhook_id,
        "type": kind,
        "tenantAlias": TENANT,
        "live": True,
        "created": created,
        "data": data,
    }


def samples() -> list[dict[str, Any]]:
    """One webhook of each forwarded type, made now (SaaSquatch sends a webhook as it happens;
    the receiver drops one older than its window)."""
    now = int(time.time() * 1000)
    user = {"id": "u-1", "accountId": "a-1", "email": "u1@example.com", "dateCreated": now - 5}
    return [
        webhook("user.created", user, "w-1", now),
        webhook("referral.started", {"id": "r-1", "referrer": {"id": "u-1"}}, "w-2", now),
        webhook("referral.converted", {"id": "r-1", "referrer": {"id": "u-1"}}, "w-3", now),
        webhook("referral.ended", {"id": "r-1", "referrerUser": "u-1"}, "w-4", now),
        webhook("reward.created", {"id": "rw-1", "userId": "u-1", "type": "CREDIT"}, "w-5", now),
        webhook("user.reward.balance.changed", {"userId": "u-1", "resourceVersion": 7}, "w-6", now),
        webhook("coupon.created", {"code": "FRIEND10", "programId": "p"}, "w-7", now),
    ]


@pytest.fixture
def segment_api() -> Iterator[SegmentStandIn]:
    with SegmentStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def jwks() -> Iterator[JwksStandIn]:
    with JwksStandIn() as stand_in:
        stand_in.keys[KID] = KEY
        yield stand_in


class Reverse:
    """saasquatch_webhook and forward served, the webhook topic pushing to forward."""

    def __init__(
        self, emulator: Emulator, processes: Processes, jwks: JwksStandIn, segment: SegmentStandIn
    ) -> None:
        emulator.reset()
        self.dead_letters = Topic(DEAD_LETTERS)
        common = {"PUBSUB_EMULATOR_HOST": emulator.host, "GOOGLE_CLOUD_PROJECT": PROJECT}
        self.forward = processes.serve(
            "forward",
            {
                **common,
                "FORWARD_DEAD_LETTER_TOPIC": DEAD_LETTERS,
                "SEGMENT_WRITE_KEY": WRITE_KEY,
                "SEGMENT_API_BASE_URL": segment.base_url,
                "SEGMENT_TIMEOUT_SECONDS": "2",
            },
        )
        topic = f"projects/{PROJECT}/topics/{WEBHOOKS}"
        pubsub_v1.PublisherClient().create_topic(name=topic)
        pubsub_v1.SubscriberClient().create_subscription(
            request={
                "name": f"projects/{PROJECT}/subscriptions/{WEBHOOKS}-forward",
                "topic": topic,
                "push_config": {"push_endpoint": self.forward.url},
                "ack_deadline_seconds": 10,
            }
        )
        self.receiver = processes.serve(
            "saasquatch_webhook",
            {
                **common,
                "WEBHOOK_TOPIC": WEBHOOKS,
                "WEBHOOK_JWKS_URL": jwks.url,
                "WEBHOOK_TENANT_ALIASES": TENANT,
            },
        )

    def post(self, hook: dict[str, Any]) -> requests.Response:
        body = json.dumps(hook).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hook-JWS-RFC-7797": detached_jws(body, KEY),
        }
        return requests.post(self.receiver.url, data=body, headers=headers, timeout=10)


def lines(served: Served, done: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """forward's result lines once `done(lines)` holds (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        found = served.results()
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_each_webhook_type_becomes_its_exact_segment_batch(
    emulator: Emulator, processes: Processes, jwks: JwksStandIn, segment_api: SegmentStandIn
) -> None:
    reverse = Reverse(emulator, processes, jwks, segment_api)
    hooks = samples()
    for hook in hooks:
        answer = reverse.post(hook)
        assert (answer.status_code, answer.json()) == (200, {"accepted": 1})
    test = webhook("test", {}, "w-test", hooks[0]["created"])
    assert reverse.post(test).status_code == 200

    found = lines(reverse.forward, lambda found: len(found) >= len(hooks) + 1)
    assert sorted(line["outcome"] for line in found) == ["delivered"] * len(hooks) + ["ignored"]
    by_id = {batch.body["batch"][0]["messageId"]: batch for batch in segment_api.batches}
    for hook in hooks:
        [expected] = map_webhook(hook).calls
        batch = by_id[f"saasquatch-{hook['id']}"]
        assert batch.status == 200
        assert batch.body["batch"] == [expected]
        assert set(batch.body) == {"batch", "sentAt"}
        [call] = batch.body["batch"]
        assert call["timestamp"] == iso(hook["created"])
        assert call["integrations"] == {"SaaSquatch": False, "SaaSquatch v2": False}
        assert call["context"]["saasquatch"]["tenantAlias"] == TENANT
    assert len(segment_api.batches) == len(hooks)  # the test webhook sent nothing
    events = [by_id[f"saasquatch-{hook['id']}"].body["batch"][0].get("event") for hook in hooks]
    assert events == [
        None,  # an identify
        "Referral Created",
        "Referral Converted",
        "Referral Ended",
        "Reward Created",
        "Reward Balance Changed",
        "Coupon Created",
    ]
    identify = by_id["saasquatch-w-1"].body["batch"][0]
    assert identify["traits"]["createdAt"] == iso(hooks[0]["created"] - 5)


def test_saasquatch_retrying_a_webhook_sends_the_same_message_id(
    emulator: Emulator, processes: Processes, jwks: JwksStandIn, segment_api: SegmentStandIn
) -> None:
    reverse = Reverse(emulator, processes, jwks, segment_api)
    hook = samples()[4]
    assert reverse.post(hook).status_code == 200
    assert reverse.post(hook).status_code == 200  # SaaSquatch's retry: same webhook id
    lines(reverse.forward, lambda found: len(found) >= 2)
    ids = [message["messageId"] for message in segment_api.accepted()]
    assert ids == ["saasquatch-w-5", "saasquatch-w-5"]  # Segment deduplicates by messageId


@pytest.mark.parametrize(
    ("status", "headers", "reason"),
    [(429, {"Retry-After": "1"}, "segment_rate_limited"), (503, {}, "segment_unavailable")],
)
def test_segment_refusing_for_now_means_redelivered_until_it_takes_it(
    emulator: Emulator,
    processes: Processes,
    jwks: JwksStandIn,
    segment_api: SegmentStandIn,
    status: int,
    headers: dict[str, str],
    reason: str,
) -> None:
    reverse = Reverse(emulator, processes, jwks, segment_api)
    segment_api.fail(status, **headers)
    assert reverse.post(samples()[1]).status_code == 200
    found = lines(reverse.forward, lambda found: any(x["outcome"] == "delivered" for x in found))
    assert [(line["outcome"], line.get("reason")) for line in found] == [
        ("retry", reason),
        ("delivered", None),
    ]
    assert (found[0]["status"], found[0]["segment_status"]) == (status, status)
    assert [batch.status for batch in segment_api.batches] == [status, 200]


def test_segment_rejecting_a_batch_is_a_dead_letter_with_the_reason(
    emulator: Emulator, processes: Processes, jwks: JwksStandIn, segment_api: SegmentStandIn
) -> None:
    reverse = Reverse(emulator, processes, jwks, segment_api)
    segment_api.fail(400)
    hook = samples()[0]
    assert reverse.post(hook).status_code == 200
    [dead] = reverse.dead_letters.pull(1)
    assert json.loads(dead.data) == hook
    assert (dead.attributes["reason"], dead.attributes["status"]) == ("segment_rejected", "400")
    assert dead.attributes["webhookType"] == "user.created"
    [line] = lines(reverse.forward, lambda found: len(found) >= 1)
    assert (line["outcome"], line["reason"], line["status"]) == (
        "dead_lettered",
        "segment_rejected",
        200,
    )


def test_an_unsigned_or_forged_webhook_is_refused_and_never_published(
    emulator: Emulator, processes: Processes, jwks: JwksStandIn, segment_api: SegmentStandIn
) -> None:
    reverse = Reverse(emulator, processes, jwks, segment_api)
    hooks = samples()
    body = json.dumps(hooks[4]).encode()
    unsigned = requests.post(reverse.receiver.url, data=body, timeout=10)
    forged = requests.post(
        reverse.receiver.url,
        data=body,
        headers={"X-Hook-JWS-RFC-7797": detached_jws(body, new_key())},
        timeout=10,
    )
    assert (unsigned.status_code, unsigned.json()) == (
        401,
        {"error": "missing X-Hook-JWS-RFC-7797 header", "reason": "bad_signature"},
    )
    assert (forged.status_code, forged.json()) == (
        401,
        {"error": "X-Hook-JWS-RFC-7797 does not match the body", "reason": "bad_signature"},
    )
    assert reverse.post(hooks[5]).status_code == 200  # a signed one behind them goes through
    lines(reverse.forward, lambda found: len(found) >= 1)
    assert [m["messageId"] for m in segment_api.accepted()] == ["saasquatch-w-6"]


def test_a_dead_letter_replayed_as_the_docs_say_reaches_segment_once_fixed(
    emulator: Emulator, processes: Processes, jwks: JwksStandIn, segment_api: SegmentStandIn
) -> None:
    reverse = Reverse(emulator, processes, jwks, segment_api)
    segment_api.fail(401)  # a wrong write key, say
    assert reverse.post(samples()[2]).status_code == 200
    lines(reverse.forward, lambda found: len(found) >= 1)
    code = dead_letters.main(
        [
            "--project",
            PROJECT,
            "--subscription",
            f"{DEAD_LETTERS}-pull",
            "replay",
            "--topic",
            WEBHOOKS,
            "--no-ledger",
            "--reason",
            "segment_unauthorized",
        ]
    )
    assert code == 0
    found = lines(reverse.forward, lambda found: len(found) >= 2)
    assert [line["outcome"] for line in found] == ["dead_lettered", "delivered"]
    assert [m["messageId"] for m in segment_api.accepted()] == ["saasquatch-w-3"]
