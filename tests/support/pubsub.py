"""A topic on the emulator with a pull subscription, for asserting what was published."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from google.api_core.exceptions import DeadlineExceeded
from google.cloud import pubsub_v1

from ..factories import PROJECT

Pulled = pubsub_v1.types.PubsubMessage

# The two ways an operator tool finds no Pub/Sub, and what its one line must say of each.
UNREACHABLE_PUBSUB = pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PUBSUB_EMULATOR_HOST": "127.0.0.1:9"}, "nothing answers at PUBSUB_EMULATOR_HOST"),
        ({"PUBSUB_EMULATOR_HOST": ""}, "no Google credentials"),
    ],
    ids=["emulator down", "no credentials"],
)


class Topic:
    """A fresh topic with a pull subscription (created on the emulator in use)."""

    def __init__(self, name: str, ordering: bool = False) -> None:
        self.name = name
        self.path = f"projects/{PROJECT}/topics/{name}"
        self.subscription = f"projects/{PROJECT}/subscriptions/{name}-pull"
        self._publisher = pubsub_v1.PublisherClient()
        self._subscriber = pubsub_v1.SubscriberClient()
        self._publisher.create_topic(name=self.path)
        self._subscriber.create_subscription(
            request={
                "name": self.subscription,
                "topic": self.path,
                "enable_message_ordering": ordering,
            }
        )

    def pull(self, count: int, timeout: float = 20.0) -> list[Pulled]:
        """Pull and ack until `count` messages arrived (or the timeout); extra ones are kept too."""
        return self.pull_until(lambda received: len(received) >= count, timeout)

    def pull_until(
        self, done: Callable[[list[Pulled]], bool], timeout: float = 20.0
    ) -> list[Pulled]:
        """Pull and ack until `done(everything received)` holds, or the timeout."""
        received: list[Pulled] = []
        deadline = time.monotonic() + timeout
        while not done(received) and time.monotonic() < deadline:
            try:
                response = self._subscriber.pull(
                    subscription=self.subscription,
                    max_messages=1000,
                    timeout=max(0.5, min(5.0, deadline - time.monotonic())),
                )
            except DeadlineExceeded:
                continue
            if response.received_messages:
                self._subscriber.acknowledge(
                    subscription=self.subscription,
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
            received.extend(m.message for m in response.received_messages)
        return received


def without_google(home: Path, **env: str) -> dict[str, str]:
    """This environment with no way to Google: no credentials file, an empty home and gcloud
    configuration, a metadata server that is not there; `env` on top."""
    kept = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    isolated = {
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / "gcloud"),
        "GCE_METADATA_HOST": "127.0.0.1:9",
    }
    return {**kept, **isolated, **env}
