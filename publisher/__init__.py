"""Pub/Sub publishing for both sides and the tools: one lazy process-wide client, publish many,
wait for every future. It knows nothing of what the messages mean.

The channel is built here (to cap gRPC's reconnect backoff), so `PUBSUB_EMULATOR_HOST` is read
here too, exactly as the client library would read it.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future

import grpc
from google.api_core.retry import Retry
from google.cloud import pubsub_v1
from google.pubsub_v1 import PublisherClient as GapicPublisherClient
from google.pubsub_v1 import PublishRequest, PubsubMessage
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

from .messages import ORIGIN_ATTRIBUTE, Origin, OutgoingMessage, PublishError, Topic

__all__ = [
    "DIRECT_MIN_MESSAGES",
    "ORIGIN_ATTRIBUTE",
    "Origin",
    "OutgoingMessage",
    "PublishError",
    "Publisher",
    "Topic",
    "client",
]

# Without ordering, small requests (under DIRECT_MIN_MESSAGES) are coalesced (group commit): a
# sender thread takes everything queued while its previous Publish call was in flight and sends
# it as one call. A lone webhook goes out at once; under load concurrent requests share calls.
# A Publish call costs far more CPU than anything else ingest does (about 0.5 ms, mostly gRPC),
# so fewer, fuller calls are what makes ingest cheap: one sender carried 11 messages per call
# under the benchmark's load, two carried 6 and four 3.5, at 1,090 / 1,250 / 1,370 µs of CPU per
# request (docs/benchmarks.md). Larger requests are one Publish call (or a few) from the
# request's own thread. With ordering on, the batching client groups messages per key; a batch
# closes after 1 ms or 500 messages.
BATCH_SETTINGS = pubsub_v1.types.BatchSettings(
    max_messages=500, max_bytes=4 * 1024 * 1024, max_latency=0.001
)
DIRECT_MIN_MESSAGES = 20
SENDERS = 1

# gRPC backs off up to 120 s between reconnects after an outage, far past our 4 s answer deadline;
# capping it at 1 s means the first request after Pub/Sub is back succeeds.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]

# Keyed by where they connect (the emulator's address, or "" for Google), so a process that
# switches emulators (the tests) never reuses a channel to the old one.
_clients: dict[tuple[bool, str], pubsub_v1.PublisherClient] = {}
_direct: dict[str, GapicPublisherClient] = {}
_clients_lock = threading.Lock()

# One Publish call carries at most 1000 messages and 10 MB; stay a little under.
MAX_CALL_MESSAGES = 1000
MAX_CALL_BYTES = 9 * 1024 * 1024


def client(ordering: bool = False) -> pubsub_v1.PublisherClient:
    """The process-wide client (one per ordering mode and target), created on first use."""
    key = (ordering, _target())
    with _clients_lock:
        if key not in _clients:
            _clients[key] = pubsub_v1.PublisherClient(
                transport=_transport(),
                batch_settings=BATCH_SETTINGS,
                publisher_options=pubsub_v1.types.PublisherOptions(
                    enable_message_ordering=ordering
                ),
            )
        return _clients[key]


def direct_client() -> GapicPublisherClient:
    """The process-wide plain Publish client: one RPC per call, no batching thread."""
    target = _target()
    with _clients_lock:
        if target not in _direct:
            _direct[target] = GapicPublisherClient(transport=_transport())
        return _direct[target]


def _target() -> str:
    return os.environ.get("PUBSUB_EMULATOR_HOST", "")


def _transport() -> PublisherGrpcTransport:
    emulator = _target()
    if emulator:
        channel = grpc.insecure_channel(emulator, options=CHANNEL_OPTIONS)
    else:
        channel = PublisherGrpcTransport.create_channel(options=CHANNEL_OPTIONS)
    return PublisherGrpcTransport(channel=channel)


class Publisher:
    """Publishes to one topic: `publish_all` waits for every message to be confirmed, `submit`
    hands one over and returns its future (for callers that keep a window of their own)."""

    def __init__(self, project: str, topic: str, ordering: bool, timeout: float) -> None:
        self.topic = f"projects/{project}/topics/{topic}"
        self.ordering = ordering
        self._timeout = timeout
        # The client's own retries stop before our deadline, so no future outlives the answer.
        self._retry = Retry(initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout)
        self._coalescer = _Coalescer(self._send) if not ordering else None

    def submit(self, message: OutgoingMessage) -> Future:
        """The message's future from the batching client; a refusal (an ordering key paused by
        an earlier failure) comes back as a failed future too."""
        try:
            return client(self.ordering).publish(
                self.topic,
                message.data,
                ordering_key=message.ordering_key,
                retry=self._retry,
                timeout=self._timeout,
                **message.attributes,
            )
        except Exception as error:
            failed: Future = Future()
            failed.set_exception(error)
            return failed

    def resume(self, keys: Iterable[str]) -> None:
        """After a failed ordered publish its key is paused; resume it so the user's next
        messages (Segment's retry, the rest of a backfill) are not refused forever."""
        if not self.ordering:
            return
        for key in set(keys) - {""}:
            client(True).resume_publish(self.topic, key)

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Pub/Sub message ids, in order; `PublishError` unless every one was confirmed."""
        deadline = time.monotonic() + self._timeout
        if self._coalescer is None:
            return self._publish_batched(messages)
        if len(messages) >= DIRECT_MIN_MESSAGES:
            return self._send(messages, deadline)
        return self._coalescer.publish(messages, deadline)

    def _send(self, messages: Sequence[OutgoingMessage], deadline: float) -> list[str]:
        """Unordered messages in as few Publish calls as the per-call limits allow, from this
        thread, retried until `deadline`."""
        ids: list[str] = []
        try:
            for chunk in publish_chunks(messages):
                remaining = max(0.05, deadline - time.monotonic())
                request = PublishRequest.wrap(
                    _RAW_REQUEST(
                        topic=self.topic,
                        messages=[
                            _RAW_MESSAGE(data=m.data, attributes=m.attributes) for m in chunk
                        ],
                    )
                )
                response = direct_client().publish(
                    request=request,
                    retry=self._retry.with_timeout(remaining),
                    timeout=remaining,
                )
                ids.extend(response.message_ids)
        except Exception as error:
            raise PublishError(
                f"{len(ids)} of {len(messages)} confirmed ({type(error).__name__})"
            ) from error
        return ids

    def _publish_batched(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """The batching client: it shares Publish calls between concurrent requests and, with
        ordering, groups messages per key (Pub/Sub wants one key per call) in parallel."""
        deadline = time.monotonic() + self._timeout
        futures = [self.submit(message) for message in messages]
        done, pending = concurrent.futures.wait(
            futures, timeout=max(0.0, deadline - time.monotonic())
        )
        failures = [future for future in done if future.exception() is not None]
        if pending or failures:
            self.resume(message.ordering_key for message in messages)
            cause = type(failures[0].exception()).__name__ if failures else "timeout"
            raise PublishError(
                f"{len(failures)} failed and {len(pending)} unconfirmed of {len(futures)} ({cause})"
            )
        return [future.result() for future in futures]


# The plain protobuf classes: building them directly skips proto-plus's per-field conversion.
_RAW_REQUEST = PublishRequest.pb()
_RAW_MESSAGE = PubsubMessage.pb()


class _Waiting:
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


class _Coalescer:
    """Group commit for small unordered publishes: requests queue their messages and wait; each
    of SENDERS threads takes what has queued (within one call's limits) and sends it together.
    A request that is not confirmed by its deadline gets `PublishError`; its messages may still
    be published after (as with any publish timeout: Segment retries, deliver deduplicates)."""

    def __init__(self, send: Callable[[Sequence[OutgoingMessage], float], list[str]]) -> None:
        self._send = send
        self._queue: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._start = threading.Lock()
        self._started = False

    def publish(self, messages: Sequence[OutgoingMessage], deadline: float) -> list[str]:
        if not self._started:
            self._start_senders()
        waiting = _Waiting(messages, deadline)
        self._queue.put(waiting)
        if not waiting.done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise PublishError(f"0 of {len(messages)} confirmed (timeout)")
        if waiting.error is not None:
            raise waiting.error
        return waiting.ids

    def _start_senders(self) -> None:
        with self._start:
            if self._started:
                return
            for _ in range(SENDERS):
                threading.Thread(target=self._run, name="coalesced-publish", daemon=True).start()
            self._started = True

    def _run(self) -> None:
        held: _Waiting | None = None  # taken from the queue but over the last call's limits
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

    def _send_group(self, group: list[_Waiting]) -> None:
        # A request past its deadline has been answered 503 and will be retried by its sender:
        # publishing it now (after an outage, say) would only make a duplicate.
        now = time.monotonic()
        for waiting in [waiting for waiting in group if waiting.deadline <= now]:
            waiting.error = PublishError(f"0 of {len(waiting.messages)} confirmed (timeout)")
            waiting.done.release()
            group.remove(waiting)
        if not group:
            return
        messages = [message for waiting in group for message in waiting.messages]
        try:
            ids = self._send(messages, min(waiting.deadline for waiting in group))
        except PublishError as error:
            for waiting in group:
                waiting.error = error
        else:
            start = 0
            for waiting in group:
                waiting.ids = ids[start : start + len(waiting.messages)]
                start += len(waiting.messages)
        for waiting in group:
            waiting.done.release()


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
