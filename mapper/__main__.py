"""`python -m mapper < messages.jsonl`: print the SaaSquatch calls each Segment message becomes.

Reads one JSON document (a message, an array or a batch envelope) or JSON Lines from stdin and
prints one JSON object per message. Nothing is sent anywhere.

Each plan says which account it uses and why (`account.from`: `trait`, `user_id` or
`remembered`). Like deliver, the preview remembers the account a message names for its user and
uses it for a later message that names none (the lines in order, each taken as delivered; the
newest message by its own time wins; a delete forgets); `--remembered-account USER=ACCOUNT`
starts it with what deliver's memory holds (older than any line), `--no-remember-accounts` shows
the hosted rule (REMEMBER_ACCOUNTS=false).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from pydantic import ValidationError

from common.documents import documents

from .accounts import AccountsInMemory, plan_remembering
from .dialects import BodyError, messages_from_body
from .options import (
    InvalidDataStrategy,
    MappingOptions,
    TrackUpsertStrategy,
    parse_track_upsert_strategy,
)
from .segments import InvalidSegmentsStrategy
from .transformers import DEFAULT_TIMEOUT_MS, Transformer


def _options(args: argparse.Namespace) -> MappingOptions:
    timeout = args.transformer_timeout_ms
    if timeout <= 0:
        raise ValueError("--transformer-timeout-ms must be more than 0")

    return MappingOptions(
        track_upsert_strategy=parse_track_upsert_strategy(
            args.track_upsert_strategy, "--track-upsert-strategy", timeout
        ),
        identify_segments_transformer=Transformer.of_setting(
            "--identify-segments-transformer", args.identify_segments_transformer, timeout
        ),
        track_upsert_transformer=Transformer.of_setting(
            "--track-upsert-transformer", args.track_upsert_transformer, timeout
        ),
        invalid_segments_strategy=args.invalid_segments_strategy,
        invalid_data_strategy=args.invalid_data_strategy,
        remap_order_completed=not args.no_remap_order_completed,
        event_key_map=json.loads(args.event_key_map),
        ignore_identify=args.ignore_identify,
        honor_delete=args.honor_delete,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mapper", description=__doc__)
    parser.add_argument(
        "--track-upsert-strategy",
        default=TrackUpsertStrategy.MISSING_USER.value,
        help="never, missing_user, always, or a JSONata expression giving one per event",
    )
    parser.add_argument("--track-upsert-transformer", help="JSONata: track -> upsert fields")
    parser.add_argument("--identify-segments-transformer", help="JSONata: identify -> segments")
    parser.add_argument(
        "--invalid-segments-strategy",
        choices=[s.value for s in InvalidSegmentsStrategy],
        default=InvalidSegmentsStrategy.DISCARD_INVALID.value,
    )
    parser.add_argument("--transformer-timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS)
    parser.add_argument(
        "--invalid-data-strategy",
        choices=[s.value for s in InvalidDataStrategy],
        default=InvalidDataStrategy.STRINGIFY_FIELD.value,
    )
    parser.add_argument("--no-remap-order-completed", action="store_true")
    parser.add_argument("--event-key-map", default="{}", help="JSON object: event name -> key")
    parser.add_argument("--ignore-identify", action="store_true")
    parser.add_argument("--honor-delete", action="store_true")
    parser.add_argument("--now", help="ISO 8601 time used for the timestamp window")
    parser.add_argument(
        "--remembered-account",
        action="append",
        default=[],
        metavar="USER=ACCOUNT",
        help="an account deliver's memory holds for a user (repeatable)",
    )
    parser.add_argument(
        "--no-remember-accounts",
        action="store_true",
        help="the hosted rule: no account trait, the user id (REMEMBER_ACCOUNTS=false)",
    )
    return parser


def _remembered(pairs: list[str]) -> AccountsInMemory:
    memory = AccountsInMemory()
    for pair in pairs:
        user, equals, account = pair.partition("=")
        if not equals or not user or not account:
            raise ValueError(f"--remembered-account wants USER=ACCOUNT, not {pair!r}")
        memory.given(user, account)
    return memory


def run(stdin: TextIO, stdout: TextIO, stderr: TextIO, argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        options = _options(args)
        memory = None if args.no_remember_accounts else _remembered(args.remembered_account)
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    except (ValueError, ValidationError) as error:
        stderr.write(f"error: bad option: {error}\n".replace("\n", " ").rstrip() + "\n")
        return 2
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    failures = 0
    for line, document, problem in documents(stdin.read()):
        if problem is None:
            try:
                messages = messages_from_body(document)
            except BodyError as error:
                problem = str(error)
        if problem is not None:
            failures += 1
            stderr.write(f"line {line}: {problem}\n")
            continue
        for message in messages:
            plan = plan_remembering(message, options, now, memory)
            stdout.write(json.dumps({"line": line, **plan.to_json()}, ensure_ascii=False) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run(sys.stdin, sys.stdout, sys.stderr, sys.argv[1:]))
