"""The group commit on its own, through a fake `send`: no Pub/Sub, and no sleeping in the hope
that a thread has got somewhere. A test holds the fake's call on a gate, queues requests with
`submit` (on return they are in the queue), then opens the gate; with one sender, what queued
while a call was held is exactly what the next call takes."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher import coalescer as coalescer_module
from publisher.coalescer import (
    MAX_CALL_BYTES,
    MAX_CALL_MESSAGES,
    Coalescer,
    publish_chunks,
)
from publisher.messages import OutgoingMessage, PublishError

# The bound on any wait that ends at once unless the coalescer is broken, and the deadline of a
# request that is not meant to time out: a broken test fails in seconds instead of hanging.
WAIT = 10.0


@dataclass(frozen=True)
class Call:
    messages: list[OutgoingMessage]
    deadline: float


class Gate:
    """Holds one call: `entered` once the call has started, and the call returns only once
    `released`."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()


class FakeSend:
    """Stands in for the Publish calls: records each call; call N answers ids "N:0", "N:1", ...
    (its messages' positions), unless it was told to `hold` (until released) or to `fail`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._gates: dict[int, Gate] = {}
        self._failures: dict[int, PublishError] = {}

    def hold(self, call: int) -> Gate:
        gate = self._gates[call] = Gate()
        return gate

    def fail(self, call: int) -> PublishError:
        error = self._failures[call] = PublishError(f"call {call} failed")
        return error

    def release_all(self) -> None:
        for gate in self._gates.values():
            gate.released.set()

    def __call__(self, messages: Sequence[OutgoingMessage], deadline: float) -> list[str]:
        with self._lock:
            index = len(self.calls)
            self.calls.append(Call(list(messages), deadline))
        gate = self._gates.get(index)
        if gate is not None:
            gate.entered.set()
            gate.released.wait(WAIT)
        if index in self._failures:
            raise self._failures[index]
        return ids(index, 0, len(messages))


def ids(call: int, start: int, count: int) -> list[str]:
    """What the fake answers for `count` messages at `start` in call `call`."""
    return [f"{call}:{position}" for position in range(start, start + count)]


def batch(name: str, count: int = 1) -> list[OutgoingMessage]:
    return [OutgoingMessage(f"{name}/{i}".encode()) for i in range(count)]


def far() -> float:
    return time.monotonic() + WAIT


@pytest.fixture
def send() -> Iterator[FakeSend]:
    fake = FakeSend()
    yield fake
    fake.release_all()  # a failed test leaves no sender stuck at a gate


@pytest.fixture
def coalescer(send: FakeSend) -> Coalescer:
    return Coalescer(send, senders=1)


def in_flight(coalescer: Coalescer, send: FakeSend, messages: list[OutgoingMessage]) -> Gate:
    """Call 0 carrying `messages`, started and held: until the gate opens, requests queue."""
    gate = send.hold(0)
    coalescer.submit(messages, far())
    assert gate.entered.wait(WAIT)
    return gate


# --- sharing calls -------------------------------------------------------------------------------


def test_a_lone_request_is_sent_at_once(send: FakeSend, coalescer: Coalescer) -> None:
    """The call starts with nothing else queued: the sender does not wait for company."""
    gate = send.hold(0)
    messages, deadline = batch("a", 2), far()
    pending = coalescer.submit(messages, deadline)
    assert gate.entered.wait(WAIT)
    assert send.calls == [Call(messages, deadline)]
    gate.released.set()
    assert pending.result() == ["0:0", "0:1"]


def test_requests_one_after_another_each_get_a_call(send: FakeSend, coalescer: Coalescer) -> None:
    first, second = batch("a", 2), batch("b")
    assert coalescer.publish(first, far()) == ["0:0", "0:1"]
    assert coalescer.publish(second, far()) == ["1:0"]
    assert [call.messages for call in send.calls] == [first, second]


def test_requests_queued_during_a_call_share_the_next_one(
    send: FakeSend, coalescer: Coalescer
) -> None:
    """One call for all of them, with the earliest of their deadlines; each request gets its own
    messages' ids, in order."""
    gate = in_flight(coalescer, send, batch("x"))
    b, c, d = batch("b"), batch("c", 3), batch("d", 2)
    now = time.monotonic()
    queued = [
        coalescer.submit(b, now + WAIT),
        coalescer.submit(c, now + WAIT - 1),
        coalescer.submit(d, now + WAIT),
    ]
    gate.released.set()
    assert [pending.result() for pending in queued] == [
        ids(1, 0, 1),
        ids(1, 1, 3),
        ids(1, 4, 2),
    ]
    assert send.calls[1:] == [Call(b + c + d, now + WAIT - 1)]


def test_many_concurrent_requests_each_get_their_own_ids(send: FakeSend) -> None:
    """The fast twin of test_coalescing's emulator test: every message sent once, every request
    answered with the ids of its own messages, in order."""
    coalescer = Coalescer(send, senders=2)
    requests = {n: batch(str(n), 1 + n % 3) for n in range(300)}
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda m: coalescer.publish(m, far()), requests.values()))
    sent = {
        f"{index}:{position}": message
        for index, call in enumerate(send.calls)
        for position, message in enumerate(call.messages)
    }
    assert len(sent) == sum(len(messages) for messages in requests.values())
    for messages, answer in zip(requests.values(), answers, strict=True):
        assert [sent[i] for i in answer] == messages


def test_the_first_requests_start_the_senders_once(send: FakeSend) -> None:
    """Senders start on first use, however many requests arrive at once."""
    before = set(threading.enumerate())
    coalescer = Coalescer(send, senders=2)
    assert not {t for t in set(threading.enumerate()) - before if t.name == "coalesced-publish"}
    start = threading.Barrier(16)

    def publish(n: int) -> list[str]:
        start.wait(WAIT)
        return coalescer.publish(batch(str(n)), far())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(publish, range(16)))
    assert all(len(answer) == 1 for answer in answers)
    senders = {t for t in set(threading.enumerate()) - before if t.name == "coalesced-publish"}
    assert len(senders) == 2


# --- the limits of one call ----------------------------------------------------------------------


def test_the_message_limit_splits_a_group(send: FakeSend, coalescer: Coalescer) -> None:
    """A group fills a call up to MAX_CALL_MESSAGES exactly; the request that would pass it is
    held and opens the next call, with whatever queued behind it."""
    x = batch("x")
    gate = in_flight(coalescer, send, x)
    a, b = batch("a", MAX_CALL_MESSAGES - 600), batch("b", 600)
    c, d = batch("c", 1), batch("d", 2)
    queued = [coalescer.submit(messages, far()) for messages in (a, b, c, d)]
    gate.released.set()
    assert [pending.result() for pending in queued] == [
        ids(1, 0, len(a)),
        ids(1, len(a), len(b)),
        ids(2, 0, 1),
        ids(2, 1, 2),
    ]
    assert [call.messages for call in send.calls] == [x, a + b, c + d]


def test_the_byte_limit_splits_a_group(send: FakeSend, coalescer: Coalescer) -> None:
    """Data and attributes count; a group fills a call up to MAX_CALL_BYTES exactly."""
    x = batch("x")
    gate = in_flight(coalescer, send, x)
    half = MAX_CALL_BYTES // 2
    a = [OutgoingMessage(b"a" * (half - 4), {"ab": "cd"})]
    b = [OutgoingMessage(b"b" * (MAX_CALL_BYTES - half))]
    c = [OutgoingMessage(b"", {"c": ""})]  # one byte
    queued = [coalescer.submit(messages, far()) for messages in (a, b, c)]
    gate.released.set()
    assert [pending.result() for pending in queued] == [["1:0"], ["1:1"], ["2:0"]]
    assert [call.messages for call in send.calls] == [x, a + b, c]


# --- failures and deadlines ----------------------------------------------------------------------


def test_a_failed_call_fails_every_request_of_its_group_and_no_other(
    send: FakeSend, coalescer: Coalescer
) -> None:
    x = batch("x")
    gate = send.hold(0)
    first = coalescer.submit(x, far())
    assert gate.entered.wait(WAIT)
    error = send.fail(1)
    a, b = batch("a", 2), batch("b", MAX_CALL_MESSAGES - 2)
    c = batch("c")  # queued with them, but over the limit: the next call
    failing = [coalescer.submit(a, far()), coalescer.submit(b, far())]
    held = coalescer.submit(c, far())
    gate.released.set()
    assert first.result() == ["0:0"]
    for pending in failing:
        with pytest.raises(PublishError) as raised:
            pending.result()
        assert raised.value is error
    assert held.result() == ["2:0"]
    assert coalescer.publish(batch("after"), far()) == ["3:0"]  # the sender carries on
    assert [call.messages for call in send.calls] == [x, a + b, c, batch("after")]


def test_a_request_past_its_deadline_is_not_sent(send: FakeSend, coalescer: Coalescer) -> None:
    """It has been answered (503, so Segment retries): publishing it now would only make a
    duplicate. The rest of its group goes, with their own deadline."""
    x = batch("x")
    gate = in_flight(coalescer, send, x)
    late = coalescer.submit(batch("late"), time.monotonic() - 1)
    fresh, deadline = batch("fresh", 2), far()
    on_time = coalescer.submit(fresh, deadline)
    gate.released.set()
    assert on_time.result() == ["1:0", "1:1"]
    with pytest.raises(PublishError, match=r"^0 of 1 confirmed \(timeout\)$"):
        late.result()
    assert send.calls[1:] == [Call(fresh, deadline)]


def test_a_group_of_late_requests_makes_no_call(send: FakeSend, coalescer: Coalescer) -> None:
    x = batch("x")
    gate = in_flight(coalescer, send, x)
    late = [coalescer.submit(batch(name), time.monotonic() - 1) for name in "ab"]
    gate.released.set()
    assert coalescer.publish(batch("after"), far()) == ["1:0"]  # behind the late ones
    for pending in late:
        with pytest.raises(PublishError, match="timeout"):
            pending.result()
    assert [call.messages for call in send.calls] == [x, batch("after")]


def test_a_request_whose_wait_times_out_gets_publish_error(
    send: FakeSend, coalescer: Coalescer
) -> None:
    """Its call hangs past its deadline (or, on a slow machine, the sender finds it late and
    drops it): either way its wait ends at the deadline, and a late answer reaches no one."""
    gate = send.hold(0)
    slow = batch("slow", 3)
    pending = coalescer.submit(slow, time.monotonic() + 0.05)
    with pytest.raises(PublishError, match=r"^0 of 3 confirmed \(timeout\)$"):
        pending.result()
    gate.released.set()
    after = batch("after")
    answer = coalescer.publish(after, far())
    assert [call.messages for call in send.calls] in ([slow, after], [after])
    assert answer == ids(len(send.calls) - 1, 0, 1)


def test_a_request_queued_behind_a_hung_call_is_not_published_after_its_deadline(
    send: FakeSend, coalescer: Coalescer
) -> None:
    """While a call hangs, a request waiting behind it times out (503: Segment retries); when
    the call returns, that request's messages are dropped, not published as a duplicate."""
    gate = send.hold(0)
    hanging = coalescer.submit(batch("0"), far())
    assert gate.entered.wait(WAIT)
    with pytest.raises(PublishError, match="timeout"):
        coalescer.publish(batch("3", 2), time.monotonic() + 0.05)
    gate.released.set()
    assert hanging.result() == ["0:0"]
    assert coalescer.publish(batch("1", 2), far()) == ["1:0", "1:1"]
    assert [call.messages for call in send.calls] == [batch("0"), batch("1", 2)]


# --- publish_chunks ------------------------------------------------------------------------------


def test_no_messages_are_no_chunks() -> None:
    assert publish_chunks([]) == []


def test_messages_within_the_limits_are_one_chunk() -> None:
    messages = batch("m", MAX_CALL_MESSAGES)
    assert publish_chunks(messages) == [messages]


def test_the_message_limit_cuts_chunks() -> None:
    messages = batch("m", 2 * MAX_CALL_MESSAGES + 1)
    chunks = publish_chunks(messages)
    assert [len(chunk) for chunk in chunks] == [MAX_CALL_MESSAGES, MAX_CALL_MESSAGES, 1]
    assert [m for chunk in chunks for m in chunk] == messages


def test_the_byte_limit_cuts_chunks_counting_attributes() -> None:
    half = MAX_CALL_BYTES // 2
    a = OutgoingMessage(b"a" * (half - 4), {"ab": "cd"})
    b = OutgoingMessage(b"b" * (MAX_CALL_BYTES - half))
    c = OutgoingMessage(b"", {"c": ""})
    assert publish_chunks([a, b]) == [[a, b]]
    assert publish_chunks([a, b, c]) == [[a, b], [c]]


def test_a_message_over_the_byte_limit_is_a_chunk_of_its_own() -> None:
    small, huge = OutgoingMessage(b"s"), OutgoingMessage(b"h" * (MAX_CALL_BYTES + 1))
    assert publish_chunks([small, huge, small]) == [[small], [huge], [small]]


def weight(message: OutgoingMessage) -> int:
    return len(message.data) + sum(len(k) + len(v) for k, v in message.attributes.items())


small_messages = st.lists(
    st.builds(
        OutgoingMessage,
        st.binary(max_size=12),
        st.dictionaries(st.text("ab", max_size=2), st.text("ab", max_size=3), max_size=2),
    ),
    max_size=30,
)


@given(small_messages)
def test_chunks_are_the_messages_cut_greedily_within_the_limits(
    messages: list[OutgoingMessage],
) -> None:
    """With limits small enough for the examples to reach: the chunks are the messages in order;
    each chunk is within both limits (or is one message that alone is over); and each is as long
    as it can be (the next message would not fit)."""
    with (
        mock.patch.object(coalescer_module, "MAX_CALL_MESSAGES", 4),
        mock.patch.object(coalescer_module, "MAX_CALL_BYTES", 20),
    ):
        chunks = publish_chunks(messages)
    assert [m for chunk in chunks for m in chunk] == messages
    for index, chunk in enumerate(chunks):
        size = sum(weight(m) for m in chunk)
        assert chunk and (len(chunk) == 1 or (len(chunk) <= 4 and size <= 20))
        if index + 1 < len(chunks):
            following = chunks[index + 1][0]
            assert len(chunk) == 4 or size + weight(following) > 20
