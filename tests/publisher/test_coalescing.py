"""Small unordered publishes from concurrent requests share Publish calls (group commit): every
request gets its own messages' ids, each message is published once, and a failure reaches every
request of the call that failed."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from publisher import (
    OutgoingMessage,
    Publisher,
    PublishError,
    _Coalescer,  # the group commit itself, without Pub/Sub
)

from ..factories import PROJECT
from ..support.pubsub import Topic


def request_messages(n: int) -> list[OutgoingMessage]:
    return [OutgoingMessage(f"{n}/{i}".encode(), {"request": str(n)}) for i in range(1 + n % 3)]


def test_concurrent_requests_each_get_their_own_ids(topic: Topic) -> None:
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


def test_a_failed_call_fails_every_request_in_it(emulator: Any) -> None:
    publisher = Publisher(PROJECT, "no-such-topic", ordering=False, timeout=1.5)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda n: _outcome(publisher, n), range(40)))
    assert outcomes == ["PublishError"] * 40


def _outcome(publisher: Publisher, n: int) -> str:
    try:
        publisher.publish_all(request_messages(n))
    except PublishError as error:
        return type(error).__name__
    return "published"


def test_a_request_answered_by_its_deadline_is_not_published_after_it() -> None:
    """While a call hangs, a request waiting behind it times out (503: Segment retries); when
    the call returns, that request's messages are dropped, not published as a duplicate."""
    sent: list[list[bytes]] = []
    first_call = threading.Event()
    release = threading.Event()

    def send(messages: Sequence[OutgoingMessage], deadline: float) -> list[str]:
        sent.append([m.data for m in messages])
        first_call.set()
        release.wait(10)
        return [str(n) for n in range(len(messages))]

    coalescer = _Coalescer(send)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        hanging = pool.submit(coalescer.publish, request_messages(0), time.monotonic() + 10)
        assert first_call.wait(10)
        with pytest.raises(PublishError, match="timeout"):
            coalescer.publish(request_messages(3), time.monotonic() + 0.2)
        release.set()
        assert hanging.result(10) == ["0"]
        fresh = coalescer.publish(request_messages(1), time.monotonic() + 10)
    assert fresh == ["0", "1"]
    assert sent == [[b"0/0"], [b"1/0", b"1/1"]]
