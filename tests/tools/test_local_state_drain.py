"""The stop's save on the real emulators: a message as big as ingest takes, and one leased to a
delivery that never answered, are both in the state it writes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.cloud import pubsub_v1

from tools.emulator import FirestoreEmulator
from tools.local_state import STATE, Queue
from tools.run_local import save_state

from ..factories import PROJECT
from ..support.pubsub import Topic

BIG = 5 * 1024 * 1024  # ingest takes bodies up to 8 MB; gRPC's default receive limit is 4 MB


@pytest.fixture
def queue(topic: Topic) -> Queue:
    return Queue("deliver waiting", topic.subscription, topic.path)


def saved(folder: Path) -> dict:
    return json.loads((folder / STATE).read_text())


def test_a_message_bigger_than_4_mb_is_saved(
    queue: Queue, ledger_firestore: FirestoreEmulator, tmp_path: Path
) -> None:
    began = datetime.now(UTC)
    data = b"x" * BIG
    pubsub_v1.PublisherClient().publish(queue.topic, data).result(timeout=30)

    save_state(tmp_path, [queue], ledger_firestore, PROJECT, began)  # type: ignore[arg-type]

    [message] = saved(tmp_path)["messages"]["deliver waiting"]
    assert base64.b64decode(message["data"]) == data


def test_a_message_leased_to_a_delivery_that_never_answered_is_saved(
    queue: Queue, ledger_firestore: FirestoreEmulator, tmp_path: Path
) -> None:
    began = datetime.now(UTC)
    publisher = pubsub_v1.PublisherClient()
    for number in range(3):
        publisher.publish(queue.topic, f"m{number}".encode()).result(timeout=30)
    subscriber = pubsub_v1.SubscriberClient()
    # One delivered (acknowledged), the other two taken and never answered: leased.
    taken = []
    while len(taken) < 3:
        response = subscriber.pull(subscription=queue.subscription, max_messages=3, timeout=10)
        taken += response.received_messages
    subscriber.acknowledge(subscription=queue.subscription, ack_ids=[taken[0].ack_id])

    save_state(tmp_path, [queue], ledger_firestore, PROJECT, began)  # type: ignore[arg-type]

    kept = sorted(
        base64.b64decode(m["data"]) for m in saved(tmp_path)["messages"]["deliver waiting"]
    )
    assert kept == sorted(bytes(m.message.data) for m in taken[1:])
