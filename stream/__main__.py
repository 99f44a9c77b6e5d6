"""`python -m stream < webhooks.jsonl`: print the Segment calls each SaaSquatch webhook becomes.

Reads one webhook (or an array of them) or JSON Lines from stdin and prints one JSON object per
webhook, as forward maps it (`calls` is the batch; forward then leaves optional fields out of a
call over Segment's 32 KB, which the preview does not). Nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from common.documents import documents
from common.settings import csv

from . import STREAMS, StreamOptions, check_event_names, map_webhook


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stream", description=__doc__)
    parser.add_argument(
        "--types",
        default="",
        help="comma-separated webhook types to forward, as FORWARD_WEBHOOK_TYPES (default: all)",
    )
    parser.add_argument(
        "--event-names",
        default="{}",
        help="JSON object, webhook type -> Segment event name, as FORWARD_EVENT_NAMES "
        '(e.g. \'{"referral.started": "Referral Started"}\')',
    )
    return parser


def run(stdin: TextIO, stdout: TextIO, stderr: TextIO, argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    types = csv(args.types)
    unknown = [kind for kind in types if kind not in STREAMS]
    if unknown:
        stderr.write(f"error: bad option: --types: {', '.join(unknown)} has no Segment call\n")
        return 2
    try:
        names = check_event_names(json.loads(args.event_names))
    except (ValueError, RecursionError) as error:
        said = str(error) if isinstance(error, ValueError) else "nested too deeply to read"
        stderr.write(f"error: bad option: --event-names: {said}\n")
        return 2
    options = StreamOptions(types=frozenset(types) if types else None, event_names=names)
    failures = 0
    for line, document, problem in documents(stdin.read()):
        if problem is not None:
            failures += 1
            stderr.write(f"line {line}: {problem}\n")
            continue
        for webhook in document if isinstance(document, list) else [document]:
            forwarding = map_webhook(webhook, options)
            stdout.write(json.dumps({"line": line, **forwarding.to_json()}, ensure_ascii=False))
            stdout.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run(sys.stdin, sys.stdout, sys.stderr, sys.argv[1:]))
