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
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from google.api_core import exceptions
from google.cloud import pubsub_v1

from common import logs
from common.outcomes import Outcome, Reason, reasons_for
from delivery.dead_letters import ADDED_ATTRIBUTES
from ingestion.raw_events import ordering_key
from publisher import OutgoingMessage, Publisher
from tools import add_project_argument, add_raw_events_arguments, setting
from tools.backfill import Pacer

# What Pub/Sub's own dead-letter policy adds when it moves a message after max delivery attempts.
POLICY_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"
# A pull waits up to PULL_SECONDS for messages; this many empty ones in a row mean "drained".
PULL_SECONDS = 2.0
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
    """The attributes the message had before it was dead-lettered."""
    return {
        name: value
        for name, value in attributes.items()
        if name not in ADDED_ATTRIBUTES and not name.startswith(POLICY_ATTRIBUTE_PREFIX)
    }


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

    def pull(self, limit: int | None = None) -> Iterator[Any]:
        """Each dead letter once, until `limit` or nothing new arrives. A message seen before
        (it came back after its ack deadline) is held, not yielded again."""
        seen: set[str] = set()
        empty = 0
        while (limit is None or len(seen) < limit) and empty < EMPTY_PULLS:
            wanted = BATCH if limit is None else min(BATCH, limit - len(seen))
            try:
                response = self._subscriber.pull(
                    subscription=self.path, max_messages=wanted, timeout=PULL_SECONDS
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


def replay(
    dead_letters: DeadLetters,
    publisher: Publisher,
    reason: str | None = None,
    limit: int | None = None,
    rate: float = 0.0,
) -> Counter[str]:
    """Republish each chosen dead letter, then acknowledge it; counts replayed / left / failed."""
    counts: Counter[str] = Counter()
    pacer = Pacer(rate)
    messages = dead_letters.pull()
    try:
        for received in messages:
            attributes = dict(received.message.attributes)
            if limit is not None and counts["replayed"] >= limit:
                dead_letters.hold(received.ack_id)
                break
            if reason is not None and reason_of(attributes) != reason:
                dead_letters.hold(received.ack_id)
                counts["left"] += 1
                continue
            pacer.wait()
            data = bytes(received.message.data)
            key = replay_ordering_key(data, attributes, publisher.ordering)
            outgoing = OutgoingMessage(data, original_attributes(attributes), key)
            try:
                publisher.submit(outgoing).result(timeout=REPUBLISH_SECONDS)
            except Exception:
                counts["failed"] += 1
                dead_letters.hold(received.ack_id)
                publisher.resume([key])
                continue
            dead_letters.ack(received.ack_id)  # only now: the message is safe in the topic
            counts["replayed"] += 1
    finally:
        messages.close()
        dead_letters.release_held()
    return counts


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools dead-letters", description="List or replay dead-lettered messages."
    )
    add_project_argument(parser)
    parser.add_argument(
        "--subscription",
        default=f"{setting('DEAD_LETTER_TOPIC')}-pull",
        help="the pull subscription on the dead-letter topic",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="counts and a sample per reason (changes nothing)")
    listing.add_argument("--limit", type=int, default=10000, help="look at this many at most")
    listing.add_argument("--json", action="store_true", help="print JSON")
    again = commands.add_parser("replay", help="republish to the raw-events topic")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.project:
        print("dead-letters: --project (or GOOGLE_CLOUD_PROJECT) is required", file=sys.stderr)
        return 2
    dead_letters = DeadLetters(args.project, args.subscription)
    try:
        if args.command == "list":
            groups = list_dead_letters(dead_letters, args.limit)
            _print_groups(groups, args.json)
            return 0
        publisher = Publisher(args.project, args.topic, args.ordering, REPUBLISH_SECONDS)
        counts = replay(dead_letters, publisher, args.reason, args.limit, args.rate)
    except KeyboardInterrupt:
        print("interrupted: messages not yet acknowledged stay dead-lettered", file=sys.stderr)
        return 130
    except exceptions.GoogleAPICallError as error:
        print(f"dead-letters: Pub/Sub refused: {error.message}", file=sys.stderr)
        return 1
    print(
        f"replayed {counts['replayed']}, left {counts['left']} with other reasons, "
        f"failed {counts['failed']} (still dead-lettered)"
    )
    return 1 if counts["failed"] else 0


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
