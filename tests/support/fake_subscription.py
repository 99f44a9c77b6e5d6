"""A pull subscription in memory that behaves as Pub/Sub's does for the calls the dead-letter
tool makes (`pull`, `acknowledge`, `modify_ack_deadline`), handed to `DeadLetters(subscriber=)`.

What it keeps of Pub/Sub: every message has an id and a publish time; a pulled message is
outstanding until its ack deadline, then comes back with a new ack id (the old one no longer
acknowledges anything, silently, as Pub/Sub ignores an expired ack id); a deadline of 0 (a nack)
makes it pullable at once; an acknowledged message is gone. Its clock moves only when a test says
so (`advance`), so nothing here depends on timing; `on_pull` lets a test act between pulls (a
message arriving while a command runs, a deadline passing); `restart` is the emulator's restart
(ids count from 1 again).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..factories import PROJECT

SUBSCRIPTION = "dead-letters-pull"


@dataclass
class Message:
    """The fields the tool reads of Pub/Sub's `PubsubMessage`."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: datetime


@dataclass(frozen=True)
class Received:
    ack_id: str
    message: Message


@dataclass(frozen=True)
class PullResponse:
    received_messages: list[Received]


@dataclass
class _Waiting:
    message: Message
    ack_id: str = ""  # the current delivery's, "" when not outstanding
    deadline: float = 0.0
    deliveries: int = 0


@dataclass
class FakeSubscription:
    ack_deadline_seconds: float = 10.0
    name: str = SUBSCRIPTION
    now: float = 0.0  # seconds on the fake clock; moved only by `advance`
    on_pull: Callable[[FakeSubscription], None] | None = None
    pulls: int = 0
    _waiting: dict[str, _Waiting] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def path(self) -> str:
        return f"projects/{PROJECT}/subscriptions/{self.name}"

    def publish(
        self,
        data: bytes,
        attributes: Mapping[str, str] | None = None,
        publish_time: datetime | None = None,
    ) -> str:
        """Put a message on the subscription, published now (by the real clock, as the tool
        compares publish times with it) unless `publish_time` says otherwise; its id."""
        message_id = str(next(self._ids))
        when = publish_time or datetime.now(UTC)
        self._waiting[message_id] = _Waiting(
            Message(message_id, data, dict(attributes or {}), when)
        )
        return message_id

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def restart(self) -> list[Message]:
        """The emulator stopped and started again: it keeps no message and numbers ids from 1
        again. Returns what was waiting, for a test to publish again as make run's restore
        does (each then gets a new id)."""
        waiting = self.waiting()
        self._waiting.clear()
        self._ids = itertools.count(1)
        return waiting

    def waiting(self) -> list[Message]:
        """Every message not acknowledged, outstanding or not, in publish order."""
        return [entry.message for entry in self._waiting.values()]

    # --- the SubscriberClient calls -------------------------------------------------------

    def pull(self, *, subscription: str, max_messages: int, **_options: Any) -> PullResponse:
        self._check(subscription)
        self.pulls += 1
        if self.on_pull is not None:
            self.on_pull(self)
        received = []
        for entry in self._waiting.values():
            if len(received) == max_messages:
                break
            if entry.ack_id and entry.deadline > self.now:
                continue  # outstanding
            entry.deliveries += 1
            entry.ack_id = f"ack-{entry.message.message_id}-{entry.deliveries}"
            entry.deadline = self.now + self.ack_deadline_seconds
            received.append(Received(entry.ack_id, entry.message))
        return PullResponse(received)

    def acknowledge(self, *, subscription: str, ack_ids: Sequence[str]) -> None:
        self._check(subscription)
        for entry in self._current(ack_ids):
            del self._waiting[entry.message.message_id]

    def modify_ack_deadline(
        self, *, subscription: str, ack_ids: Sequence[str], ack_deadline_seconds: int
    ) -> None:
        self._check(subscription)
        assert len(ack_ids) <= 2500, "Pub/Sub takes at most 2,500 ack ids per request"
        for entry in self._current(ack_ids):
            entry.deadline = self.now + ack_deadline_seconds

    def _current(self, ack_ids: Sequence[str]) -> list[_Waiting]:
        """The messages whose current, unexpired delivery these ack ids are (others: ignored)."""
        wanted = set(ack_ids)
        return [
            entry
            for entry in self._waiting.values()
            if entry.ack_id in wanted and entry.deadline > self.now
        ]

    def _check(self, subscription: str) -> None:
        assert subscription == self.path, f"{subscription} is not {self.path}"
