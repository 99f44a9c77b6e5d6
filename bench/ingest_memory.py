"""ingest's peak memory when every request thread holds a maximum body, and under a gzip bomb:
the figures behind the default MAX_BODY_BYTES and the deployed --memory (docs/deploy.md).

    .venv/bin/python bench/ingest_memory.py [--threads 8,16,32]

Each row serves ingest afresh (functions-framework, publishing to the emulator) with THREADS
request threads, posts that many batches of realistic ~1.5 KB events at once, each just under
the limit, and reads the peak resident memory (VmHWM) of ingest's processes. The floor is the
same server after one small request.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import sys
import zlib
from pathlib import Path

import requests
from _support import server_pids, serving, table
from google.cloud import pubsub_v1
from ingest_throughput import PROJECT, TOKEN, TOPIC, ingest_env

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subscription.body import MAX_CONTAINERS, MAX_ITEMS
from subscription.ingest_settings import IngestSettings
from tests.factories import actions_event
from tools.emulator import running_emulator

LIMIT = int(IngestSettings.default("MAX_BODY_BYTES"))


def peak_mib(url: str) -> float:
    peaks = []
    for pid in server_pids(url):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def largest_batch() -> bytes:
    """As many realistic events as fit under the limit."""
    one = len(json.dumps(actions_event(0), separators=(",", ":"))) + 1
    count = (LIMIT - 2) // one
    body = json.dumps([actions_event(n) for n in range(count)], separators=(",", ":")).encode()
    while len(body) > LIMIT:
        count -= 1
        body = json.dumps([actions_event(n) for n in range(count)], separators=(",", ":")).encode()
    return body


def most_objects() -> bytes:
    """The worst body the counts let through: MAX_ITEMS items that together open just under
    MAX_CONTAINERS objects and arrays, padded with text up to the limit."""
    # Each item opens itself, its properties and the list too; the batch is one more.
    per_item = (MAX_CONTAINERS - 1) // MAX_ITEMS - 3
    pad = (LIMIT - MAX_CONTAINERS * 4) // MAX_ITEMS - 120
    items = [
        {
            "type": "track",
            "userId": f"u-{n}",
            "event": "E",
            "messageId": f"m-{n}",
            "properties": {"nested": [{}] * per_item, "pad": "x" * max(pad, 0)},
        }
        for n in range(MAX_ITEMS)
    ]
    body = json.dumps(items, separators=(",", ":")).encode()
    assert len(body) <= LIMIT, len(body)
    return body


def empty_objects() -> bytes:
    """The body that took ingest to 1.2 GB before the counts: `[{},{},...]` up to the limit."""
    return b"[" + b",".join([b"{}"] * ((LIMIT - 2) // 3)) + b"]"


def bomb() -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join(compressor.compress(zeros) for _ in range(1024)) + compressor.flush()


def at_once(
    env: dict[str, str], threads: int, name: str, data: bytes, headers: dict[str, str]
) -> list[str]:
    """A fresh server; `threads` requests of `data` at once; the row of what it cost."""
    with serving("ingest", env) as url:
        requests.post(url, json=actions_event(0), headers=headers, timeout=30).raise_for_status()
        floor = peak_mib(url)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            answers = list(
                pool.map(
                    lambda _: requests.post(url, data=data, headers=headers, timeout=120),
                    range(threads),
                )
            )
        statuses = collections.Counter(a.status_code for a in answers)
        answered = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
        peak = peak_mib(url)
    return [
        f"{threads} x {name}",
        answered,
        f"{floor:,.0f}",
        f"{peak:,.0f}",
        f"{(peak - floor) / threads:,.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="8,16,32")
    args = parser.parse_args()
    body = largest_batch()
    events = len(json.loads(body))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    rows = []
    with running_emulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/{TOPIC}")
        env = ingest_env(emulator.host)
        cases = [
            (threads, f"{len(body) / 2**20:.2f} MiB ({events:,} events)", body)
            for threads in [int(t) for t in args.threads.split(",")]
        ]
        most = int(args.threads.split(",")[-1])
        for name, worst in (
            (f"most objects let through: {MAX_ITEMS:,} items", most_objects()),
            ("8 MiB of [{},{},...] (2.8 million objects)", empty_objects()),
        ):
            cases.append((most, f"{name} ({len(worst) / 2**20:.2f} MiB)", worst))
        for threads, name, data in cases:
            rows.append(at_once({**env, "THREADS": str(threads)}, threads, name, data, headers))
        with serving("ingest", env) as url:
            requests.post(url, json=actions_event(0), headers=headers, timeout=30)
            floor = peak_mib(url)
            compressed = bomb()
            answer = requests.post(
                url, data=compressed, headers={**headers, "Content-Encoding": "gzip"}, timeout=60
            )
            peak = peak_mib(url)
            rows.append(
                [
                    f"gzip bomb: 1 GiB of zeros in {len(compressed) / 2**20:.1f} MiB",
                    str(answer.status_code),
                    f"{floor:,.0f}",
                    f"{peak:,.0f}",
                    f"{peak - floor:,.0f}",
                ]
            )
    print(f"MAX_BODY_BYTES = {LIMIT:,} ({LIMIT / 2**20:.0f} MiB)\n")
    print(
        table(
            ["requests at once", "answers", "floor MiB", "peak MiB", "MiB per request"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
