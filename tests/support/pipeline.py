"""The delivery half of the pipeline for end-to-end tests: a raw-events topic on the emulator
with a push subscription to `deliver` served by functions-framework, and a dead-letter topic."""

from __future__ import annotations

import json
from typing import Any

from google.cloud import pubsub_v1

from tools.emulator import Emulator, FirestoreEmulator

from ..factories import PROJECT, TOKEN
from .pubsub import Topic
from .saasquatch_standin import API_KEY, TENANT

DEAD_LETTER_TOPIC = "e2e-dead-letters"
RAW_TOPIC = "e2e-raw-events"


def ingest_env(emulator: Emulator, topic: str, **extra: str) -> dict[str, str]:
    """ingest publishing to `topic` on the emulator, accepting the tests' token."""
    return {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PUBSUB_TOPIC": topic,
        "INGEST_TOKEN": TOKEN,
        **extra,
    }


def deliver_env(
    emulator: Emulator, base_url: str, firestore: FirestoreEmulator | None = None, **extra: str
) -> dict[str, str]:
    """deliver on the emulator, sending to the SaaSquatch stand-in at `base_url`; with its
    delivery ledger on the Firestore emulator when one is given, else without a ledger."""
    ledger = (
        {"FIRESTORE_EMULATOR_HOST": firestore.host, "DELIVERY_LEDGER": "true"}
        if firestore is not None
        else {"DELIVERY_LEDGER": "false"}
    )
    return {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "DEAD_LETTER_TOPIC": DEAD_LETTER_TOPIC,
        "SAASQUATCH_TENANT_ALIAS": TENANT,
        "SAASQUATCH_API_KEY": API_KEY,
        "SAASQUATCH_BASE_URL": base_url,
        "SAASQUATCH_TIMEOUT_SECONDS": "0.5",
        **ledger,
        **extra,
    }


class Pipeline:
    """The raw-events topic, its push subscription to `deliver`, and the dead-letter topic."""

    def __init__(self, emulator: Emulator, deliver_url: str) -> None:
        emulator.reset()
        self.dead_letters = Topic(DEAD_LETTER_TOPIC)
        self.topic = f"projects/{PROJECT}/topics/{RAW_TOPIC}"
        self._publisher = pubsub_v1.PublisherClient()
        self._publisher.create_topic(name=self.topic)
        pubsub_v1.SubscriberClient().create_subscription(
            request={
                "name": f"projects/{PROJECT}/subscriptions/{RAW_TOPIC}-deliver",
                "topic": self.topic,
                "push_config": {"push_endpoint": deliver_url},
                "ack_deadline_seconds": 10,
                # No retry policy: with one, the emulator now and then strands a message it
                # has pushed twice (seen in about 1 run in 6); without, it redelivers a
                # nacked push after about a second, every time.
            }
        )

    def publish(self, message: dict[str, Any] | bytes, **attributes: str) -> str:
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        return self._publisher.publish(self.topic, data, **attributes).result(timeout=10)
