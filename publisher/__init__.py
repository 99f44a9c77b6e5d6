"""Pub/Sub publishing for both sides and the tools: one lazy process-wide client, publish many,
wait for every future. It knows nothing of what the messages mean.

The channel is built here (to cap gRPC's reconnect backoff), so `PUBSUB_EMULATOR_HOST` is read
here too, exactly as the client library would read it.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future

import grpc
from google.api_core.retry import Retry
from google.cloud import pubsub_v1
from google.pubsub_v1 import PublisherClient as GapicPublisherClient
from google.pubsub_v1 import PubsubMessage
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

from .messages import OutgoingMessage

__all__ = [
    "DIRECT_MIN_MESSAGES",
    "OutgoingMessage",
    "PublishError",
    "Publisher",
    "client",
]

# Small requests go through the batching client, so concurrent requests share Publish calls;
# a batch closes after 1 ms or 500 messages (5 ms measured no faster under load, and slower for a
# lone webhook). Requests of DIRECT_MIN_MESSAGES or more are a batch already: they are sent as
# one direct Publish call, without the batching client's future and thread per message.
BATCH_SETTINGS = pubsub_v1.types.BatchSettings(
    max_messages=500, max_bytes=4 * 1024 * 1024, max_latency=0.001
)
DIRECT_MIN_MESSAGES = 20

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


class PublishError(Exception):
    """At least one message was not confirmed by Pub/Sub in time."""


class Publisher:
    """Publishes to one topic: `publish_all` waits for every message to be confirmed, `submit`
    hands one over and returns its future (for callers that keep a window of their own)."""

    def __init__(self, project: str, topic: str, ordering: bool, timeout: float) -> None:
        self.topic = f"projects/{project}/topics/{topic}"
        self.ordering = ordering
        self._timeout = timeout
        # The client's own retries stop before our deadline, so no future outlives the answer.
        self._retry = Retry(initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout)

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
        if not self.ordering and len(messages) >= DIRECT_MIN_MESSAGES:
            return self._publish_direct(messages)
        return self._publish_batched(messages)

    def _publish_direct(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Without ordering, a large request's messages go out in one Publish call (or a few,
        under the per-call limits) from this thread."""
        deadline = time.monotonic() + self._timeout
        ids: list[str] = []
        try:
            for chunk in publish_chunks(messages):
                remaining = max(0.05, deadline - time.monotonic())
                response = direct_client().publish(
                    topic=self.topic,
                    messages=[
                        PubsubMessage(data=m.data, attributes=dict(m.attributes)) for m in chunk
                    ],
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


def publish_chunks(messages: Sequence[OutgoingMessage]) -> list[Sequence[OutgoingMessage]]:
    """The messages cut into runs that each fit one Publish call."""
    chunks: list[Sequence[OutgoingMessage]] = []
    start, size = 0, 0
    for index, message in enumerate(messages):
        weight = len(message.data) + sum(len(k) + len(v) for k, v in message.attributes.items())
        size += weight
        if index > start and (index - start >= MAX_CALL_MESSAGES or size > MAX_CALL_BYTES):
            chunks.append(messages[start:index])
            start, size = index, weight
    if start < len(messages):
        chunks.append(messages[start:])
    return chunks
