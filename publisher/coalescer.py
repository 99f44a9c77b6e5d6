"""Group commit for small unordered publishes, and the limits of one Publish call.

`Coalescer` knows nothing of Pub/Sub: it is given `send(messages, deadline) -> ids`, which
publishes the messages (in as many calls as `publish_chunks` cuts them into) or raises
`PublishError`, and shares its calls between concurrent requests.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from .messages import OutgoingMessage, PublishError

__all__ = [
    "MAX_CALL_BYTES",
    "MAX_CALL_MESSAGES",
    "SENDERS",
    "Coalescer",
    "Pending",
    "Send",
    "publish_chunks",
]

# What the coalescer publishes through: the messages' ids in order, or `PublishError`.
Send = Callable[[Sequence[OutgoingMessage], float], list[str]]

# A sender thread takes everything queued while its previous Publish call was in flight and sends
# it as one call. A lone webhook goes out at once; under load concurrent requests share calls.
# A Publish call costs far more CPU than anything else ingest does (about 0.5 ms, mostly gRPC),
# so fewer, fuller calls are what makes ingest cheap: one sender carried 11 messages per call
# under the benchmark's load, two carried 6 and four 3.5, at 1,090 / 1,250 / 1,370 µs of CPU per
# request (docs/benchmarks.md).
SENDERS = 1

# One Publish call carries at most 1000 messages and 10 MB; stay a little under.
MAX_CALL_MESSAGES = 1000
MAX_CALL_BYTES = 9 * 1024 * 1024


class Pending:
    """One request's messages in the coalescer's queue, and what became of them. `done` is a
    plain lock, held until a sender releases it: the cheapest wait-and-wake there is."""

    __slots__ = ("deadline", "done", "error", "ids", "messages")

    def __init__(self, messages: Sequence[OutgoingMessage], deadline: float) -> None:
        self.messages = messages
        self.deadline = deadline
        self.done = threading.Lock()
        self.done.acquire()
        self.ids: list[str] = []
        self.error: PublishError | None = None

    def result(self) -> list[str]:
        """The messages' ids, in order, once a sender has published them; `PublishError` if
        their call failed, or if they are not confirmed by the deadline."""
        if not self.done.acquire(timeout=max(0.0, self.deadline - time.monotonic())):
            raise PublishError(f"0 of {len(self.messages)} confirmed (timeout)")
        if self.error is not None:
            raise self.error
        return self.ids


class Coalescer:
    """Group commit: requests queue their messages and wait; each of `senders` threads (started
    on first use) takes what has queued (within one call's limits) and sends it together.
    A request that is not confirmed by its deadline gets `PublishError`; its messages may still
    be published after (as with any publish timeout: Segment retries, deliver deduplicates)."""

    def __init__(self, send: Send, senders: int = SENDERS) -> None:
        self._send = send
        self._senders = senders
        self._queue: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self._start = threading.Lock()
        self._started = False

    def publish(self, messages: Sequence[OutgoingMessage], deadline: float) -> list[str]:
        """The messages' ids, in order, or `PublishError`: `submit`, then wait for the result."""
        return self.submit(messages, deadline).result()

    def submit(self, messages: Sequence[OutgoingMessage], deadline: float) -> Pending:
        """Queue the messages for the next call; on return they are in the queue."""
        if not self._started:
            self._start_senders()
        pending = Pending(messages, deadline)
        self._queue.put(pending)
        return pending

    def _start_senders(self) -> None:
        with self._start:
            if self._started:
                return
            for _ in range(self._senders):
                threading.Thread(target=self._run, name="coalesced-publish", daemon=True).start()
            self._started = True

    def _run(self) -> None:
        held: Pending | None = None  # taken from the queue but over the last call's limits
        while True:
            first = held or self._queue.get()
            held = None
            group = [first]
            count, size = len(first.messages), _weight(first.messages)
            while True:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                count += len(following.messages)
                size += _weight(following.messages)
                if count > MAX_CALL_MESSAGES or size > MAX_CALL_BYTES:
                    held = following
                    break
                group.append(following)
            self._send_group(group)

    def _send_group(self, group: list[Pending]) -> None:
        # A request past its deadline has been answered 503 and will be retried by its sender:
        # publishing it now (after an outage, say) would only make a duplicate.
        now = time.monotonic()
        for pending in [pending for pending in group if pending.deadline <= now]:
            pending.error = PublishError(f"0 of {len(pending.messages)} confirmed (timeout)")
            pending.done.release()
            group.remove(pending)
        if not group:
            return
        messages = [message for pending in group for message in pending.messages]
        try:
            ids = self._send(messages, min(pending.deadline for pending in group))
        except PublishError as error:
            for pending in group:
                pending.error = error
        else:
            start = 0
            for pending in group:
                pending.ids = ids[start : start + len(pending.messages)]
                start += len(pending.messages)
        for pending in group:
            pending.done.release()


def _weight(messages: Sequence[OutgoingMessage]) -> int:
    return sum(
        len(m.data) + sum(len(k) + len(v) for k, v in m.attributes.items()) for m in messages
    )


def publish_chunks(messages: Sequence[OutgoingMessage]) -> list[Sequence[OutgoingMessage]]:
    """The messages cut into runs that each fit one Publish call."""
    chunks: list[Sequence[OutgoingMessage]] = []
    start, size = 0, 0
    for index, message in enumerate(messages):
        weight = _weight((message,))
        size += weight
        if index > start and (index - start >= MAX_CALL_MESSAGES or size > MAX_CALL_BYTES):
            chunks.append(messages[start:index])
            start, size = index, weight
    if start < len(messages):
        chunks.append(messages[start:])
    return chunks
