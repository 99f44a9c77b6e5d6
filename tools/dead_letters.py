"""Look at dead-lettered messages, and send them back through the pipeline once the cause is fixed.

    python -m tools dead-letters list
    python -m tools dead-letters replay --reason saasquatch_unauthorized --limit 500

`list` pulls without acknowledging (and hands every message straight back), so it changes nothing.
`replay` republishes each message to the raw-events topic with its original data, attributes and
ordering key, and acknowledges it on the dead-letter subscription only after Pub/Sub confirmed the
republish: an interrupted replay leaves every message either republished or still dead-lettered
(a message republished but not yet acknowledged comes back and may be replayed twice, which
deliver's idempotency key makes harmless).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
from google.api_core import exceptions
from google.api_core.retry import Retry

from common import logs
from common.outcomes import Outcome, Reason, reasons_for
from publisher import ORIGIN_ATTRIBUTE, Origin, OutgoingMessage, Publisher
from pushes.dead_letters import ADDED_ATTRIBUTES
from subscription.raw_events import ordering_key
from tools import add_raw_events_arguments, cause, plural, preflight, setting
from tools.backfill import Pacer
from tools.ledger import LedgerCheck, add_ledger_arguments, ledger_check

# What Pub/Sub's own dead-letter policy adds when it moves a message after max delivery attempts.
POLICY_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"
# A pull waits up to PULL_SECONDS for messages; this many empty ones in a row mean "drained".
# Its retries (Pub/Sub unavailable) end after CALL_SECONDS: the client's default is a minute.
PULL_SECONDS = 2.0
CALL_SECONDS = 10.0
EMPTY_PULLS = 2
BATCH = 100
SAMPLE_CHARS = 300
REPUBLISH_SECONDS = 30.0


def reason_of(attributes: Mapping[str, str]) -> str:
    """The `reason` deliver recorded; Pub/Sub's own policy records none of ours."""
    if attributes.get("reason"):
        return attributes["reason"]
    if any(name.startswith(POLICY_ATTRIBUTE_PREFIX) for name in attributes):
        return Reason.DELIVERY_ATTEMPTS_EXHAUSTED
    return Reason.UNKNOWN


def original_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """The attributes the message had before it was dead-lettered, marked as a replay (deliver
    then looks it up in its ledger: SaaSquatch may have forgotten its key)."""
    kept = {
        name: value
        for name, value in attributes.items()
        if name not in ADDED_ATTRIBUTES and not name.startswith(POLICY_ATTRIBUTE_PREFIX)
    }
    return {**kept, ORIGIN_ATTRIBUTE: Origin.REPLAY}


def replay_ordering_key(data: bytes, attributes: Mapping[str, str], ordering: bool) -> str:
    """The key the message was first published with; derived as ingest does when unknown."""
    if not ordering:
        return ""
    if attributes.get("orderingKey"):
        return attributes["orderingKey"]
    try:
        message = json.loads(data)
    except ValueError:
        return ""
    return ordering_key(message) if isinstance(message, dict) else ""


class DeadLetters:
    """The pull subscription on the dead-letter topic."""

    def __init__(self, project: str, subscription: str, subscriber: Any = None) -> None:
        self.path = f"projects/{project}/subscriptions/{subscription}"
        self._subscriber = subscriber or pubsub_v1.SubscriberClient()
        self._held: list[str] = []

    def pull(self, limit: int | None = None) -> Generator[Any, None, None]:
        """Each dead letter once, until `limit` or nothing new arrives. A message seen before
        (it came back after its ack deadline) is held, not yielded again."""
        seen: set[str] = set()
        empty = 0
        while (limit is None or len(seen) < limit) and empty < EMPTY_PULLS:
            wanted = BATCH if limit is None else min(BATCH, limit - len(seen))
            try:
                response = self._subscriber.pull(
                    subscription=self.path,
                    max_messages=wanted,
                    timeout=PULL_SECONDS,
                    retry=Retry(timeout=CALL_SECONDS),
                )
                received = list(response.received_messages)
            except exceptions.DeadlineExceeded:
                received = []
            new = [r for r in received if r.message.message_id not in seen]
            self._held.extend(r.ack_id for r in received if r.message.message_id in seen)
            empty = 0 if new else empty + 1
            for index, message in enumerate(new):
                seen.add(message.message.message_id)
                try:
                    yield message
                except GeneratorExit:  # the caller stopped early: hand back the rest
                    self._held.extend(later.ack_id for later in new[index + 1 :])
                    raise

    def ack(self, ack_id: str) -> None:
        self._subscriber.acknowledge(subscription=self.path, ack_ids=[ack_id])

    def hold(self, ack_id: str) -> None:
        """Keep a message from being pulled again until `release_held`."""
        self._held.append(ack_id)

    def release_held(self) -> None:
        """Make every held message available again at once (a deadline of 0 is a nack)."""
        held, self._held = self._held, []
        for start in range(0, len(held), 1000):
            self._subscriber.modify_ack_deadline(
                subscription=self.path, ack_ids=held[start : start + 1000], ack_deadline_seconds=0
            )


def list_dead_letters(dead_letters: DeadLetters, limit: int | None) -> dict[str, dict[str, Any]]:
    """Reason -> count and one sample; every message is handed back untouched."""
    groups: dict[str, dict[str, Any]] = {}
    try:
        for received in dead_letters.pull(limit):
            dead_letters.hold(received.ack_id)
            attributes = dict(received.message.attributes)
            group = groups.setdefault(reason_of(attributes), {"count": 0})
            group["count"] += 1
            group.setdefault("sample", _sample(received.message, attributes))
    finally:
        dead_letters.release_held()
    return dict(sorted(groups.items(), key=lambda item: -item[1]["count"]))


def _sample(message: Any, attributes: Mapping[str, str]) -> dict[str, Any]:
    text = bytes(message.data).decode("utf-8", "replace")
    cut = text[:SAMPLE_CHARS] + ("..." if len(text) > SAMPLE_CHARS else "")
    return {
        "message_id": message.message_id,
        "attributes": logs.redact_emails(dict(attributes)),
        "data": logs.redact_emails(cut),
    }


@dataclass
class ReplaySummary:
    """What one replay did; every dead letter it looked at is in exactly one count."""

    replayed: int = 0
    in_ledger: int = 0  # acknowledged without a republish: SaaSquatch has them already
    other_reason: int = 0  # left: dead-lettered for another reason than --reason
    newer: int = 0  # left: dead-lettered after the replay began (for the next run)
    failed: int = 0  # left: the republish failed
    limit: int | None = None  # the replay stopped at this --limit
    failure: str = ""  # the first failure's cause

    def lines(self) -> list[str]:
        out = [f"replayed {plural(self.replayed, 'message')}"]
        if self.in_ledger:
            out.append(
                f"acknowledged {plural(self.in_ledger, 'message')} without replaying: the "
                "delivery ledger has them (SaaSquatch accepted them before)"
            )
        left = [
            (self.other_reason, "dead-lettered for another reason"),
            (self.newer, "dead-lettered after this replay began: replay again to send them"),
            (self.failed, f"not republished ({self.failure})"),
        ]
        out += [f"left {plural(count, 'message')} {why}" for count, why in left if count]
        if self.limit is not None:
            out.append(f"stopped at --limit {self.limit}: the rest stay dead-lettered")
        return out


def replay(
    dead_letters: DeadLetters,
    publisher: Publisher,
    reason: str | None = None,
    limit: int | None = None,
    rate: float = 0.0,
    ledger: LedgerCheck | None = None,
) -> ReplaySummary:
    """Republish each chosen dead letter, then acknowledge it. Only what was dead-lettered
    before the replay began is replayed: a message that fails again comes back as a new dead
    letter, and replaying those too would never end (or hammer SaaSquatch with a wrong key)."""
    began = datetime.now(UTC)
    summary = ReplaySummary()
    pacer = Pacer(rate)
    messages = dead_letters.pull()
    try:
        for received in messages:
            attributes = dict(received.message.attributes)
            if received.message.publish_time >= began:
                dead_letters.hold(received.ack_id)
                summary.newer += 1
                continue
            if limit is not None and summary.replayed >= limit:
                dead_letters.hold(received.ack_id)
                summary.limit = limit
                break
            if reason is not None and reason_of(attributes) != reason:
                dead_letters.hold(received.ack_id)
                summary.other_reason += 1
                continue
            data = bytes(received.message.data)
            if ledger is not None and _in_ledger(ledger, data):
                dead_letters.ack(received.ack_id)  # delivered: nothing left to do
                summary.in_ledger += 1
                continue
            pacer.wait()
            key = replay_ordering_key(data, attributes, publisher.ordering)
            outgoing = OutgoingMessage(data, original_attributes(attributes), key)
            try:
                publisher.submit(outgoing).result(timeout=REPUBLISH_SECONDS)
            except Exception as error:
                summary.failed += 1
                summary.failure = summary.failure or cause(error)
                dead_letters.hold(received.ack_id)
                publisher.resume([key])
                continue
            dead_letters.ack(received.ack_id)  # only now: the message is safe in the topic
            summary.replayed += 1
    finally:
        messages.close()
        dead_letters.release_held()
    return summary


def _in_ledger(ledger: LedgerCheck, data: bytes) -> bool:
    try:
        message = json.loads(data)
    except ValueError:
        return False
    return isinstance(message, dict) and ledger.recorded([message])[0]


def _add_shared(parser: argparse.ArgumentParser, after_command: bool) -> None:
    """The options of every subcommand, accepted before it and after it (after it they only
    count when given, so they never undo what came before)."""
    default: Any = argparse.SUPPRESS if after_command else None
    parser.add_argument(
        "--project",
        default=default if after_command else os.environ.get("GOOGLE_CLOUD_PROJECT", ""),
    )
    parser.add_argument(
        "--subscription",
        default=default if after_command else f"{setting('DEAD_LETTER_TOPIC')}-pull",
        help="the pull subscription on the dead-letter topic",
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools dead-letters", description="List or replay dead-lettered messages."
    )
    _add_shared(parser, after_command=False)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="counts and a sample per reason (changes nothing)")
    _add_shared(listing, after_command=True)
    listing.add_argument("--limit", type=int, default=10000, help="look at this many at most")
    listing.add_argument("--json", action="store_true", help="print JSON")
    again = commands.add_parser("replay", help="republish to the raw-events topic")
    _add_shared(again, after_command=True)
    again.add_argument(
        "--reason",
        default=None,
        choices=[str(reason) for reason in reasons_for(Outcome.DEAD_LETTERED)],
        metavar="REASON",
        help="only messages dead-lettered for this reason, one of: %(choices)s",
    )
    again.add_argument("--limit", type=int, default=None, help="replay this many at most")
    add_raw_events_arguments(again, "ordering keys as ingest sets them (default: PUBSUB_ORDERING)")
    again.add_argument("--rate", type=float, default=0.0, help="messages per second (0: no limit)")
    add_ledger_arguments(again)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.project:
        print("dead-letters: --project (or GOOGLE_CLOUD_PROJECT) is required", file=sys.stderr)
        return 2
    problem = preflight()
    if problem:
        print(f"dead-letters: {problem}", file=sys.stderr)
        return 1
    dead_letters = DeadLetters(args.project, args.subscription)
    try:
        if args.command == "list":
            groups = list_dead_letters(dead_letters, args.limit)
            _print_groups(groups, args.json)
            return 0
        ledger, note = ledger_check(args)
        if note:
            print(note, file=sys.stderr)
        publisher = Publisher(args.project, args.topic, args.ordering, REPUBLISH_SECONDS)
        summary = replay(dead_letters, publisher, args.reason, args.limit, args.rate, ledger)
    except KeyboardInterrupt:
        print("interrupted: messages not yet acknowledged stay dead-lettered", file=sys.stderr)
        return 130
    except Exception as error:  # a cause in one line, never a traceback
        print(f"dead-letters: {cause(error)}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def _print_groups(groups: Mapping[str, Mapping[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(groups, ensure_ascii=False, indent=2))
        return
    if not groups:
        print("no dead letters")
        return
    for reason, group in groups.items():
        sample = group["sample"]
        print(f"{group['count']:>7}  {reason}")
        detail = sample["attributes"].get("detail")
        if detail:
            print(f"         detail: {detail}")
        print(f"         sample: {sample['data']}")


if __name__ == "__main__":
    sys.exit(main())
