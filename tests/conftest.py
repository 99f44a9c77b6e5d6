"""Fixtures: the Pub/Sub emulator, the stand-ins, both handlers, and child processes.

Tests are marked by what they need, from the fixtures they use (`pytest_collection_modifyitems`):
`emulator` (the real Pub/Sub emulator) and `subprocess` (a child process: a served function, a
CLI, a script). The fast tier (`make check`) deselects both. A test that starts a process without
the `processes` fixture fails, so the marks cannot drift from the truth.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
from flask.testing import FlaskClient

from mapper.accounts import AccountMemory
from subscription.deliver import create_handler as create_deliver
from subscription.deliver_settings import DeliverSettings
from subscription.ingest import create_handler as create_ingest
from subscription.ingest_settings import IngestSettings
from subscription.ledger import Ledger
from tools.emulator import Emulator, FirestoreEmulator, running_emulator, running_firestore

from .factories import PROJECT, TOKEN
from .support.fakes import FakeTopic
from .support.functions import MakeDeliver, MakeIngest, client_for
from .support.pipeline import deliver_env
from .support.processes import Processes
from .support.pubsub import Topic
from .support.saasquatch_standin import API_KEY, TENANT, SaaSquatchStandIn
from .support.secret_manager_standin import SecretManagerStandIn
from .support.served import Served, served

# Fixture -> the mark of what it needs. Fixtures that build on these inherit the mark, because
# pytest lists every fixture a test uses, directly or not, in `item.fixturenames`.
NEEDS = {
    "emulator": "emulator",
    "outage_emulator": "emulator",
    "firestore": "emulator",
    "processes": "subprocess",
    "deliver_server": "subprocess",
    "deployed": "subprocess",  # tools/test_cloudbuild.py runs the build's steps
}

# Where Pub/Sub clients go when no emulator runs: a closed local port, so a fast-tier test that
# publishes by mistake fails at once instead of reaching for Google Cloud.
NO_PUBSUB = "127.0.0.1:9"


# `make check` runs `--hypothesis-profile=check`: a tenth of the examples, for the edit loop.
hypothesis.settings.register_profile("check", max_examples=10)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & NEEDS.keys():
            item.add_marker(NEEDS[fixture])


@pytest.fixture(scope="session", autouse=True)
def _pubsub_goes_nowhere_by_default() -> Iterator[None]:
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = NO_PUBSUB
    yield
    if previous is None:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
    else:
        os.environ["PUBSUB_EMULATOR_HOST"] = previous


@pytest.fixture(autouse=True)
def _processes_only_through_the_fixture(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the `subprocess` mark honest: without `processes`, starting a process fails (but for
    `bash_syntax`, a syntax check that ends in milliseconds)."""
    if request.node.get_closest_marker("subprocess") is None and (
        "bash_syntax" not in getattr(request, "fixturenames", ())
    ):

        def refuse(*_args: Any, **_kwargs: Any) -> None:
            raise AssertionError("this test starts a process: use the `processes` fixture")

        monkeypatch.setattr(subprocess, "Popen", refuse)


# --- child processes -----------------------------------------------------------------------------


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    yield running
    running.stop_all()


@pytest.fixture
def bash_syntax() -> Callable[[str], subprocess.CompletedProcess[str]]:
    """`bash -n` over a script's text: the one child process the fast tier allows (it reads the
    script and ends, in milliseconds; no server, no emulator)."""

    def check(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-n"], input=script, capture_output=True, text=True, timeout=10, check=False
        )

    return check


# --- Pub/Sub emulator ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One real Pub/Sub emulator for the whole session; every client here talks to it."""
    with running_emulator() as running:
        os.environ["PUBSUB_EMULATOR_HOST"] = running.host
        try:
            yield running
        finally:
            os.environ["PUBSUB_EMULATOR_HOST"] = NO_PUBSUB


@pytest.fixture(scope="session")
def firestore() -> Iterator[FirestoreEmulator]:
    """One real Firestore emulator for the whole session (the delivery ledger's database)."""
    with running_firestore() as running:
        os.environ["FIRESTORE_EMULATOR_HOST"] = running.host
        try:
            yield running
        finally:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)


@pytest.fixture
def ledger_firestore(firestore: FirestoreEmulator) -> FirestoreEmulator:
    """The Firestore emulator with no document in the tests' project."""
    firestore.reset(PROJECT)
    return firestore


@pytest.fixture
def topic(emulator: Emulator, request: pytest.FixtureRequest) -> Topic:
    """A fresh topic with a pull subscription on an emptied emulator."""
    emulator.reset()
    return Topic(f"raw-{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture
def dead_letters(topic: Topic) -> Topic:
    """The topic deliver dead-letters to (pass `DEAD_LETTER_TOPIC=dead_letters.name`)."""
    return topic


# --- stand-ins -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def saasquatch_server() -> Iterator[SaaSquatchStandIn]:
    with SaaSquatchStandIn() as running:
        yield running


@pytest.fixture
def saasquatch_api(saasquatch_server: SaaSquatchStandIn) -> SaaSquatchStandIn:
    """The SaaSquatch stand-in, emptied: no requests, no users, no faults."""
    saasquatch_server.reset()
    saasquatch_server.api_keys = {API_KEY}
    return saasquatch_server


@pytest.fixture
def secret_manager() -> Iterator[SecretManagerStandIn]:
    """A Secret Manager stand-in speaking its REST API, with no secrets yet."""
    with SecretManagerStandIn() as running:
        yield running


# --- the handlers, built from settings objects, with in-memory ports -------------------------


def given(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings: `base` with `overrides` (a None override unsets the variable)."""
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


@pytest.fixture
def raw_events() -> FakeTopic:
    """The in-memory raw-events topic `make_ingest` publishes to."""
    return FakeTopic("raw-events")


@pytest.fixture
def dead_lettered() -> FakeTopic:
    """The in-memory dead-letter topic `make_deliver` publishes to."""
    return FakeTopic("dead-letters")


@pytest.fixture
def make_ingest(raw_events: FakeTopic) -> MakeIngest:
    """`ingest` publishing to the in-memory `raw_events`; keyword arguments are settings, as the
    environment spells them. A test that names `PUBSUB_TOPIC` gets the real Pub/Sub client on
    that topic instead (and needs the `emulator` fixture)."""

    def make(**settings: Any) -> FlaskClient:
        base = {"GOOGLE_CLOUD_PROJECT": PROJECT, "INGEST_TOKEN": TOKEN}
        checked = IngestSettings.checked(**given(base, settings))
        topic = None if "PUBSUB_TOPIC" in settings else raw_events
        return client_for(create_ingest(checked, raw_events=topic))

    return make


@pytest.fixture
def make_deliver(saasquatch_api: SaaSquatchStandIn, dead_lettered: FakeTopic) -> MakeDeliver:
    """`deliver` sending to the SaaSquatch stand-in and dead-lettering to the in-memory
    `dead_lettered`; keyword arguments are settings. A test that names `DEAD_LETTER_TOPIC` gets
    the real Pub/Sub client on that topic (and needs the `emulator` fixture); `ledger=` hands in
    a ledger, `accounts=` a memory of accounts. The delivery ledger is off unless a test turns
    it on."""

    def make(
        ledger: Ledger | None = None, accounts: AccountMemory | None = None, **settings: Any
    ) -> FlaskClient:
        base = {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SAASQUATCH_TENANT_ALIAS": TENANT,
            "SAASQUATCH_API_KEY": API_KEY,
            "SAASQUATCH_BASE_URL": saasquatch_api.base_url,
            "SAASQUATCH_TIMEOUT_SECONDS": "1",
            "DELIVERY_LEDGER": "false",
        }
        checked = DeliverSettings.checked(**given(base, settings))
        topic = None if "DEAD_LETTER_TOPIC" in settings else dead_lettered
        return client_for(
            create_deliver(checked, ledger=ledger, accounts=accounts, dead_letters=topic)
        )

    return make


@pytest.fixture(scope="session")
def deliver_server(emulator: Emulator, saasquatch_server: SaaSquatchStandIn) -> Iterator[Served]:
    """`deliver` served by functions-framework for the whole session, sending to the stand-in."""
    with served("deliver", deliver_env(emulator, saasquatch_server.base_url)) as function:
        yield function
