"""Publish Segment history (JSON Lines or a JSON array, gzip or not) to the raw-events topic,
exactly as ingest would: same data, attributes and ordering keys.

    python -m tools backfill export-2026-11-*.jsonl.gz --rate 2000
    python -m tools backfill --dry-run users.jsonl | head     # the SaaSquatch calls instead

Memory stays flat: items are read one at a time and at most `--window` publishes are in flight.
Ctrl-C (or SIGTERM) stops reading, waits for the publishes in flight, and prints the
`--resume-from` command that continues exactly after the last item confirmed. Re-publishing an
item twice is harmless: deliver's idempotency key makes SaaSquatch count it once.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from publisher import Origin, OutgoingMessage, Publisher
from subscription.ledger import LedgerUnavailable
from subscription.raw_events import encode_raw_event
from tools import add_project_argument, add_raw_events_arguments, cause, plural, preflight
from tools.ledger import LedgerCheck, add_ledger_arguments, ledger_check
from tools.segment_files import Item, SegmentFile

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_LISTED = 20  # line numbers shown in the summary; the count covers the rest
LEDGER_BATCH = 200  # items looked up in the delivery ledger at once
PUBLISH_TIMEOUT = 60.0  # per message, retries included
SETTLE_SECONDS = PUBLISH_TIMEOUT + 5


@dataclass
class Summary:
    published: int = 0
    in_ledger: int = 0  # not published: the delivery ledger has them
    invalid: list[tuple[int, str]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    failure: str = ""  # the first failed publish's cause
    confirmed_through: int = 0  # every item up to here is published, skipped or reported failed
    dry_run: bool = False

    def lines(self, path: Path) -> list[str]:
        if self.dry_run:
            out = [
                f"{path}: mapped {plural(self.published, 'message')} (dry run: nothing published)"
            ]
        else:
            out = [f"{path}: published {plural(self.published, 'message')}"]
        if self.in_ledger:
            out.append(
                f"  skipped {plural(self.in_ledger, 'message')} the delivery ledger has "
                "(SaaSquatch accepted them before)"
            )
        if self.invalid:
            out.append(
                f"  skipped {plural(len(self.invalid), 'invalid line')}: {_lines(self.invalid)}"
            )
            out.extend(f"    line {number}: {reason}" for number, reason in self.invalid[:5])
        if self.failed:
            failed = [(number, "") for number in self.failed]
            out.append(
                f"  FAILED to publish {plural(len(self.failed), 'line')}: {_lines(failed)}: "
                f"{self.failure}"
            )
        return out


def _lines(numbered: Sequence[tuple[int, str]]) -> str:
    """`line 4`, `lines 1, 2 and 5`, `lines 1, 2, ... and 17 more`."""
    shown = [str(number) for number, _ in numbered[:MAX_LISTED]]
    more = len(numbered) - len(shown)
    if len(shown) == 1 and not more:
        return f"line {shown[0]}"
    listed = ", ".join(shown[:-1]) + (f", {shown[-1]}" if more else f" and {shown[-1]}")
    return f"lines {listed}" + (f" and {more} more" if more else "")


class Pacer:
    """At most `rate` messages per second (no limit when rate is 0)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._next = clock()

    def wait(self) -> None:
        if not self._interval:
            return
        delay = self._next - self._clock()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next, self._clock()) + self._interval


Sent = list[tuple[Future, str]]  # each publish of one item, with its ordering key


class Backfill:
    """Publishes items in file order with a bounded window of publishes in flight; with a
    ledger, what it has is left out (looked up `LEDGER_BATCH` items at a time)."""

    def __init__(
        self,
        publisher: Submitting,
        rate: float = 0.0,
        window: int = 2000,
        ledger: LedgerCheck | None = None,
    ) -> None:
        self._publisher = publisher
        self._pacer = Pacer(rate)
        self._window = window
        self._ledger = ledger
        self._in_flight: deque[tuple[int, Sent]] = deque()
        self._count = 0

    def run(self, items: Iterable[Item], summary: Summary, on_item: Callable[[], None]) -> None:
        """Publish every item; on KeyboardInterrupt, stop reading but settle what is in flight."""
        try:
            for batch in _batches(items, LEDGER_BATCH):
                known = self._recorded(batch)
                for item in batch:
                    if item.error is not None:
                        summary.invalid.append((item.number, item.error))
                    fresh = [message for message in item.messages if id(message) not in known]
                    summary.in_ledger += len(item.messages) - len(fresh)
                    self._in_flight.append((item.number, self._publish(fresh)))
                    self._settle(summary, keep=self._window)
                    on_item()
        finally:
            self._settle(summary, keep=0)

    def _recorded(self, batch: Sequence[Item]) -> set[int]:
        """The `id()` of each message of the batch the ledger has."""
        if self._ledger is None:
            return set()
        messages = [message for item in batch for message in item.messages]
        return {
            id(message)
            for message, found in zip(messages, self._ledger.recorded(messages), strict=True)
            if found
        }

    def _publish(self, messages: Sequence[dict[str, Any]]) -> Sent:
        sent: Sent = []
        for message in messages:
            self._pacer.wait()
            outgoing = encode_raw_event(message, self._publisher.ordering, Origin.BACKFILL)
            sent.append((self._publisher.submit(outgoing), outgoing.ordering_key))
        self._count += len(sent)
        return sent

    def _settle(self, summary: Summary, keep: int) -> None:
        """Count finished items, oldest first; wait while more than `keep` are in flight."""
        while self._in_flight:
            number, sent = self._in_flight[0]
            pending = [future for future, _ in sent if not future.done()]
            if pending:
                if self._count <= keep:
                    return
                wait_all(pending, timeout=SETTLE_SECONDS)
            self._in_flight.popleft()
            self._count -= len(sent)
            failed = [key for future, key in sent if not future.done() or future.exception()]
            if failed:
                summary.failed.append(number)
                summary.failure = summary.failure or _failure(sent)
                self._publisher.resume(failed)  # the user's next messages may go again
            summary.published += len(sent) - len(failed)
            summary.confirmed_through = number


def _batches(items: Iterable[Item], size: int) -> Iterable[list[Item]]:
    """`items` in lists of `size` (`itertools.batched` is Python 3.12's)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _failure(sent: Sent) -> str:
    for future, _ in sent:
        if not future.done():
            return f"not confirmed within {PUBLISH_TIMEOUT:.0f} s"
        error = future.exception()
        if error is not None:
            return cause(error)
    return ""


def _dry_run(items: Iterable[Item], summary: Summary, on_item: Callable[[], None]) -> None:
    """The mapped SaaSquatch calls of every message, one JSON line each, mapped with the
    options in the environment (the same variables deliver reads)."""
    from mapper.accounts import AccountsInMemory, plan_remembering
    from subscription.deliver_settings import DeliverSettings

    settings = DeliverSettings.from_env()
    options = settings.mapping_options
    # Like deliver, the account a message names is used for the user's later messages.
    memory = AccountsInMemory() if settings.remembers_accounts else None
    now = datetime.now(UTC)
    for item in items:
        if item.error is not None:
            summary.invalid.append((item.number, item.error))
        for message in item.messages:
            plan = plan_remembering(message, options, now, memory).to_json()
            sys.stdout.write(json.dumps({"line": item.number, **plan}, ensure_ascii=False) + "\n")
            summary.published += 1
        summary.confirmed_through = item.number
        on_item()


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools backfill",
        description="Publish Segment messages from files to the raw-events topic, as ingest does.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="JSON Lines or JSON array, .gz or not")
    add_project_argument(parser)
    add_raw_events_arguments(parser, "ordering keys as ingest sets them (default: PUBSUB_ORDERING)")
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second (0: no limit)")
    parser.add_argument(
        "--resume-from", type=int, default=1, metavar="LINE", help="start the first file here"
    )
    parser.add_argument("--window", type=int, default=2000, help="publishes in flight at most")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the SaaSquatch calls instead of publishing"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ledger_arguments(parser)
    return parser


class Submitting(Protocol):
    """backfill's port to the raw-events topic (`Publisher` in production): `submit` hands one
    message over and returns its future; `resume` un-pauses ordering keys after a failure."""

    @property
    def ordering(self) -> bool: ...

    def submit(self, message: OutgoingMessage) -> Future: ...

    def resume(self, keys: Iterable[str]) -> None: ...


def resume_command(argv: Sequence[str], resume_from: int, files: Sequence[Path]) -> str:
    """The command that continues an interrupted backfill at `resume_from` of `files[0]`: this
    interpreter (the project's `.venv/bin/python` from the project folder, so the packages are
    there) and every option given, however it was spelled (`--rate=100`, `--rat 100`)."""
    given = parser()
    for action in given._actions:  # parsed again with no defaults: only what was given is set
        action.default = argparse.SUPPRESS
    chosen, _ = given.parse_known_args(list(argv))
    words = [_interpreter(), "-m", "tools", "backfill"]
    for action in given._actions:
        if not action.option_strings or action.dest in ("help", "resume_from"):
            continue
        if not hasattr(chosen, action.dest):
            continue
        value = getattr(chosen, action.dest)
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else f"--no-{flag[2:]}")
        elif action.nargs == 0:  # store_true
            words.append(flag)
        elif isinstance(value, float) and value.is_integer():
            words += [flag, str(int(value))]  # --rate 100, as typed
        else:
            words += [flag, str(value)]
    words += ["--resume-from", str(resume_from)]
    names = [str(path) for path in files]
    if any(name.startswith("-") for name in names):
        words.append("--")  # `-dash.jsonl` is a file, not an option
    return shlex.join([*words, *names])


def _interpreter() -> str:
    """This Python, relative to the current folder when it lies inside it."""
    here = Path.cwd()
    python = Path(sys.executable)
    try:
        return str(Path(".") / python.relative_to(here)) if python.is_absolute() else str(python)
    except ValueError:
        return str(python)


def main(argv: Sequence[str] | None = None, *, topic: Submitting | None = None) -> int:
    """The command; `topic` replaces the Pub/Sub publisher (the tests' in-memory topic), and
    with it the check that Pub/Sub can be reached."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        print(f"backfill: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    if not args.dry_run and not args.project:
        print("backfill: --project (or GOOGLE_CLOUD_PROJECT) is required", file=sys.stderr)
        return EXIT_USAGE
    if args.resume_from < 1 or args.window < 1 or args.rate < 0:
        print("backfill: --resume-from and --window must be >= 1, --rate >= 0", file=sys.stderr)
        return EXIT_USAGE
    ledger: LedgerCheck | None = None
    if not args.dry_run:
        problem = preflight() if topic is None else ""
        if problem:
            print(f"backfill: {problem}", file=sys.stderr)
            return EXIT_FAILED
        ledger, note = ledger_check(args)
        if note:
            print(note, file=sys.stderr)
    publisher = topic or Publisher(args.project, args.topic, args.ordering, PUBLISH_TIMEOUT)
    code = 0
    for index, path in enumerate(args.files):
        resume_from = args.resume_from if index == 0 else 1
        summary = Summary(confirmed_through=resume_from - 1, dry_run=args.dry_run)
        try:
            _one_file(path, resume_from, summary, args, publisher, ledger)
        except KeyboardInterrupt:
            _report(path, summary)
            again = resume_command(argv, summary.confirmed_through + 1, args.files[index:])
            print(
                f"interrupted: everything up to line {summary.confirmed_through} of {path} is "
                f"done. Continue with:\n  {again}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        except LedgerUnavailable as error:
            _report(path, summary)
            print(f"backfill: stopped after line {summary.confirmed_through}: {cause(error)}")
            return EXIT_FAILED
        _report(path, summary)
        if summary.failed:
            code = EXIT_FAILED
    return code


def _one_file(
    path: Path,
    resume_from: int,
    summary: Summary,
    args: argparse.Namespace,
    publisher: Submitting,
    ledger: LedgerCheck | None,
) -> None:
    source = SegmentFile(path)
    with tqdm(
        total=source.size,
        unit="B",
        unit_scale=True,
        desc=path.name,
        disable=args.no_progress,
        file=sys.stderr,
    ) as bar:

        def advance() -> None:
            bar.update(source.position() - bar.n)
            bar.set_postfix(messages=summary.published, refresh=False)

        items = source.items(resume_from)
        if args.dry_run:
            _dry_run(items, summary, advance)
        else:
            Backfill(publisher, args.rate, args.window, ledger).run(items, summary, advance)
        advance()  # the last publishes were counted after the last item was read


def _report(path: Path, summary: Summary) -> None:
    for line in summary.lines(path):
        print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
