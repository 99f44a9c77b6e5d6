"""The whole pipeline under trouble: 5,000 events through ingest, the Pub/Sub emulator and deliver
(both served by functions-framework) while the SaaSquatch stand-in fails 30% of requests with
500/503/429, answers some only after deliver's timeout, and deliver is restarted mid-run.

Every event must reach SaaSquatch exactly once per idempotency key; nothing may be lost; the
dead-letter topic holds exactly the permanently bad messages, each with its reason.
Run alone with `pytest -m resilience`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tools.emulator import Emulator
from tools.processes import free_port

from ..factories import PROJECT
from ..support.pipeline import RAW_TOPIC, Pipeline, deliver_env
from ..support.processes import Processes
from ..support.saasquatch_standin import Chaos, Recorded, SaaSquatchStandIn
from ..support.served import Served

pytestmark = pytest.mark.resilience

EVENTS = 5000
BATCH = 100
TOKEN = "resilience-token"


@pytest.fixture
def pipeline_under_chaos(
    emulator: Emulator, saasquatch_api: SaaSquatchStandIn, processes: Processes
) -> tuple[Pipeline, Served, Served]:
    """ingest and a deliver of its own (so it can be restarted), on a fresh pipeline."""
    deliver_port = free_port()
    env = deliver_env(emulator, saasquatch_api.base_url, SAASQUATCH_TIMEOUT_SECONDS="0.5")
    deliver = processes.serve("deliver", env, port=deliver_port)
    pipeline = Pipeline(emulator, deliver.url)
    ingest_env = {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PUBSUB_TOPIC": RAW_TOPIC,
        "INGEST_TOKEN": TOKEN,
    }
    ingest = processes.serve("ingest", ingest_env)
    return pipeline, ingest, deliver


def event(n: int, **changes: object) -> dict:
    message = {
        "type": "track",
        "userId": f"user-{n % 400}",
        "event": "Order Completed" if n % 5 == 0 else "Signed Up",
        "messageId": f"res-{n:05d}",
        "timestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "context": {"traits": {"email": f"user{n % 400}@example.com"}},
        "properties": {"order_id": f"o-{n}", "total": 10 + n % 7, "currency": "usd"},
    }
    return {**message, **changes}


def send_through_ingest(ingest: Served, messages: list[dict]) -> None:
    with requests.Session() as session:
        for start in range(0, len(messages), BATCH):
            answer = session.post(
                ingest.url,
                json=messages[start : start + BATCH],
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            assert answer.json() == {"accepted": len(messages[start : start + BATCH])}


def restart_when_half_delivered(
    deliver: Served, saasquatch_api: SaaSquatchStandIn, expected: int
) -> None:
    assert saasquatch_api.wait_for(
        lambda: len(saasquatch_api.delivered_events) >= expected // 2, 120
    )
    deliver.stop()
    time.sleep(1)  # pushes meanwhile fail with "connection refused" and are redelivered
    deliver.start()


def wait_until_settled(
    saasquatch_api: SaaSquatchStandIn, expected: int, timeout: float = 240
) -> None:
    delivered = saasquatch_api.wait_for(
        lambda: len(saasquatch_api.delivered_events) >= expected, timeout
    )
    assert delivered, f"{len(saasquatch_api.delivered_events)} of {expected} delivered"
    time.sleep(3)  # any redelivery still under way shows up now


def test_every_event_lands_exactly_once_through_faults_and_a_restart(
    pipeline_under_chaos: tuple[Pipeline, Served, Served], saasquatch_api: SaaSquatchStandIn
) -> None:
    pipeline, ingest, deliver = pipeline_under_chaos
    saasquatch_api.chaos = Chaos(failure_rate=0.3, slow_rate=0.01, delay=0.8)
    messages = [event(n) for n in range(EVENTS)]
    send_through_ingest(ingest, messages)
    restart_when_half_delivered(deliver, saasquatch_api, EVENTS)
    wait_until_settled(saasquatch_api, EVENTS)

    assert set(saasquatch_api.delivered_events) == {m["messageId"] for m in messages}, "none lost"
    assert set(saasquatch_api.delivered_events.values()) == {1}, "none twice"
    failures = [r for r in saasquatch_api.requests if r.status in (500, 503, 429)]
    assert len(failures) > EVENTS * 0.2, "the chaos really happened"
    assert pipeline.dead_letters.pull(1, timeout=3) == []


def test_permanently_bad_messages_and_only_they_are_dead_lettered(
    pipeline_under_chaos: tuple[Pipeline, Served, Served], saasquatch_api: SaaSquatchStandIn
) -> None:
    pipeline, ingest, deliver = pipeline_under_chaos
    saasquatch_api.chaos = Chaos(failure_rate=0.3, slow_rate=0.01, delay=0.8, seed=11)
    too_old = {n for n in range(0, EVENTS, 200)}  # 25: refused by the mapper
    rejected = {n for n in range(100, EVENTS, 200)}  # 25: refused by SaaSquatch (400)
    rejected_keys = {f"res-{n:05d}" for n in rejected}

    def reject(request: Recorded) -> bool:
        return (
            isinstance(request.body, dict) and request.body.get("idempotencyKey") in rejected_keys
        )

    saasquatch_api.fail(400, times=10**6, match=reject)
    messages = [
        event(n, timestamp="2020-01-01T00:00:00Z") if n in too_old else event(n)
        for n in range(EVENTS)
    ]
    send_through_ingest(ingest, messages)
    good = EVENTS - len(too_old) - len(rejected)
    restart_when_half_delivered(deliver, saasquatch_api, good)
    wait_until_settled(saasquatch_api, good)

    letters = pipeline.dead_letters.pull(len(too_old) + len(rejected), timeout=60)
    letters += pipeline.dead_letters.pull(1, timeout=3)
    reasons = {json.loads(m.data)["messageId"]: m.attributes["reason"] for m in letters}
    assert len(letters) == len(reasons) == 50, "each bad message dead-lettered once"
    assert reasons == {
        **{f"res-{n:05d}": "timestamp_out_of_window" for n in too_old},
        **{f"res-{n:05d}": "saasquatch_rejected" for n in rejected},
    }
    expected = {m["messageId"] for m in messages} - set(reasons)
    assert set(saasquatch_api.delivered_events) == expected
    assert set(saasquatch_api.delivered_events.values()) == {1}
