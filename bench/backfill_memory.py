"""Peak memory (and speed) of `tools backfill` on a large gzip export, against the emulator.

    .venv/bin/python bench/backfill_memory.py              # 1,000,000 lines
    .venv/bin/python bench/backfill_memory.py --lines 200000

Generates a Segment-like JSON Lines export (gzip), starts the Pub/Sub emulator, runs the backfill
in a child process and prints the child's peak resident memory (ru_maxrss), which must stay flat
as the file grows. Not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from google.cloud import pubsub_v1  # noqa: E402

from tools.emulator import running_emulator  # noqa: E402

PROJECT = "bench-project"
TOPIC = "bench-raw-events"


def write_export(path: Path, lines: int) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        for n in range(lines):
            message = {
                "type": "track" if n % 4 else "identify",
                "event": "Order Completed",
                "userId": f"user-{n % 50_000}",
                "messageId": f"bench-{n:09d}",
                "timestamp": "2026-11-28T10:00:00.000Z",
                "context": {"ip": "203.0.113.7", "traits": {"email": f"u{n}@example.com"}},
                "properties": {
                    "order_id": f"o-{n}",
                    "total": 27.5,
                    "currency": "usd",
                    "products": [{"product_id": "p-1", "price": 12.5, "quantity": 2}],
                },
            }
            out.write(json.dumps(message) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "export.jsonl.gz"
        started = time.monotonic()
        write_export(export, args.lines)
        size_mb = export.stat().st_size / 1e6
        print(
            f"wrote {args.lines:,} lines ({size_mb:.1f} MB gzip) "
            f"in {time.monotonic() - started:.0f} s"
        )
        with running_emulator() as emulator:
            os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
            pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/{TOPIC}")
            env = {**os.environ, "GOOGLE_CLOUD_PROJECT": PROJECT}
            command = [sys.executable, "-m", "tools", "backfill", str(export),
                       "--topic", TOPIC, "--no-progress"]  # fmt: skip
            started = time.monotonic()
            result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            elapsed = time.monotonic() - started
            # Read now: the only child waited for so far is the backfill (not the emulator).
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.stderr.strip())
    print()
    print("| lines | gzip MB | seconds | messages/s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {args.lines:,} | {size_mb:.0f} | {elapsed:.1f} | "
        f"{args.lines / elapsed:,.0f} | {peak_mb:.0f} |"
    )
    if result.returncode:
        sys.exit(result.returncode)


if __name__ == "__main__":
    main()
