"""In-memory ports handed to the handlers, so their behaviour tests need no emulator: a topic
that keeps what is published (and can be told to fail), a ledger, a token store. The real
clients are proven once each on the emulators (tests/*/test_*_e2e.py, the `emulator` mark)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from common.secrets import SecretUnavailable
from publisher import OutgoingMessage, PublishError
from subscription.ledger import Entry, LedgerUnavailable


@dataclass(frozen=True, slots=True)
class Published:
    """A message as a subscriber of the topic would pull it (the fields tests read of
    Pub/Sub's `PubsubMessage`)."""

    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    message_id: str


class FakeTopic:
    """A `publisher.Topic` in memory. `down = True` makes every publish fail as Pub/Sub's would
    (`PublishError`); `pull` hands out what was published since the last pull, like a pull
    subscription that acknowledges everything."""

    def __init__(self, name: str = "fake-topic", ordering: bool = False) -> None:
        self.name = name
        self._ordering = ordering
        self.down = False
        self.calls = 0
        self.resumed: list[str] = []
        self._lock = threading.Lock()
        self._unpulled: list[Published] = []
        self._count = 0

    @property
    def ordering(self) -> bool:
        return self._ordering

    def publish_all(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        with self._lock:
            self.calls += 1
            if self.down:
                raise PublishError(f"0 of {len(messages)} confirmed (the fake topic is down)")
            ids = []
            for message in messages:
                self._count += 1
                ids.append(str(self._count))
                key = message.ordering_key if self._ordering else ""
                self._unpulled.append(
                    Published(message.data, dict(message.attributes), key, ids[-1])
                )
            return ids

    def submit(self, message: OutgoingMessage) -> Future[str]:
        """One message, as `Publisher.submit` hands it over: a future, done at once (failed
        while the topic is down)."""
        future: Future[str] = Future()
        try:
            future.set_result(self.publish_all([message])[0])
        except PublishError as error:
            future.set_exception(error)
        return future

    def resume(self, keys: Iterable[str]) -> None:
        """After a failed ordered publish (nothing is paused here)."""
        self.resumed.extend(keys)

    def pull(self, count: int = 0, timeout: float = 0.0) -> list[Published]:
        """Everything published and not pulled yet (`count` and `timeout` are accepted for the
        emulator topic's signature: nothing here arrives late)."""
        with self._lock:
            pulled, self._unpulled = self._unpulled, []
            return pulled


@dataclass
class FakeLedger:
    """A `subscription.ledger.Ledger` in memory; `down = True` fails as Firestore would."""

    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    down: bool = False
    lookups: int = 0

    def find(self, tenant: str, idempotency_key: str) -> Entry | None:
        self.lookups += 1
        if self.down:
            raise LedgerUnavailable("the fake ledger is down")
        return self.entries.get((tenant, idempotency_key))

    def record(self, entry: Entry, when: datetime) -> None:
        if self.down:
            raise LedgerUnavailable("the fake ledger is down")
        self.entries[(entry.tenant, entry.idempotency_key)] = entry


@dataclass
class FakeTokens:
    """ingest's token store in memory; `down = True` is Secret Manager out of reach with
    nothing cached."""

    accepted: set[str] = field(default_factory=set)
    down: bool = False
    asked: int = 0

    def verify(self, presented: str) -> bool:
        self.asked += 1
        if self.down:
            raise SecretUnavailable("the fake token store is down")
        return presented in self.accepted
