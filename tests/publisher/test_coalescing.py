"""Small unordered publishes from concurrent requests share Publish calls (group commit): every
request gets its own messages' ids, each message is published once, and a failure reaches every
request of the call that failed. These drive `Publisher`; test_coalescer.py tests the group
commit itself."""

from __future__ import annotations

import concurrent.futures
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core.exceptions import NotFound

import publisher as publisher_module
from publisher import DIRECT_MIN_MESSAGES, OutgoingMessage, Publisher, PublishError

from ..factories import PROJECT
from ..support.pubsub import Topic


def request_messages(n: int) -> list[OutgoingMessage]:
    return [OutgoingMessage(f"{n}/{i}".encode(), {"request": str(n)}) for i in range(1 + n % 3)]


def test_concurrent_requests_each_get_their_own_ids(topic: Topic) -> None:
    """The real client path, through the emulator."""
    publisher = Publisher(PROJECT, topic.name, ordering=False, timeout=10)
    requests = {n: request_messages(n) for n in range(300)}
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        ids = dict(zip(requests, pool.map(publisher.publish_all, requests.values()), strict=True))
    total = sum(len(messages) for messages in requests.values())
    pulled = topic.pull(total + 1, timeout=3)
    assert len(pulled) == total
    by_id = {message.message_id: message for message in pulled}
    for n, messages in requests.items():
        assert [by_id[i].data for i in ids[n]] == [m.data for m in messages]
        assert {by_id[i].attributes["request"] for i in ids[n]} == {str(n)}


class FakeDirectClient:
    """Stands in for the plain Publish client: records each call's topic, message count and
    thread; answers ids, or raises `error`."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, int, str]] = []
        self._lock = threading.Lock()

    def publish(self, request: Any, retry: Any, timeout: float) -> SimpleNamespace:
        with self._lock:
            self.calls.append(
                (request.topic, len(request.messages), threading.current_thread().name)
            )
            number = len(self.calls)
        if self.error is not None:
            raise self.error
        return SimpleNamespace(message_ids=[f"{number}:{i}" for i in range(len(request.messages))])


def test_a_failed_call_fails_every_request_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pub/Sub refusing the calls (no such topic): every request that shared one gets
    `PublishError` naming the cause, and each message was tried once."""
    refusing = FakeDirectClient(NotFound("Topic not found"))
    monkeypatch.setattr(publisher_module, "direct_client", lambda: refusing)
    publisher = Publisher(PROJECT, "no-such-topic", ordering=False, timeout=1.5)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda n: _outcome(publisher, n), range(40)))
    assert all(outcome.endswith("confirmed (NotFound)") for outcome in outcomes), outcomes
    assert sum(count for _, count, _ in refusing.calls) == sum(
        len(request_messages(n)) for n in range(40)
    )
    assert {topic for topic, _, _ in refusing.calls} == {f"projects/{PROJECT}/topics/no-such-topic"}


def test_small_requests_share_the_sender_and_large_ones_publish_from_their_own_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    direct = FakeDirectClient()
    monkeypatch.setattr(publisher_module, "direct_client", lambda: direct)
    publisher = Publisher(PROJECT, "t", ordering=False, timeout=5)
    small = request_messages(1)
    large = [OutgoingMessage(b"x") for _ in range(DIRECT_MIN_MESSAGES)]
    assert publisher.publish_all(small) == ["1:0", "1:1"]
    assert publisher.publish_all(large) == [f"2:{i}" for i in range(DIRECT_MIN_MESSAGES)]
    assert [(count, thread) for _, count, thread in direct.calls] == [
        (len(small), "coalesced-publish"),
        (DIRECT_MIN_MESSAGES, threading.current_thread().name),
    ]


def _outcome(publisher: Publisher, n: int) -> str:
    try:
        publisher.publish_all(request_messages(n))
    except PublishError as error:
        return str(error)
    return "published"
