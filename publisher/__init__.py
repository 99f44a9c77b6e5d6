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

import google.cloud.pubsub_v1 as pubsub_v1
import grpc
from google.api_core.retry import Retry
from google.pubsub_v1 import PublisherClient as GapicPublisherClient
from google.pubsub_v1 import PublishRequest, PubsubMessage
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

from .coalescer import MAX_CALL_BYTES, MAX_CALL_MESSAGES, Coalescer, publish_chunks
from .messages import ORIGIN_ATTRIBUTE, Origin, OutgoingMessage, PublishError, Topic

__all__ = [
    "DIRECT_MIN_MESSAGES",
    "MAX_CALL_BYTES",
    "MAX_CALL_MESSAGES",
    "ORIGIN_ATTRIBUTE",
    "Origin",
    "OutgoingMessage",
    "PublishError",
    "Publisher",
    "Topic",
    "client",
    "publish_chunks",
]

# Without ordering, small requests (under DIRECT_MIN_MESSAGES) are coalesced (group commit, see
# coalescer.py): concurrent requests share Publish calls. Larger requests are one Publish call (or
# a few, cut by `publish_chunks`) from the request's own thread. With ordering on, the batching
# client groups messages per key; a batch closes after 1 ms or 500 messages.
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
        self._coalescer = Coalescer(self._send) if not ordering else None

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
