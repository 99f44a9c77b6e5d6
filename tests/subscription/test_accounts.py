"""deliver remembers accounts: an identify (or any call) that names a user's account is
remembered, and a later call that names none goes there instead of a solo account named after
the user. Behaviour through an in-memory memory, asserted as SaaSquatch's stand-in receives it;
the real client on the Firestore emulator (and against a closed port)."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from google.cloud import firestore as firestore_client

from common.settings import ConfigError
from mapper.__main__ import run as preview_run
from mapper.accounts import AccountsInMemory, seen_at
from subscription.accounts import (
    RETENTION,
    AccountMemoryUnavailable,
    FirestoreAccounts,
    document_id,
)
from subscription.deliver_settings import DeliverSettings
from tools.emulator import FirestoreEmulator
from tools.processes import free_port

from ..factories import PROJECT, envelope
from ..support.functions import MakeDeliver
from ..support.saasquatch_standin import TENANT, SaaSquatchStandIn

COLLECTION = "segment_saasquatch_accounts"


@dataclass
class FakeAccounts(AccountsInMemory):
    """The previews' memory (`mapper.accounts.AccountsInMemory`, the real one's rule: a message
    that happened earlier does not replace an entry) that counts recalls, and with
    `down = True` fails as Firestore would."""

    down: bool = False
    recalls: int = 0

    def _check(self) -> None:
        if self.down:
            raise AccountMemoryUnavailable("the fake memory is down")

    def recall(self, tenant: str, user: str, now: datetime) -> str | None:
        self.recalls += 1
        self._check()
        return super().recall(tenant, user, now)

    def remember(
        self, tenant: str, user: str, account: str, seen_at: datetime, now: datetime
    ) -> None:
        self._check()
        super().remember(tenant, user, account, seen_at, now)

    def forget(self, tenant: str, user: str) -> None:
        self._check()
        super().forget(tenant, user)

    def account(self, user: str) -> str | None:
        found = self.entries.get((TENANT, user))
        return found[0] if found else None


@pytest.fixture
def memory() -> FakeAccounts:
    return FakeAccounts()


@pytest.fixture
def deliver(make_deliver: MakeDeliver, memory: FakeAccounts) -> Any:
    """deliver with the in-memory memory of accounts; keyword arguments are settings."""

    def make(**settings: str) -> FlaskClient:
        return make_deliver(accounts=memory, **{"REMEMBER_ACCOUNTS": "true", **settings})

    return make


def deliver_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("entry_point") == "deliver"]


def ago(days: float) -> str:
    when = datetime.now(UTC) - timedelta(days=days)
    return when.isoformat().replace("+00:00", "Z")


def identify(account: str | None, days: float = 1, message_id: str = "m-ident-0042") -> dict:
    traits: dict[str, Any] = {"email": "u42@example.com"}
    if account is not None:
        traits["account_id"] = account
    return {
        "type": "identify",
        "userId": "u-42",
        "messageId": message_id,
        "timestamp": ago(days),
        "traits": traits,
    }


def refund(message_id: str = "m-refund-0042", account: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "userId": "u-42",
        "event": "Order Refunded",
        "messageId": message_id,
        "timestamp": ago(0.5),
        "properties": {"order_id": "o-1", "total": 30},
    }
    if account is not None:
        message["context"] = {"traits": {"account_id": account}}
    return message


def sent(saasquatch_api: SaaSquatchStandIn) -> list[tuple[str, str, int]]:
    base = f"/api/v1/{TENANT}"
    return [(r.method, r.path.removeprefix(base), r.status) for r in saasquatch_api.requests]


def test_a_track_without_an_account_goes_to_the_account_an_identify_named(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts, capsys: Any
) -> None:
    client = deliver()
    assert client.post("/", json=envelope(identify("acct-7"))).json == {"outcome": "delivered"}
    assert memory.account("u-42") == "acct-7"
    assert client.post("/", json=envelope(refund())).json == {"outcome": "delivered"}
    assert sent(saasquatch_api) == [
        ("PUT", "/open/account/acct-7/user/u-42", 200),
        ("POST", "/open/account/acct-7/user/u-42/events", 200),
    ]
    assert saasquatch_api.users == {("acct-7", "u-42")}
    first, second = deliver_lines(capsys.readouterr().out)
    assert (first["account_from"], second["account_from"]) == ("trait", "remembered")
    assert "acct-7" not in str(second), "the log line says where the account came from, not it"


def test_the_missing_user_upsert_goes_to_the_remembered_account_too(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    """The trap of the hosted rule: a 404 for u-42 in account u-42 made a second participant."""
    memory.remember(TENANT, "u-42", "acct-7", datetime.now(UTC), datetime.now(UTC))
    answer = deliver().post("/", json=envelope(refund()))
    assert answer.json == {"outcome": "delivered", "reason": "user_created"}
    assert sent(saasquatch_api) == [
        ("POST", "/open/account/acct-7/user/u-42/events", 404),
        ("PUT", "/open/account/acct-7/user/u-42", 200),
        ("POST", "/open/account/acct-7/user/u-42/events", 200),
    ]
    assert saasquatch_api.users == {("acct-7", "u-42")}, "no solo account u-42"


def test_an_account_named_later_wins_and_is_remembered(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    client = deliver()
    client.post("/", json=envelope(identify("acct-7")))
    moved = client.post("/", json=envelope(refund("m-refund-0001", account="acct-9")))
    assert moved.json["outcome"] == "delivered"
    assert memory.account("u-42") == "acct-9"
    client.post("/", json=envelope(refund("m-refund-0002")))
    assert [path for _, path, _ in sent(saasquatch_api)][-1] == (
        "/open/account/acct-9/user/u-42/events"
    )


def test_an_older_replayed_identify_does_not_move_the_user_back(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    client = deliver()
    client.post("/", json=envelope(identify("acct-9", days=1, message_id="m-ident-new")))
    replayed = identify("acct-7", days=3, message_id="m-ident-old")
    assert client.post("/", json=envelope(replayed, {"origin": "replay"})).status_code == 200
    assert memory.account("u-42") == "acct-9"
    client.post("/", json=envelope(refund()))
    assert sent(saasquatch_api)[-1][1] == "/open/account/acct-9/user/u-42/events"


def at(when: str, message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "timestamp": when}


def test_deliver_and_the_preview_keep_the_newest_account_by_the_messages_time(
    deliver: Any, saasquatch_api: SaaSquatchStandIn
) -> None:
    """An identify dated a month earlier arrives after the newer one (a late or replayed
    message): both keep acct-7, by one rule (`mapper.accounts.replaces`)."""
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    newer = (now - timedelta(hours=9)).isoformat()
    month_before = (now - timedelta(days=31)).isoformat()
    messages = [
        at(newer, identify("acct-7", message_id="m-ident-new")),
        at(month_before, identify("acct-OLD", message_id="m-ident-old")),
        at(newer, refund()),
    ]
    client = deliver()
    for message in messages:
        assert client.post("/", json=envelope(message)).status_code == 200
    assert sent(saasquatch_api)[-1][1] == "/open/account/acct-7/user/u-42/events"

    out, err = io.StringIO(), io.StringIO()
    lines = io.StringIO("\n".join(json.dumps(message) for message in messages))
    assert preview_run(lines, out, err, ["--now", now.isoformat()]) == 0, err.getvalue()
    planned = [json.loads(line) for line in out.getvalue().splitlines()]
    assert planned[-1]["account"] == {"id": "acct-7", "from": "remembered"}
    assert planned[-1]["calls"][0]["path"] == "/open/account/acct-7/user/u-42/events"


def test_switched_off_it_is_the_hosted_rule(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    client = deliver(REMEMBER_ACCOUNTS="false")
    client.post("/", json=envelope(identify("acct-7")))
    client.post("/", json=envelope(refund()))
    assert sent(saasquatch_api)[1:] == [
        ("POST", "/open/account/u-42/user/u-42/events", 404),
        ("PUT", "/open/account/u-42/user/u-42", 200),
        ("POST", "/open/account/u-42/user/u-42/events", 200),
    ]
    assert (memory.entries, memory.recalls) == ({}, 0)


def test_a_delete_goes_to_the_remembered_account_and_forgets_the_user(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    client = deliver(HONOR_DELETE="true")
    client.post("/", json=envelope(identify("acct-7")))
    answer = client.post("/", json=envelope({"type": "delete", "userId": "u-42"}))
    assert answer.json == {"outcome": "delivered"}, "deleted, not taken as already deleted"
    assert sent(saasquatch_api)[-1] == ("DELETE", "/open/account/acct-7/user/u-42", 200)
    assert saasquatch_api.users == set()
    assert memory.entries == {}


def test_a_delete_ignored_by_design_forgets_the_user_too(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    """HONOR_DELETE=false (the default): SaaSquatch keeps the user, but our own record of them
    goes (privacy): a later call without an account is the hosted rule's."""
    client = deliver()
    client.post("/", json=envelope(identify("acct-7")))
    answer = client.post("/", json=envelope({"type": "delete", "userId": "u-42"}))
    assert answer.json == {"outcome": "ignored", "reason": "delete_disabled"}
    assert memory.entries == {}
    client.post("/", json=envelope(refund()))
    assert sent(saasquatch_api)[1] == ("POST", "/open/account/u-42/user/u-42/events", 404)
    memory.remember(TENANT, "u-42", "acct-7", datetime.now(UTC), datetime.now(UTC))
    memory.down = True
    again = client.post("/", json=envelope({"type": "delete", "userId": "u-42"}))
    assert (again.status_code, again.json["reason"]) == (503, "account_memory_unavailable")


def test_memory_out_of_reach_is_a_retry_and_nothing_is_sent(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    memory.down = True
    answer = deliver().post("/", json=envelope(refund()))
    assert (answer.status_code, answer.json["reason"]) == (503, "account_memory_unavailable")
    assert "error" in answer.json
    assert saasquatch_api.requests == []


def test_an_account_accepted_but_not_remembered_is_retried(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts
) -> None:
    """SaaSquatch has the upsert; the redelivery upserts again (the same data) and remembers."""
    client = deliver()
    memory.down = True
    answer = client.post("/", json=envelope(identify("acct-7")))
    assert (answer.status_code, answer.json["reason"]) == (503, "account_memory_unavailable")
    assert sent(saasquatch_api) == [("PUT", "/open/account/acct-7/user/u-42", 200)]
    memory.down = False
    assert client.post("/", json=envelope(identify("acct-7"))).status_code == 200
    assert memory.account("u-42") == "acct-7"


def test_a_dry_run_remembers_what_the_messages_say(
    deliver: Any, saasquatch_api: SaaSquatchStandIn, memory: FakeAccounts, capsys: Any
) -> None:
    client = deliver(DRY_RUN="true")
    client.post("/", json=envelope(identify("acct-7")))
    client.post("/", json=envelope(refund()))
    assert saasquatch_api.requests == []
    assert memory.account("u-42") == "acct-7"
    lines = deliver_lines(capsys.readouterr().out)
    assert [line.get("account_from") for line in lines] == ["trait", "remembered"]


@pytest.mark.parametrize(
    ("settings", "remembers"),
    [
        ({}, True),
        ({"DELIVERY_LEDGER": "false"}, False),  # no Firestore: neither
        ({"DELIVERY_LEDGER": "false", "REMEMBER_ACCOUNTS": "true"}, True),
        ({"REMEMBER_ACCOUNTS": "false"}, False),
        ({"REMEMBER_ACCOUNTS": ""}, True),  # empty, as the build passes it: unset
        ({"DRY_RUN": "true"}, True),
    ],
)
def test_the_setting_follows_the_ledger_unless_set(
    settings: dict[str, str], remembers: bool
) -> None:
    assert DeliverSettings.checked(**settings).remembers_accounts is remembers


@pytest.mark.parametrize("value", [" ", " yes ", "yes", "FALSE", "1", "maybe"])
def test_the_setting_reads_a_value_as_every_boolean_setting_does(value: str) -> None:
    def read(name: str) -> object:
        try:
            return getattr(DeliverSettings.checked(**{name: value}), name)
        except ConfigError:
            return "refused"

    assert read("REMEMBER_ACCOUNTS") == read("HONOR_DELETE")


def test_seen_at_is_the_message_time_never_later_than_now() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    earlier = {"timestamp": "2026-11-28T12:00:00Z"}
    assert seen_at(earlier, now) == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert seen_at({"timestamp": "2027-01-01T00:00:00Z"}, now) == now
    assert seen_at({"receivedAt": "2026-11-29T11:00:00Z"}, now) == now - timedelta(hours=1)
    assert seen_at({}, now) == now


def test_document_ids_are_firestore_safe_and_per_tenant() -> None:
    assert "/" not in document_id("t", "a/b/c")
    assert document_id("tenant-a", "u") != document_id("tenant-b", "u")


# --- the real client, on the Firestore emulator ---------------------------------------------------

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def accounts(ledger_firestore: FirestoreEmulator) -> FirestoreAccounts:
    return FirestoreAccounts(PROJECT, "(default)", COLLECTION, 5.0)


def stored() -> list[dict[str, Any]]:
    client = firestore_client.Client(project=PROJECT)
    return [document.to_dict() for document in client.collection(COLLECTION).stream()]


def test_the_real_memory_keeps_ids_only_and_a_later_message_wins(
    accounts: FirestoreAccounts,
) -> None:
    assert accounts.recall(TENANT, "u-42", NOW) is None
    accounts.remember(TENANT, "u-42", "acct-7", NOW - timedelta(days=2), NOW)
    assert accounts.recall(TENANT, "u-42", NOW) == "acct-7"
    [entry] = stored()
    assert entry == {
        "tenant": TENANT,
        "userId": "u-42",
        "accountId": "acct-7",
        "seenAt": NOW - timedelta(days=2),
        "expireAt": NOW + RETENTION,
    }
    accounts.remember(TENANT, "u-42", "acct-9", NOW - timedelta(days=1), NOW)
    assert accounts.recall(TENANT, "u-42", NOW) == "acct-9"
    assert accounts.recall("other-tenant", "u-42", NOW) is None


def test_the_real_memory_does_not_let_an_older_message_move_the_user_back(
    accounts: FirestoreAccounts,
) -> None:
    accounts.remember(TENANT, "u-42", "acct-9", NOW - timedelta(days=1), NOW)
    accounts.remember(TENANT, "u-42", "acct-7", NOW - timedelta(days=3), NOW + timedelta(hours=1))
    assert accounts.recall(TENANT, "u-42", NOW) == "acct-9"
    [entry] = stored()
    assert entry["expireAt"] == NOW + RETENTION, "the older message wrote nothing"


def test_the_real_memory_is_kept_by_use_and_forgets_on_delete(
    accounts: FirestoreAccounts,
) -> None:
    accounts.remember(TENANT, "u-42", "acct-7", NOW - timedelta(days=1), NOW)
    later = NOW + timedelta(days=40)
    assert accounts.recall(TENANT, "u-42", later) == "acct-7"
    [entry] = stored()
    assert entry["expireAt"] == later + RETENTION
    accounts.forget(TENANT, "u-42")
    assert accounts.recall(TENANT, "u-42", later) is None
    accounts.forget(TENANT, "u-42")  # forgetting twice is no failure


def test_deliver_remembers_on_the_emulator(
    make_deliver: Any, ledger_firestore: FirestoreEmulator, saasquatch_api: SaaSquatchStandIn
) -> None:
    """The build's defaults: the ledger on, the memory with it, both in Firestore."""
    client = make_deliver(DELIVERY_LEDGER="true")
    assert client.post("/", json=envelope(identify("acct-7"))).status_code == 200
    assert client.post("/", json=envelope(refund())).json == {"outcome": "delivered"}
    assert sent(saasquatch_api)[-1] == ("POST", "/open/account/acct-7/user/u-42/events", 200)
    assert [entry["accountId"] for entry in stored()] == ["acct-7"]


def test_the_real_memory_out_of_reach_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    memory = FirestoreAccounts(PROJECT, "(default)", COLLECTION, 1.0)
    with pytest.raises(AccountMemoryUnavailable):
        memory.recall(TENANT, "u-42", NOW)
    with pytest.raises(AccountMemoryUnavailable):
        memory.remember(TENANT, "u-42", "acct-7", NOW, NOW)


class Meanwhile:
    """A document whose first read is followed by another deliver's write, before the caller
    writes: the race the memory's optimistic write must lose without breaking its rule."""

    def __init__(self, document: Any, write: Callable[[], None]) -> None:
        self._document = document
        self._write: Callable[[], None] | None = write

    def get(self, **options: Any) -> Any:
        snapshot = self._document.get(**options)
        if self._write is not None:
            write, self._write = self._write, None
            write()
        return snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._document, name)


@pytest.mark.parametrize(
    ("before", "ours", "theirs", "kept"),
    [
        (None, ("acct-7", 3), ("acct-9", 1), "acct-9"),  # both create: the newer one stays
        (("acct-1", 5), ("acct-7", 3), ("acct-9", 1), "acct-9"),  # both replace an older one
        (("acct-1", 5), ("acct-9", 1), ("acct-7", 3), "acct-9"),  # ours is newer: read again
    ],
)
def test_the_real_memory_keeps_the_newest_when_two_delivers_race(
    accounts: FirestoreAccounts,
    monkeypatch: pytest.MonkeyPatch,
    before: tuple[str, int] | None,
    ours: tuple[str, int],
    theirs: tuple[str, int],
    kept: str,
) -> None:
    """(account, days before NOW) each; the other deliver writes between our read and write."""
    other = FirestoreAccounts(PROJECT, "(default)", COLLECTION, 5.0)
    if before is not None:
        other.remember(TENANT, "u-42", before[0], NOW - timedelta(days=before[1]), NOW)
    real = accounts._document

    def racing(tenant: str, user: str) -> Any:
        def write() -> None:
            other.remember(tenant, user, theirs[0], NOW - timedelta(days=theirs[1]), NOW)

        return Meanwhile(real(tenant, user), write)

    monkeypatch.setattr(accounts, "_document", racing)
    accounts.remember(TENANT, "u-42", ours[0], NOW - timedelta(days=ours[1]), NOW)
    assert other.recall(TENANT, "u-42", NOW) == kept
    [entry] = stored()
    assert entry["seenAt"] == NOW - timedelta(days=1)


@pytest.fixture
def silent_firestore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """FIRESTORE_EMULATOR_HOST on a port that takes connections and never answers (a stopped
    Firestore emulator, SIGSTOPped: the connection is made, no answer ever comes)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{silent.getsockname()[1]}")
        yield


# Many times the 1 s timeout: only a call without a bound runs this long (a transaction's
# commit retried for about a minute). A guard against a hang, not a measurement.
GUARD_SECONDS = 30.0


def test_a_firestore_that_never_answers_is_a_retry_after_the_timeout(
    make_deliver: Any, saasquatch_api: SaaSquatchStandIn, silent_firestore: None
) -> None:
    client = make_deliver(REMEMBER_ACCOUNTS="true", LEDGER_TIMEOUT_SECONDS="1")
    answers: list[Any] = []
    threads = [
        threading.Thread(target=lambda m=m: answers.append(client.post("/", json=envelope(m))))
        for m in (identify("acct-7"), refund())  # the write after SaaSquatch; the read before
    ]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join(GUARD_SECONDS)
    assert len(answers) == 2, "deliver is still waiting for Firestore"
    assert [(a.status_code, a.json["reason"]) for a in answers] == [
        (503, "account_memory_unavailable")
    ] * 2
    assert sent(saasquatch_api) == [("PUT", "/open/account/acct-7/user/u-42", 200)]
