"""The delivery ledger: what it records (ids, never values), which events it looks up before
sending, that a repeat SaaSquatch has forgotten is not sent again, and that Firestore out of
reach means a retry, never a guess. Behaviour through an in-memory ledger; the real client on
the Firestore emulator (and against a closed port). The memory of accounts, which follows the
ledger's switch, is off here: tests/subscription/test_accounts.py has it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore as firestore_client

from mapper import Plan
from subscription.ledger import FUTURE_SLACK, document_id, needs_check
from tools.emulator import FirestoreEmulator
from tools.processes import free_port

from ..factories import EMAIL, PROJECT, envelope, identify, track
from ..support.fakes import FakeLedger, FakeTopic
from ..support.functions import MakeDeliver
from ..support.saasquatch_standin import TENANT, SaaSquatchStandIn, is_events

COLLECTION = "segment_saasquatch_deliveries"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=20)


@pytest.mark.parametrize(
    ("event_time", "origin", "looked_up"),
    [
        (NOW - timedelta(minutes=3), "", False),  # live: SaaSquatch knows its key
        (NOW - timedelta(hours=19), "", False),
        (NOW - timedelta(hours=21), "", True),  # SaaSquatch may have forgotten it
        (NOW - timedelta(days=40), "", True),
        (NOW + FUTURE_SLACK + timedelta(minutes=1), "", True),  # "new" for ever otherwise
        (NOW - timedelta(minutes=3), "replay", True),
        (NOW - timedelta(minutes=3), "backfill", True),
        (None, "", True),  # no time of its own
    ],
)
def test_which_events_are_looked_up(
    event_time: datetime | None, origin: str, looked_up: bool
) -> None:
    plan = Plan(outcome="delivered", idempotency_key="k-1", event_time=event_time)  # type: ignore[arg-type]
    assert needs_check(plan, origin, NOW, DAY) is looked_up


def test_document_ids_are_firestore_safe_and_per_tenant() -> None:
    assert "/" not in document_id("t", "a/b/c")
    assert document_id("tenant-a", "k") != document_id("tenant-b", "k")


@pytest.fixture
def with_ledger(make_deliver: MakeDeliver, ledger_firestore: FirestoreEmulator) -> Any:
    """deliver with its ledger (the Firestore client finds the emulator through the environment,
    which the `firestore` fixture set)."""
    return make_deliver(DELIVERY_LEDGER="true", REMEMBER_ACCOUNTS="false")


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def with_fake_ledger(make_deliver: MakeDeliver, ledger: FakeLedger) -> Any:
    """deliver with an in-memory ledger."""
    return make_deliver(DELIVERY_LEDGER="true", REMEMBER_ACCOUNTS="false", ledger=ledger)


@pytest.fixture
def firestore_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's Firestore out of reach: a closed local port."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")


def stored() -> list[dict[str, Any]]:
    client = firestore_client.Client(project=PROJECT)
    return [document.to_dict() for document in client.collection(COLLECTION).stream()]


def old_track(message_id: str, days: float = 2, **changes: Any) -> dict[str, Any]:
    when = datetime.now(UTC) - timedelta(days=days)
    return track(message_id, timestamp=when.isoformat().replace("+00:00", "Z"), **changes)


def events_sent(saasquatch_api: SaaSquatchStandIn) -> int:
    return sum(1 for request in saasquatch_api.requests if is_events(request))


def test_an_accepted_event_is_recorded_with_its_ids_and_no_value(
    with_ledger: Any, saasquatch_api: SaaSquatchStandIn
) -> None:
    saasquatch_api.add_user("u-1001", "u-1001")
    message = track("m-ledger-0001", properties={"plan": "enterprise", "email": EMAIL})
    assert with_ledger.post("/", json=envelope(message)).json["outcome"] == "delivered"
    assert with_ledger.post("/", json=envelope(identify(messageId="m-ident-x"))).status_code == 200
    [entry] = stored()  # the identify is not recorded: an upsert is idempotent by itself
    assert {key: entry[key] for key in ("tenant", "idempotencyKey", "userId", "eventKey")} == {
        "tenant": TENANT,
        "idempotencyKey": "m-ledger-0001",
        "userId": "u-1001",
        "eventKey": "signedUp",
    }
    assert entry["expireAt"] - entry["deliveredAt"] == timedelta(days=180)
    assert EMAIL not in str(entry) and "enterprise" not in str(entry)


def test_an_old_event_the_ledger_knows_is_not_sent_again(
    with_fake_ledger: Any, saasquatch_api: SaaSquatchStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    with_ledger = with_fake_ledger
    message = old_track("m-ledger-0002")
    assert with_ledger.post("/", json=envelope(message)).json["outcome"] == "delivered"
    saasquatch_api.reset()  # SaaSquatch forgets the idempotency key
    again = with_ledger.post("/", json=envelope(message))
    assert again.json == {"outcome": "delivered", "reason": "already_in_ledger"}
    assert saasquatch_api.requests == []
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"ledger_looked_up": true' in last and '"already_in_ledger"' in last


def test_a_replayed_live_event_is_looked_up_and_a_live_one_is_not(
    with_fake_ledger: Any, saasquatch_api: SaaSquatchStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    with_ledger = with_fake_ledger
    message = track("m-ledger-0003")  # a day old by the factory; make it live
    message["timestamp"] = datetime.now(UTC).isoformat()
    assert with_ledger.post("/", json=envelope(message)).status_code == 200
    assert "ledger_looked_up" not in capsys.readouterr().out
    saasquatch_api.reset()
    replayed = with_ledger.post("/", json=envelope(message, {"origin": "replay"}))
    assert replayed.json["reason"] == "already_in_ledger"
    assert saasquatch_api.requests == []


def test_without_the_ledger_the_same_repeat_is_sent_twice(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn
) -> None:
    """The risk the ledger removes: once SaaSquatch forgot the key, a replay is a new event."""
    client = make_deliver()  # DELIVERY_LEDGER=false
    message = old_track("m-ledger-0004")
    client.post("/", json=envelope(message))
    saasquatch_api.reset()
    client.post("/", json=envelope(message, {"origin": "replay"}))
    assert events_sent(saasquatch_api) >= 2
    assert sum(saasquatch_api.delivered_events.values()) == 1  # the stand-in forgot the first


def test_firestore_out_of_reach_means_a_retry_and_nothing_sent_unchecked(
    make_deliver: MakeDeliver, saasquatch_api: SaaSquatchStandIn, firestore_down: None
) -> None:
    client = make_deliver(
        DELIVERY_LEDGER="true", REMEMBER_ACCOUNTS="false", LEDGER_TIMEOUT_SECONDS="1"
    )
    old = client.post("/", json=envelope(old_track("m-ledger-0005")))
    assert (old.status_code, old.json["reason"]) == (503, "ledger_unavailable")
    assert saasquatch_api.requests == []  # looked up first, and the lookup failed
    live = track("m-ledger-0006")
    live["timestamp"] = datetime.now(UTC).isoformat()
    answer = client.post("/", json=envelope(live))
    # Sent (no lookup needed), but not recorded: retried, and SaaSquatch's 409 settles it then.
    assert (answer.status_code, answer.json["reason"]) == (503, "ledger_unavailable")
    assert events_sent(saasquatch_api) >= 1


def test_a_delivery_recorded_late_is_settled_by_the_redelivery(
    make_deliver: MakeDeliver,
    ledger_firestore: FirestoreEmulator,
    saasquatch_api: SaaSquatchStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write failed after SaaSquatch accepted; Pub/Sub redelivers, SaaSquatch answers 409
    (it still knows the key), and the event is recorded then."""
    live = track("m-ledger-0007")
    live["timestamp"] = datetime.now(UTC).isoformat()
    with monkeypatch.context() as down_for_a_while:
        down_for_a_while.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
        down = make_deliver(
            DELIVERY_LEDGER="true", REMEMBER_ACCOUNTS="false", LEDGER_TIMEOUT_SECONDS="1"
        )
        assert down.post("/", json=envelope(live)).status_code == 503
    up = make_deliver(DELIVERY_LEDGER="true", REMEMBER_ACCOUNTS="false")
    assert up.post("/", json=envelope(live)).json["reason"] == "already_delivered"
    assert [entry["idempotencyKey"] for entry in stored()] == ["m-ledger-0007"]
    assert sum(saasquatch_api.delivered_events.values()) == 1


def test_a_dry_run_neither_reads_nor_writes_the_ledger(
    make_deliver: MakeDeliver, ledger: FakeLedger
) -> None:
    dry = make_deliver(
        DRY_RUN="true", DELIVERY_LEDGER="true", REMEMBER_ACCOUNTS="false", ledger=ledger
    )
    assert dry.post("/", json=envelope(old_track("m-ledger-0008"))).json["outcome"] == "delivered"
    assert (ledger.lookups, ledger.entries) == (0, {})


def test_a_ledger_that_is_down_is_a_retry_before_any_call(
    with_fake_ledger: Any, ledger: FakeLedger, saasquatch_api: SaaSquatchStandIn
) -> None:
    ledger.down = True
    old = with_fake_ledger.post("/", json=envelope(old_track("m-ledger-0009")))
    assert (old.status_code, old.json["reason"]) == (503, "ledger_unavailable")
    assert saasquatch_api.requests == []


@pytest.mark.parametrize(
    ("changes", "differ"),
    [
        ({"userId": "u-2002"}, "account, user"),  # a solo account is the user's own
        ({"context": {"traits": {"account_id": "acct-9"}}}, "account"),
        ({"event": "Order Shipped"}, "event key"),
    ],
)
def test_a_key_reused_by_another_event_is_dead_lettered_not_acknowledged(
    with_fake_ledger: Any,
    saasquatch_api: SaaSquatchStandIn,
    dead_lettered: FakeTopic,
    changes: dict[str, Any],
    differ: str,
) -> None:
    """User A's purchase with messageId X is delivered; a two-day-old event of someone else
    reusing X is not a repeat: it must not be answered `already_in_ledger` and vanish."""
    saasquatch_api.add_user("u-1001", "u-1001")
    first = old_track("m-reused-0001")
    assert with_fake_ledger.post("/", json=envelope(first)).json["outcome"] == "delivered"
    saasquatch_api.reset()
    other = old_track("m-reused-0001", **changes)
    answer = with_fake_ledger.post("/", json=envelope(other))
    assert answer.json == {"outcome": "dead_lettered", "reason": "idempotency_key_reused"}
    assert saasquatch_api.requests == []
    [letter] = dead_lettered.pull()
    assert json.loads(letter.data) == other
    assert letter.attributes["detail"].endswith(f"({differ} differ)")


def test_the_real_ledger_tells_a_reused_key_from_a_repeat(
    with_ledger: Any, saasquatch_api: SaaSquatchStandIn
) -> None:
    first = old_track("m-reused-0002")
    assert with_ledger.post("/", json=envelope(first)).json["outcome"] == "delivered"
    saasquatch_api.reset()
    again = with_ledger.post("/", json=envelope(first, {"origin": "replay"}))
    assert again.json["reason"] == "already_in_ledger"
    other = with_ledger.post("/", json=envelope(old_track("m-reused-0002", userId="u-7")))
    assert other.json["reason"] == "idempotency_key_reused"
    assert saasquatch_api.requests == []
