"""Small unordered publishes from concurrent requests share Publish calls (group commit): every
request gets its own messages' ids, each message is published once, and a failure reaches every
request of the call that failed."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from publisher import OutgoingMessage, Publisher, PublishError

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
