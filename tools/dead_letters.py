"""Look at dead-lettered messages; send them back through the pipeline once the cause is fixed;
export the ones whose data is at fault, so they can be corrected and sent with `backfill`; discard.

    python -m tools dead-letters list
    python -m tools dead-letters replay --reason saasquatch_unauthorized --limit 500
    python -m tools dead-letters export --reason missing_event_name fix.jsonl
    python -m tools backfill fix.jsonl          # after correcting it
    python -m tools dead-letters discard --exported fix.jsonl

`list` and `export` pull without acknowledging (and hand every message straight back), so they
change nothing; a pull that fails is an error in one line, never "no dead letters". `replay`
republishes each message to the raw-events topic with its original data, attributes and ordering
key, and acknowledges it on the dead-letter subscription only after Pub/Sub confirmed the
republish: an interrupted replay leaves every message either republished or still dead-lettered
(a message republished but not yet acknowledged comes back and may be replayed twice, which
deliver's idempotency key makes harmless). A reason whose remedy is the data's own
(`common.remedies`) is never replayed: it would only be dead-lettered again. `discard`
acknowledges what it is asked to (a reason, or exactly the dead letters an export wrote, known by
their data and reason: Pub/Sub ids change when a message is republished), after a count and a
confirmation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.api_core import exceptions
from google.api_core.retry import Retry, if_exception_type

from common import logs, strict_json
from common.outcomes import Outcome, Reason, reasons_for
from common.remedies import Remedy, remedy_of
from publisher import ORIGIN_ATTRIBUTE, Origin, OutgoingMessage, Publisher
from pushes.dead_letters import ADDED_ATTRIBUTES
from subscription.raw_events import ordering_key
from tools import add_raw_events_arguments, cause, plural, preflight, setting
from tools.backfill import Pacer
from tools.ledger import LedgerCheck, add_ledger_arguments, ledger_check
from tools.pubsub_clients import subscriber_client

# What Pub/Sub's own dead-letter policy adds when it moves a message after max delivery attempts.
POLICY_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"
# A pull waits up to PULL_SECONDS for messages; this many empty ones in a row mean "drained".
# Its retries (Pub/Sub unavailable) end after CALL_SECONDS: the client's default is a minute.
# Only unavailability is retried: a pull that failed otherwise may have leased its messages
# (they stay out of sight for the ack deadline), and a retry would find "nothing".
PULL_SECONDS = 2.0
CALL_SECONDS = 10.0
PULL_RETRY = Retry(
    predicate=if_exception_type(exceptions.ServiceUnavailable, exceptions.InternalServerError),
    timeout=CALL_SECONDS,
)
EMPTY_PULLS = 2
BATCH = 100
SAMPLE_CHARS = 300
REPUBLISH_SECONDS = 30.0
# Beside an export's FILE: one line per line of FILE, with why and when it was dead-lettered.
SIDECAR_SUFFIX = ".reasons.jsonl"
# Set by saasquatch_webhook on every webhook it publishes, kept on forward's dead letters.
WEBHOOK_ATTRIBUTE = "webhookType"


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
        self._subscriber = subscriber or subscriber_client()
        self._held: list[str] = []

    def pull(self, limit: int | None = None) -> Generator[Any, None, None]:
        """Each dead letter once, until `limit` or nothing new arrives. A message seen before
        (it came back after its ack deadline) is held, not yielded again, and a pull of only
        such messages is not "nothing": the ones never pulled may be queued behind them. The
        pulls end once every message seen has come back and more, with nothing new."""
        seen: set[str] = set()
        empty = 0  # pulls in a row that brought nothing
        repeated = 0  # messages handed out again since the last new one
        while (limit is None or len(seen) < limit) and empty < EMPTY_PULLS:
            if repeated > len(seen):
                return
            wanted = BATCH if limit is None else min(BATCH, limit - len(seen))
            try:
                response = self._subscriber.pull(
                    subscription=self.path,
                    max_messages=wanted,
                    timeout=PULL_SECONDS,
                    retry=PULL_RETRY,
                )
                received = list(response.received_messages)
            except exceptions.DeadlineExceeded:  # nothing came within PULL_SECONDS
                received = []
            new = [r for r in received if r.message.message_id not in seen]
            self._held.extend(r.ack_id for r in received if r.message.message_id in seen)
            if new:
                empty = repeated = 0
            elif received:
                repeated += len(received)
            else:
                empty += 1
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


# What to do about a reason, by its remedy: what `list` prints under each group, and what a
# refused replay says instead.
ADVICE: dict[Remedy, str] = {
    Remedy.REPLAY: "fix the cause, then `dead-letters replay --reason {reason}`",
    Remedy.CORRECT: (
        "the data's own fault: `dead-letters export --reason {reason} FILE`, correct FILE, "
        "`backfill FILE`, then `dead-letters discard --exported FILE`"
    ),
    Remedy.DISCARD: "nothing here to correct: `dead-letters discard --reason {reason}`",
    Remedy.EITHER: (
        "the detail says which: a setting (fix it, then `dead-letters replay --reason {reason}`) "
        "or the data (`dead-letters export --reason {reason} FILE`, correct, backfill, discard)"
    ),
}


def advice(reason: str) -> str:
    return ADVICE[remedy_of(reason)].format(reason=reason)


@dataclass
class ReplaySummary:
    """What one replay did; every dead letter it looked at is in exactly one count."""

    replayed: int = 0
    in_ledger: int = 0  # acknowledged without a republish: SaaSquatch has them already
    other_reason: int = 0  # left: dead-lettered for another reason than --reason
    data_fault: Counter[str] = field(default_factory=Counter)  # left: a replay cannot fix them
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
        if self.data_fault:
            counts = ", ".join(f"{reason} {n}" for reason, n in self.data_fault.most_common())
            out.append(
                f"left {plural(self.data_fault.total(), 'message')} dead-lettered for their own "
                f"data ({counts}): a replay would dead-letter them again; correct and send them "
                "with `dead-letters export --reason REASON FILE` and `backfill FILE`"
            )
        left = [
            (self.other_reason, "dead-lettered for another reason"),
            (
                self.newer,
                "dead-lettered after this replay began (any replayed here that failed again "
                "among them): `dead-letters list` says why; replay them once that is fixed",
            ),
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
    letter, and replaying those too would never end (or hammer SaaSquatch with a wrong key).
    A dead letter of a reason no setting can fix (its data's own) is never replayed."""
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
            why = reason_of(attributes)
            if reason is not None and why != reason:
                dead_letters.hold(received.ack_id)
                summary.other_reason += 1
                continue
            if not remedy_of(why).replayable:
                dead_letters.hold(received.ack_id)
                summary.data_fault[why] += 1
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


# --- export: the data as backfill reads it, why beside it ----------------------------------------


def sidecar_of(path: Path) -> Path:
    """Where an export to `path` writes why each line was dead-lettered."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def export_line(data: bytes) -> bytes | None:
    """The message as one line of JSON Lines (as published when it is one line already), or
    None when the data is not a JSON object: no line backfill reads could hold it."""
    try:
        message = strict_json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    if data[:1] == b"{" and b"\n" not in data and b"\r" not in data:
        return data
    return json.dumps(message).encode()


@dataclass
class ExportSummary:
    """What one export wrote; every dead letter it looked at is in exactly one count."""

    path: Path
    exported: int = 0
    not_json: int = 0  # left out: the data is not a JSON object
    webhooks: int = 0  # left out: forward's dead letters are webhooks, not Segment messages
    other_reason: int = 0
    newer: int = 0  # dead-lettered after the export began

    def lines(self) -> list[str]:
        if self.exported:
            out = [
                f"exported {plural(self.exported, 'message')} to {self.path} (why and when each "
                f"was dead-lettered: {sidecar_of(self.path)})"
            ]
        else:
            out = ["exported 0 messages: no file written"]
        left = [
            (
                self.not_json,
                "whose data is not a JSON object: no line for backfill can hold it "
                "(`dead-letters list` shows a sample)",
            ),
            (
                self.webhooks,
                f"that {'is a webhook' if self.webhooks == 1 else 'are webhooks'} (forward's dead "
                "letters, not Segment messages: backfill would send them the wrong way); replay "
                "them onto the webhook topic or discard them",
            ),
            (self.other_reason, "dead-lettered for another reason"),
            (self.newer, "dead-lettered after this export began"),
        ]
        out += [f"left out {plural(count, 'message')} {why}" for count, why in left if count]
        out.append("nothing was taken: every dead letter is still dead-lettered")
        if self.exported:
            out.append(
                f"next: correct {self.path}, send it with `backfill {self.path}`, then remove "
                f"the originals with `dead-letters discard --exported {self.path}`"
            )
        return out


def export(dead_letters: DeadLetters, reason: str, path: Path) -> ExportSummary:
    """Write the data of every dead letter of `reason` to `path`, one message per line, and
    beside it (`sidecar_of(path)`, line for line) its reason, detail, ids and time. Nothing is
    acknowledged. Only what was dead-lettered before the export began is written, so it ends;
    files are written whole or not at all."""
    began = datetime.now(UTC)
    summary = ExportSummary(path)
    sidecar = sidecar_of(path)
    partial = (path.with_name(path.name + ".partial"), sidecar.with_name(sidecar.name + ".partial"))
    messages = dead_letters.pull()
    try:
        with partial[0].open("wb") as lines, partial[1].open("w", encoding="utf-8") as beside:
            for received in messages:
                dead_letters.hold(received.ack_id)
                message = received.message
                attributes = dict(message.attributes)
                line = None
                if message.publish_time >= began:
                    summary.newer += 1
                elif reason_of(attributes) != reason:
                    summary.other_reason += 1
                elif WEBHOOK_ATTRIBUTE in attributes:
                    summary.webhooks += 1
                elif (line := export_line(bytes(message.data))) is None:
                    summary.not_json += 1
                if line is None:
                    continue
                summary.exported += 1
                lines.write(line + b"\n")
                row = _why(summary.exported, message, attributes, line)
                beside.write(json.dumps(row, ensure_ascii=False) + "\n")
        if summary.exported:
            partial[0].replace(path)
            partial[1].replace(sidecar)
    finally:
        messages.close()
        dead_letters.release_held()
        for left in partial:
            left.unlink(missing_ok=True)
    return summary


def _why(number: int, message: Any, attributes: Mapping[str, str], line: bytes) -> dict[str, Any]:
    """One line of the sidecar: which line of FILE, why it was dead-lettered, and what finds it
    again: `sha256` (of the data as dead-lettered) with `reason` is what `discard --exported`
    removes. `deadLetterId` (the Pub/Sub id) is for reading only: a republish (make run's
    restore, a replay) gives the same dead letter a new one, and the emulator counts from 1."""
    segment_id = json.loads(line).get("messageId")
    when = attributes.get("deadLetteredAt") or message.publish_time.isoformat()
    return {
        "line": number,
        "reason": reason_of(attributes),
        "detail": attributes.get("detail", ""),
        "messageId": segment_id if isinstance(segment_id, str) else attributes.get("messageId"),
        "sha256": data_digest(bytes(message.data)),
        "deadLetterId": message.message_id,
        "deadLetteredAt": when,
    }


def data_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A dead letter as export knows it again: the SHA-256 of its data, and its reason.
Identity = tuple[str, str]


def identity(message: Any, attributes: Mapping[str, str]) -> Identity:
    return data_digest(bytes(message.data)), reason_of(attributes)


def exported_letters(path: Path) -> Counter[Identity]:
    """The dead letters an export wrote to `path` (FILE or its sidecar), each with how many of
    it (two dead letters of the same data and reason are the same message twice). ValueError,
    in one line, when there is no sidecar to read."""
    sidecar = path if path.name.endswith(SIDECAR_SUFFIX) else sidecar_of(path)
    try:
        text = sidecar.read_text(encoding="utf-8")
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return Counter((str(row["sha256"]), str(row["reason"])) for row in rows)
    except FileNotFoundError:
        raise ValueError(f"{sidecar} not found: --exported takes the FILE export wrote") from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"{sidecar} is not what export writes (a sha256 and a reason per line; an export "
            "made before sha256 was written: export again to a new FILE)"
        ) from None


# --- discard: acknowledge what is asked, and nothing else ----------------------------------------


@dataclass(frozen=True)
class Chosen:
    """The dead letters a discard removes: dead-lettered before `before`, of `reason` (any when
    None) and, with `exported`, only those an export wrote (by data and reason, as many of
    each as it wrote)."""

    before: datetime
    reason: str | None = None
    exported: Counter[Identity] | None = None

    def why_left(
        self, message: Any, attributes: Mapping[str, str], taken: Counter[Identity]
    ) -> str:
        """Why a dead letter stays ("other_reason", ...), or "" when it is chosen; `taken`
        counts what this discard chose so far, and is counted on."""
        if message.publish_time >= self.before:
            return "newer"
        if self.reason is not None and reason_of(attributes) != self.reason:
            return "other_reason"
        if self.exported is not None:
            known = identity(message, attributes)
            if taken[known] >= self.exported[known]:
                return "not_exported"
            taken[known] += 1
        return ""


LEFT_BY_DISCARD = {
    "other_reason": "dead-lettered for another reason",
    "not_exported": "that export did not write",
    "newer": "dead-lettered after this discard began",
}


@dataclass
class DiscardSummary:
    discarded: int = 0  # acknowledged (when counting: would be)
    left: Counter[str] = field(default_factory=Counter)
    missing: int = 0  # exported, and no longer dead-lettered

    def lines(self) -> list[str]:
        out = [f"discarded {plural(self.discarded, 'message')}"]
        out += [
            f"left {plural(self.left[why], 'message')} {text}"
            for why, text in LEFT_BY_DISCARD.items()
            if self.left[why]
        ]
        if self.missing:
            out.append(
                f"{plural(self.missing, 'exported message')} no longer dead-lettered (replayed, "
                "discarded or past the subscription's retention)"
            )
        return out


def discard(dead_letters: DeadLetters, chosen: Chosen, act: bool = True) -> DiscardSummary:
    """Acknowledge every chosen dead letter (with `act` false, only count them) and hand every
    other one straight back."""
    summary = DiscardSummary()
    taken: Counter[Identity] = Counter()
    messages = dead_letters.pull()
    try:
        for received in messages:
            why = chosen.why_left(received.message, dict(received.message.attributes), taken)
            if why or not act:
                dead_letters.hold(received.ack_id)
            if why:
                summary.left[why] += 1
                continue
            if act:
                dead_letters.ack(received.ack_id)
            summary.discarded += 1
    finally:
        messages.close()
        dead_letters.release_held()
    if chosen.exported is not None:
        summary.missing = (chosen.exported - taken).total()
    return summary


def terminal_prompt() -> Callable[[str], str] | None:
    """How to ask whoever is at the terminal; None without one (a script, a pipe, CI)."""
    if not sys.stdin.isatty():
        return None

    def ask(question: str) -> str:
        try:
            return input(question)
        except EOFError:
            return ""

    return ask


def _discard(
    dead_letters: DeadLetters,
    chosen: Chosen,
    what: str,
    ask: Callable[[str], str] | None,
) -> int:
    if ask is not None:
        counted = discard(dead_letters, chosen, act=False)
        if not counted.discarded:
            print("\n".join(counted.lines()))
            return 0
        question = f"discard {plural(counted.discarded, 'dead letter')} ({what})? [y/N] "
        if ask(question).strip().lower() not in {"y", "yes"}:
            print("nothing discarded")
            return 1
    print("\n".join(discard(dead_letters, chosen).lines()))
    return 0


# --- the command line ----------------------------------------------------------------------------


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


def _add_reason(parser: argparse.ArgumentParser, only: str, required: bool = False) -> None:
    parser.add_argument(
        "--reason",
        default=None,
        required=required,
        choices=[str(reason) for reason in reasons_for(Outcome.DEAD_LETTERED)],
        metavar="REASON",
        help=f"only messages dead-lettered for this reason{only}, one of: %(choices)s",
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools dead-letters",
        description="List, replay, export or discard dead-lettered messages.",
    )
    _add_shared(parser, after_command=False)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="counts and a sample per reason (changes nothing)")
    _add_shared(listing, after_command=True)
    listing.add_argument("--limit", type=int, default=10000, help="look at this many at most")
    listing.add_argument("--json", action="store_true", help="print JSON")
    again = commands.add_parser("replay", help="republish to the raw-events topic")
    _add_shared(again, after_command=True)
    _add_reason(again, " (not one of the data's own fault: export those)")
    again.add_argument("--limit", type=int, default=None, help="replay this many at most")
    add_raw_events_arguments(again, "ordering keys as ingest sets them (default: PUBSUB_ORDERING)")
    again.add_argument("--rate", type=float, default=0.0, help="messages per second (0: no limit)")
    add_ledger_arguments(again)
    out = commands.add_parser(
        "export", help="their data as JSON Lines for backfill, why beside it (changes nothing)"
    )
    _add_shared(out, after_command=True)
    _add_reason(out, "", required=True)
    out.add_argument(
        "file", type=Path, metavar="FILE", help=f"a new file; FILE{SIDECAR_SUFFIX} goes beside it"
    )
    gone = commands.add_parser("discard", help="remove them (asks first; --yes does not)")
    _add_shared(gone, after_command=True)
    _add_reason(gone, "")
    gone.add_argument(
        "--exported",
        type=Path,
        default=None,
        metavar="FILE",
        help="only the dead letters export wrote to FILE (none that came later)",
    )
    gone.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    return parser


def _refusal(args: argparse.Namespace, ask: Callable[[str], str] | None) -> str:
    """Why the command cannot run as given, in one line ("" when it can): checked before
    Pub/Sub is touched."""
    if args.command == "replay" and args.reason and not remedy_of(args.reason).replayable:
        return f"a replay of {args.reason} would only dead-letter it again; {advice(args.reason)}"
    if args.command == "export":
        for path in (args.file, sidecar_of(args.file)):
            if path.exists():
                return f"{path} exists: export writes new files (give another FILE)"
    if args.command == "discard":
        if args.reason is None and args.exported is None:
            return "discard needs --reason REASON, --exported FILE, or both"
        if ask is None and not args.yes:
            return "discard asks before it removes anything, and there is no terminal: add --yes"
    return ""


def main(
    argv: Sequence[str] | None = None,
    *,
    subscriber: Any = None,
    prompt: Callable[[], Callable[[str], str] | None] = terminal_prompt,
) -> int:
    """`subscriber` and `prompt` stand in for Pub/Sub and the terminal in tests."""
    args = parser().parse_args(argv)
    if not args.project:
        print("dead-letters: --project (or GOOGLE_CLOUD_PROJECT) is required", file=sys.stderr)
        return 2
    ask = prompt() if args.command == "discard" and not args.yes else None
    refusal = _refusal(args, ask)
    exported: Counter[Identity] | None = None
    if not refusal and args.command == "discard" and args.exported is not None:
        try:
            exported = exported_letters(args.exported)
        except ValueError as error:
            refusal = str(error)
    if refusal:
        print(f"dead-letters: {refusal}", file=sys.stderr)
        return 2
    problem = "" if subscriber is not None else preflight()
    if problem:
        print(f"dead-letters: {problem}", file=sys.stderr)
        return 1
    dead_letters = DeadLetters(args.project, args.subscription, subscriber)
    try:
        if args.command == "list":
            groups = list_dead_letters(dead_letters, args.limit)
            _print_groups(groups, args.json)
            return 0
        if args.command == "export":
            print("\n".join(export(dead_letters, args.reason, args.file).lines()))
            return 0
        if args.command == "discard":
            chosen = Chosen(datetime.now(UTC), args.reason, exported)
            return _discard(dead_letters, chosen, _chosen_text(args), ask)
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


def _chosen_text(args: argparse.Namespace) -> str:
    parts = [f"reason {args.reason}"] if args.reason else []
    if args.exported is not None:
        parts.append(f"exported to {args.exported}")
    return ", ".join(parts)


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
        print(f"         to do:  {advice(reason)}")


if __name__ == "__main__":
    sys.exit(main())
