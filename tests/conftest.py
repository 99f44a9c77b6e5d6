"""Shared fixtures: the Pub/Sub emulator, the SaaSquatch stand-in, and both entry points."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient
from google.api_core.exceptions import DeadlineExceeded
from google.cloud import pubsub_v1

import settings
from mapper import MappingOptions, Plan, map_message
from tools.emulator import Emulator, running_emulator
from tools.processes import ROOT

from .saasquatch_standin import API_KEY, TENANT, SaaSquatchStandIn
from .served import Served, served

# A fixed "now" keeps the timestamp window deterministic.
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def plan_for(message: dict[str, Any], **options: Any) -> Plan:
    return map_message(message, MappingOptions(**options), now=NOW)


@pytest.fixture
def now() -> datetime:
    return NOW


# --- Pub/Sub emulator ---------------------------------------------------------------------------

PROJECT = "test-project"


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One real Pub/Sub emulator for the whole session; every client here talks to it."""
    with running_emulator() as running:
        previous = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = running.host
        try:
            yield running
        finally:
            if previous is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = previous


class Topic:
    """A fresh topic with a pull subscription, for asserting what was published."""

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

    def pull(self, count: int, timeout: float = 20.0) -> list[pubsub_v1.types.PubsubMessage]:
        """Pull and ack until `count` messages arrived (or the timeout); extra ones are kept too."""
        received: list[pubsub_v1.types.PubsubMessage] = []
        deadline = time.monotonic() + timeout
        while len(received) < count and time.monotonic() < deadline:
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


@pytest.fixture
def topic(emulator: Emulator, request: pytest.FixtureRequest) -> Topic:
    emulator.reset()
    return Topic(f"raw-{abs(hash(request.node.nodeid)) % 10**8}")


# --- ingest, loaded by the Functions Framework ---------------------------------------------------

TOKEN = "seg-7f3c9a1e-live-token"
MakeIngest = Callable[..., FlaskClient]


def clear_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in settings.Settings.model_fields:
        if name != "PUBSUB_EMULATOR_HOST":
            monkeypatch.delenv(name, raising=False)


def load_function(monkeypatch: pytest.MonkeyPatch, target: str, env: dict[str, Any]) -> FlaskClient:
    """`target` loaded by the Functions Framework exactly as Cloud Run loads it, with only the
    settings in `env` (a None value leaves the variable unset)."""
    clear_settings_env(monkeypatch)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, str(value))
    settings.load.cache_clear()
    return functions_framework.create_app(target=target, source=str(ROOT / "main.py")).test_client()


@pytest.fixture
def make_ingest(monkeypatch: pytest.MonkeyPatch, topic: Topic) -> MakeIngest:
    """`ingest` as Cloud Run loads it, publishing to `topic`; `env` overrides."""

    def make(**env: Any) -> FlaskClient:
        base = {"GOOGLE_CLOUD_PROJECT": PROJECT, "PUBSUB_TOPIC": topic.name, "INGEST_TOKEN": TOKEN}
        return load_function(monkeypatch, "ingest", {**base, **env})

    return make


# --- SaaSquatch stand-in and deliver -------------------------------------------------------------


@pytest.fixture(scope="session")
def running_saasquatch() -> Iterator[SaaSquatchStandIn]:
    with SaaSquatchStandIn() as running:
        yield running


@pytest.fixture
def stand_in(running_saasquatch: SaaSquatchStandIn) -> SaaSquatchStandIn:
    """The SaaSquatch stand-in, emptied: no requests, no users, no faults."""
    running_saasquatch.reset()
    running_saasquatch.api_keys = {API_KEY}
    return running_saasquatch


MakeDeliver = Callable[..., FlaskClient]


@pytest.fixture
def make_deliver(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, stand_in: SaaSquatchStandIn
) -> MakeDeliver:
    """`deliver` loaded by the Functions Framework, sending to the stand-in; `env` overrides."""

    def make(**env: Any) -> FlaskClient:
        base = {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SAASQUATCH_TENANT_ALIAS": TENANT,
            "SAASQUATCH_API_KEY": API_KEY,
            "SAASQUATCH_BASE_URL": stand_in.base_url,
            "SAASQUATCH_TIMEOUT_SECONDS": "1",
        }
        return load_function(monkeypatch, "deliver", {**base, **env})

    return make


@pytest.fixture(scope="session")
def deliver(emulator: Emulator, running_saasquatch: SaaSquatchStandIn) -> Iterator[Served]:
    """`deliver` served by functions-framework for the whole session, sending to the stand-in."""
    from .pipeline import deliver_env

    with served("deliver", deliver_env(emulator, running_saasquatch.base_url)) as function:
        yield function
