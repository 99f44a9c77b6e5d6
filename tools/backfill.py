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
import json
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from ingestion.raw_events import encode_raw_event
from publisher import Publisher
from tools import add_project_argument, add_raw_events_arguments
from tools.segment_files import Item, SegmentFile

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_LISTED = 20  # line numbers shown in the summary; the count covers the rest
PUBLISH_TIMEOUT = 60.0  # per message, retries included
SETTLE_SECONDS = PUBLISH_TIMEOUT + 5


@dataclass
class Summary:
    published: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    confirmed_through: int = 0  # every item up to here is published, skipped or reported failed

    def lines(self, path: Path) -> list[str]:
        out = [f"{path}: published {self.published} messages"]
        if self.invalid:
            shown = ", ".join(str(number) for number, _ in self.invalid[:MAX_LISTED])
            more = (
                f" and {len(self.invalid) - MAX_LISTED} more"
                if len(self.invalid) > MAX_LISTED
                else ""
            )
            out.append(f"  skipped {len(self.invalid)} invalid: lines {shown}{more}")
            out.extend(f"    line {number}: {reason}" for number, reason in self.invalid[:5])
        if self.failed:
            shown = ", ".join(str(number) for number in self.failed[:MAX_LISTED])
            out.append(f"  FAILED to publish {len(self.failed)}: lines {shown}")
        return out


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
    """Publishes items in file order with a bounded window of publishes in flight."""

    def __init__(self, publisher: Publisher, rate: float = 0.0, window: int = 2000) -> None:
        self._publisher = publisher
        self._pacer = Pacer(rate)
        self._window = window
        self._in_flight: deque[tuple[int, Sent]] = deque()
        self._count = 0

    def run(self, items: Iterable[Item], summary: Summary, on_item: Callable[[], None]) -> None:
        """Publish every item; on KeyboardInterrupt, stop reading but settle what is in flight."""
        try:
            for item in items:
                if item.error is not None:
                    summary.invalid.append((item.number, item.error))
                self._in_flight.append((item.number, self._publish(item)))
                self._settle(summary, keep=self._window)
                on_item()
        finally:
            self._settle(summary, keep=0)

    def _publish(self, item: Item) -> Sent:
        sent: Sent = []
        for message in item.messages:
            self._pacer.wait()
            outgoing = encode_raw_event(message, self._publisher.ordering)
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
                self._publisher.resume(failed)  # the user's next messages may go again
            summary.published += len(sent) - len(failed)
            summary.confirmed_through = number


def _dry_run(items: Iterable[Item], summary: Summary, on_item: Callable[[], None]) -> None:
    """The mapped SaaSquatch calls of every message, one JSON line each, mapped with the
    options in the environment (the same variables deliver reads)."""
    from delivery.settings import DeliverSettings
    from mapper import map_message

    options = DeliverSettings.from_env().mapping_options
    now = datetime.now(UTC)
    for item in items:
        if item.error is not None:
            summary.invalid.append((item.number, item.error))
        for message in item.messages:
            plan = map_message(message, options, now=now).to_json()
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
    publisher = Publisher(args.project, args.topic, args.ordering, PUBLISH_TIMEOUT)
    code = 0
    for index, path in enumerate(args.files):
        resume_from = args.resume_from if index == 0 else 1
        summary = Summary(confirmed_through=resume_from - 1)
        try:
            _one_file(path, resume_from, summary, args, publisher)
        except KeyboardInterrupt:
            _report(path, summary)
            rest = " ".join(str(later) for later in args.files[index + 1 :])
            print(
                f"interrupted: everything up to line {summary.confirmed_through} of {path} is "
                f"done. Continue with:\n  python -m tools backfill --resume-from "
                f"{summary.confirmed_through + 1} {path} {rest}".rstrip(),
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        _report(path, summary)
        if summary.failed:
            code = EXIT_FAILED
    return code


def _one_file(
    path: Path,
    resume_from: int,
    summary: Summary,
    args: argparse.Namespace,
    publisher: Publisher,
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
            Backfill(publisher, args.rate, args.window).run(items, summary, advance)


def _report(path: Path, summary: Summary) -> None:
    for line in summary.lines(path):
        print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
