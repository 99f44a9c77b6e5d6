"""`make run` stopped while deliver is retrying: every message it had not delivered is saved,
and the next make run delivers each one once.

deliver answers 503 while SaaSquatch cannot be reached, and Pub/Sub pushes the message again;
meanwhile it is leased to that push until its ack deadline, where no pull sees it. The stop
must keep it all the same (tools.local_state.drain)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.cloud import pubsub_v1
from google.pubsub_v1 import PubsubMessage

from tools.processes import free_port

from ..support.processes import PORTS, Processes, Running, deliver_json, local_env

pytestmark = pytest.mark.e2e

READY = "Ctrl-C stops everything."
TOPIC = "projects/local-project/topics/segment-events"


@dataclass
class Kept:
    saved_dead: int
    saved_waiting: int
    delivered: Counter[str]  # idempotency key -> "delivered" lines in the next run


def emulator_host(running: Running) -> str:
    [host] = [
        match[1]
        for line in running.seen
        if (match := re.fullmatch(r"\s*export PUBSUB_EMULATOR_HOST=(\S+)", line))
    ]
    return host


def publish(host: str, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`count` Segment tracks on ingest's topic, as ingest publishes them."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", host)
    publisher = pubsub_v1.PublisherClient()
    now = datetime.now(UTC).isoformat()
    tracks = [
        {
            "type": "track",
            "event": "Bulk",
            "userId": f"u-{number}",
            "messageId": f"in-flight-{number}",
            "timestamp": now,
        }
        for number in range(count)
    ]
    for start in range(0, count, 500):
        batch = [PubsubMessage(data=json.dumps(t).encode()) for t in tracks[start : start + 500]]
        publisher.api.publish(topic=TOPIC, messages=batch, timeout=30)


def stop_while_retrying_then_deliver(
    processes: Processes, state: Path, count: int, monkeypatch: pytest.MonkeyPatch
) -> Kept:
    """`count` tracks into a make run whose SaaSquatch does not answer, Ctrl-C once deliver
    retries, then a dry make run on the same state until it delivered what was saved."""
    env = local_env({name: free_port() for name in PORTS}, state)
    unreachable = {
        "SAASQUATCH_TENANT_ALIAS": "test_abc123",
        "SAASQUATCH_API_KEY": "k",
        "SAASQUATCH_BASE_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
    }
    first = Running(processes, {**env, **unreachable})
    try:
        first.wait_for(lambda line: line == READY)
        publish(emulator_host(first), count, monkeypatch)
        first.wait_for(lambda line: deliver_json(line).get("outcome") == "retry")
    finally:
        assert first.interrupt() == 0
    [saved] = [line for line in first.seen if line.startswith(f"saved to {state}: ")]
    match = re.search(r"(\d+) dead letters?, (\d+) waiting messages?", saved)
    assert match, saved
    dead, waiting = int(match[1]), int(match[2])

    delivered: Counter[str] = Counter()

    def all_delivered(line: str) -> bool:
        logged = deliver_json(line)
        if logged.get("outcome") == "delivered":
            delivered[logged["idempotency_key"]] += 1
        return len(delivered) >= waiting

    again = Running(processes, env)  # dry: every call is logged, none is sent
    try:
        again.wait_for(lambda line: line == READY)
        if waiting:
            again.wait_for(all_delivered, timeout=300)
    finally:
        assert again.interrupt() == 0
    return Kept(dead, waiting, delivered)


def test_messages_deliver_was_retrying_at_a_stop_are_delivered_by_the_next_run(
    processes: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 150
    kept = stop_while_retrying_then_deliver(processes, tmp_path / "state", count, monkeypatch)
    assert kept.saved_dead + kept.saved_waiting == count, "every message is kept"
    assert len(kept.delivered) == kept.saved_waiting
    assert set(kept.delivered.values()) == {1}, "none twice"
