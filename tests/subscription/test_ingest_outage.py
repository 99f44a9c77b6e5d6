"""ingest served by the Functions Framework while its Pub/Sub emulator goes down and comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tools.emulator import Emulator

from ..support.processes import Processes

TOKEN = "outage-token"


def create_topic(emulator: Emulator, topic: str) -> None:
    url = f"http://{emulator.host}/v1/projects/outage/topics/{topic}"
    requests.put(url, json={}, timeout=10).raise_for_status()


@pytest.fixture
def outage_emulator(processes: Processes) -> Iterator[Emulator]:
    """An emulator of this test's own, which it stops and starts again."""
    emulator = Emulator()
    emulator.start()
    yield emulator
    emulator.stop()


def send(url: str, n: int) -> requests.Response:
    message = {
        "type": "track",
        "userId": "u-1",
        "event": "Signed Up",
        "messageId": f"m-out-{n:04d}",
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.post(url, json=message, headers=headers, timeout=30)


def test_emulator_down_is_503_and_the_next_request_after_it_is_back_succeeds(
    outage_emulator: Emulator, processes: Processes
) -> None:
    create_topic(outage_emulator, "raw")
    env = {
        "PUBSUB_EMULATOR_HOST": outage_emulator.host,
        "GOOGLE_CLOUD_PROJECT": "outage",
        "PUBSUB_TOPIC": "raw",
        "INGEST_TOKEN": TOKEN,
        "PUBLISH_TIMEOUT_SECONDS": "2",
    }
    url = processes.serve("ingest", env).url
    assert send(url, 1).status_code == 200
    outage_emulator.stop()
    started = time.monotonic()
    down = send(url, 2)
    took = time.monotonic() - started
    assert down.status_code == 503
    assert "Pub/Sub" in down.json()["error"]
    assert took < 30, "the answer comes from our publish deadline, not a client default"
    outage_emulator.start()
    create_topic(outage_emulator, "raw")  # the emulator keeps no state across restarts
    assert send(url, 3).status_code == 200
