"""The delivery ledger: which events SaaSquatch has accepted, kept 180 days in Firestore.

SaaSquatch forgets an idempotency key after 24 hours or so; our own tools do not forget events.
A dead letter replayed days later, a backfill over events already delivered live, a push Pub/Sub
kept retrying for more than a day: each would send a purchase again once SaaSquatch no longer
knows its key, and pay a referral reward twice. So every event SaaSquatch accepts is recorded,
and an event that may be such a repeat is looked up first; one found is acknowledged as
already delivered without a call.

**When to look.** A lookup costs a Firestore read on the way to SaaSquatch; a live event does not
need one, since SaaSquatch itself still knows its key. An event is looked up when it comes from a
replay or a backfill (their `origin` attribute), or when it happened more than
`check_after` ago (SaaSquatch keeps keys at least 24 h; the default, 20 h, leaves room for
clocks), or claims to happen in the future (a device clock that is ahead would keep the event
"new" for ever). Every accepted event is recorded, which costs one write.

What is kept identifies an event and nothing else: the tenant, the idempotency key, the user's
ids and the event key; never a value. Entries carry `expireAt`, which a Firestore TTL policy uses
to delete them after 180 days (SaaSquatch's own limit on an event's age).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from google.api_core.retry import Retry

from common.outcomes import Outcome, Reason
from mapper import MappingOptions, Plan, map_message
from publisher import Origin
from saasquatch.calls import Purpose

from .execute import Result, Send, execute

ORIGINS_TO_CHECK = frozenset(Origin)
RETENTION = timedelta(days=180)
FUTURE_SLACK = timedelta(minutes=5)


class LedgerUnavailable(Exception):
    """Firestore could not be read or written: deliver asks for a retry, never risks a double."""


@dataclass(frozen=True, slots=True)
class Entry:
    tenant: str
    idempotency_key: str
    account_id: str
    user_id: str
    event_key: str


class Ledger(Protocol):
    """deliver's port to the ledger (`FirestoreLedger` in production)."""

    def find(self, tenant: str, idempotency_key: str) -> Entry | None: ...

    def record(self, entry: Entry, when: datetime) -> None: ...


def document_id(tenant: str, idempotency_key: str) -> str:
    """A Firestore document id for the pair (ids cannot hold `/`, and keys can)."""
    return hashlib.sha256(f"{tenant}\n{idempotency_key}".encode()).hexdigest()


class FirestoreLedger:
    """The ledger in a Firestore collection; the client is made on first use, once per process
    (`FIRESTORE_EMULATOR_HOST` sends it to the emulator)."""

    def __init__(self, project: str, database: str, collection: str, timeout: float) -> None:
        self._project = project
        self._database = database
        self._collection = collection
        self._timeout = timeout
        # Retries (of a transient error) end with the timeout too: the client's default would
        # keep a push waiting for minutes while Firestore is down.
        self._retry = Retry(initial=0.1, maximum=1.0, timeout=timeout)
        self._client: Any = None
        self._lock = threading.Lock()

    def _documents(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client.collection(self._collection)

    def recorded(self, tenant: str, idempotency_keys: Iterable[str]) -> set[str]:
        """Which of the keys the ledger has, in one batched read (the operator tools ask for
        hundreds at a time)."""
        keys = {document_id(tenant, key): key for key in idempotency_keys}
        if not keys:
            return set()
        try:
            documents = self._documents()
            references = [documents.document(name) for name in keys]
            found = self._client.get_all(references, retry=self._retry, timeout=self._timeout)
            return {keys[snapshot.id] for snapshot in found if snapshot.exists}
        except Exception as error:
            raise LedgerUnavailable(_why(error)) from None

    def find(self, tenant: str, idempotency_key: str) -> Entry | None:
        """The entry filed under the key, or None."""
        try:
            found = self._documents().document(document_id(tenant, idempotency_key))
            snapshot = found.get(retry=self._retry, timeout=self._timeout)
        except Exception as error:  # any failure of the client: never a guess
            raise LedgerUnavailable(_why(error)) from None
        if not snapshot.exists:
            return None
        stored = snapshot.to_dict() or {}
        return Entry(
            str(stored.get("tenant", "")),
            str(stored.get("idempotencyKey", "")),
            str(stored.get("accountId", "")),
            str(stored.get("userId", "")),
            str(stored.get("eventKey", "")),
        )

    def record(self, entry: Entry, when: datetime) -> None:
        document = {
            "tenant": entry.tenant,
            "idempotencyKey": entry.idempotency_key,
            "accountId": entry.account_id,
            "userId": entry.user_id,
            "eventKey": entry.event_key,
            "deliveredAt": when,
            "expireAt": when + RETENTION,
        }
        try:
            target = self._documents().document(document_id(entry.tenant, entry.idempotency_key))
            target.set(document, retry=self._retry, timeout=self._timeout)
        except Exception as error:
            raise LedgerUnavailable(_why(error)) from None


def _why(error: Exception) -> str:
    """The client's failure in a few words: its class and the first line of its message, with
    nothing from our documents (the client's messages name the request, not its fields)."""
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def needs_check(plan: Plan, origin: str, now: datetime, check_after: timedelta) -> bool:
    """Whether the event may be one SaaSquatch no longer remembers (see the module's doc)."""
    if origin in ORIGINS_TO_CHECK or plan.event_time is None:
        return True  # no time of its own: its age cannot vouch for it
    return plan.event_time < now - check_after or plan.event_time > now + FUTURE_SLACK


def ledger_key(message: Mapping[str, Any], now: datetime) -> str | None:
    """The key the ledger would file a Segment message under: the idempotency key of an event
    deliver would send (none for an identify, an ignored or an undeliverable message). The
    key does not depend on the mapping options, so the defaults serve."""
    plan = map_message(dict(message), MappingOptions(), now=now)
    if plan.outcome is not Outcome.DELIVERED or entry_for(plan, "") is None:
        return None
    return plan.idempotency_key


def entry_for(plan: Plan, tenant: str) -> Entry | None:
    """What the ledger keeps for a plan that sends an event (None for any other plan)."""
    event = next((call for call in plan.calls if call.purpose is Purpose.TRACK_EVENT), None)
    if event is None or plan.idempotency_key is None or event.body is None:
        return None
    return Entry(
        tenant,
        plan.idempotency_key,
        str(event.body.get("accountId", "")),
        str(event.body.get("userId", "")),
        plan.event_key or "",
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """How a plan ended, and whether the ledger was read for it."""

    result: Result
    looked_up: bool = False


def execute_once(
    plan: Plan,
    send: Send,
    ledger: Ledger | None,
    tenant: str,
    origin: str,
    now: datetime,
    check_after: timedelta,
) -> Checked:
    """`execute`, with the ledger in front: an event it knows is not sent again, an event
    SaaSquatch accepts is recorded. Without a ledger (switched off, dry run) it is `execute`."""
    entry = entry_for(plan, tenant) if ledger is not None else None
    if ledger is None or entry is None or plan.outcome is not Outcome.DELIVERED:
        return Checked(execute(plan, send))
    looked_up = needs_check(plan, origin, now, check_after)
    try:
        found = ledger.find(tenant, entry.idempotency_key) if looked_up else None
    except LedgerUnavailable as error:
        return Checked(Result(Outcome.RETRY, Reason.LEDGER_UNAVAILABLE, str(error)), True)
    if found == entry:
        said = "in the delivery ledger: SaaSquatch accepted this event before"
        return Checked(Result(Outcome.DELIVERED, Reason.ALREADY_IN_LEDGER, said), True)
    if found is not None:
        # The key was used by another event (another user, account or event): not a repeat,
        # and not safe to send under a key SaaSquatch may still connect with the other one.
        differ = ", ".join(_differences(found, entry))
        said = f"the ledger has this idempotency key for another event ({differ} differ)"
        return Checked(Result(Outcome.DEAD_LETTERED, Reason.IDEMPOTENCY_KEY_REUSED, said), True)
    result = execute(plan, send)
    if result.outcome is not Outcome.DELIVERED:
        return Checked(result, looked_up)
    try:
        ledger.record(entry, now)
    except LedgerUnavailable as error:
        # SaaSquatch has it; Pub/Sub redelivers, SaaSquatch answers 409, and it is recorded then.
        detail = f"delivered, but not recorded in the ledger: {error}"
        failed = replace(result, outcome=Outcome.RETRY, reason=Reason.LEDGER_UNAVAILABLE)
        return Checked(replace(failed, detail=detail), looked_up)
    return Checked(result, looked_up)


_IDENTIFYING = {
    "tenant": "tenant",
    "account": "account_id",
    "user": "user_id",
    "event key": "event_key",
}


def _differences(stored: Entry, current: Entry) -> list[str]:
    """Which identifying fields of two entries under one key differ (names, for the detail)."""
    return [
        label
        for label, attribute in _IDENTIFYING.items()
        if getattr(stored, attribute) != getattr(current, attribute)
    ]
