"""Pub/Sub publishing: one lazy process-wide client, publish many, wait for every future.

The channel is built here (to cap gRPC's reconnect backoff), so `PUBSUB_EMULATOR_HOST` is read
here too, exactly as the client library would read it.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Sequence

import grpc
from google.api_core.retry import Retry
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

from .dead_letter import ADDED_ATTRIBUTES, dead_letter_message
from .messages import OutgoingMessage, ordering_key, segment_message

__all__ = [
    "ADDED_ATTRIBUTES",
    "OutgoingMessage",
    "PublishError",
    "Publisher",
    "client",
    "dead_letter_message",
    "ordering_key",
    "segment_message",
]

# Batches close after 5 ms or 500 messages: short enough that a lone webhook is not held back,
# long enough that concurrent requests share publish calls.
BATCH_SETTINGS = pubsub_v1.types.BatchSettings(
    max_messages=500, max_bytes=4 * 1024 * 1024, max_latency=0.005
)

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

_clients: dict[bool, pubsub_v1.PublisherClient] = {}
_clients_lock = threading.Lock()


def client(ordering: bool = False) -> pubsub_v1.PublisherClient:
    """The process-wide client (one per ordering mode), created on first use."""
    with _clients_lock:
        if ordering not in _clients:
            _clients[ordering] = pubsub_v1.PublisherClient(
                transport=_transport(),
                batch_settings=BATCH_SETTINGS,
                publisher_options=pubsub_v1.types.PublisherOptions(
                    enable_message_ordering=ordering
                ),
            )
        return _clients[ordering]


def _transport() -> PublisherGrpcTransport:
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    if emulator:
        channel = grpc.insecure_channel(emulator, options=CHANNEL_OPTIONS)
    else:
        channel = PublisherGrpcTransport.create_channel(options=CHANNEL_OPTIONS)
    return PublisherGrpcTransport(channel=channel)


class PublishError(Exception):
    """At least one message was not confirmed by Pub/Sub in time."""


class Publisher:
    """Publishes to one topic and waits for every message to be confirmed."""

    def __init__(self, project: str, topic: str, ordering: bool, timeout: float) -> None:
        self._topic = f"projects/{project}/topics/{topic}"
        self._ordering = ordering
        self._timeout = timeout
        # The client's own retries stop before our deadline, so no future outlives the answer.
        self._retry = Retry(initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout)

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Pub/Sub message ids, in order; `PublishError` unless every one was confirmed."""
        deadline = time.monotonic() + self._timeout
        publisher = client(self._ordering)
        futures = []
        try:
            for message in messages:
                futures.append(
                    publisher.publish(
                        self._topic,
                        message.data,
                        ordering_key=message.ordering_key,
                        retry=self._retry,
                        timeout=self._timeout,
                        **message.attributes,
                    )
                )
        except Exception as error:  # e.g. an ordering key paused by an earlier failure
            self._resume(messages)
            raise PublishError(f"publish refused: {type(error).__name__}") from error
        done, pending = concurrent.futures.wait(
            futures, timeout=max(0.0, deadline - time.monotonic())
        )
        failures = [future for future in done if future.exception() is not None]
        if pending or failures:
            self._resume(messages)
            cause = type(failures[0].exception()).__name__ if failures else "timeout"
            raise PublishError(
                f"{len(failures)} failed and {len(pending)} unconfirmed of {len(futures)} ({cause})"
            )
        return [future.result() for future in futures]

    def _resume(self, messages: Sequence[OutgoingMessage]) -> None:
        """After a failed ordered publish the key is paused; resume it so the user's next
        request (Segment's retry) is not refused forever."""
        if not self._ordering:
            return
        publisher = client(True)
        for key in {message.ordering_key for message in messages if message.ordering_key}:
            publisher.resume_publish(self._topic, key)
