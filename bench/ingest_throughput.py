"""ingest under 32 concurrent clients, served as Cloud Run serves it (functions-framework: gunicorn
with threads), publishing to the Pub/Sub emulator, next to a do-nothing function (the floor).

    .venv/bin/python bench/ingest_throughput.py [--seconds 10] [--pin]

`--pin` puts each served function on core 0 and everything else (the emulator, wrk, this script)
on core 1, so the function's own cost per request is what differs between the rows.

Needs `wrk` (Debian/Ubuntu: `apt-get install wrk`), which drives the load from one thread.
Rows: single-message and 100-message batch bodies, with ordering off and on.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from _support import ROOT, cpu_seconds, server_pids, serving, table
from google.cloud import pubsub_v1

from tools.emulator import running_emulator

TOKEN = "bench-token"
PROJECT = "bench-project"
TOPIC = "bench-raw-events"


def ingest_env(emulator_host: str, **settings: str) -> dict[str, str]:
    """ingest's settings for the benchmarks: the emulator, the bench topic and token."""
    return {
        "PUBSUB_EMULATOR_HOST": emulator_host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PUBSUB_TOPIC": TOPIC,
        "INGEST_TOKEN": TOKEN,
        **settings,
    }


def message(n: int) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n}",
        "messageId": f"bench-{n:06d}",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "context": {"ip": "203.0.113.7", "traits": {"email": f"u{n}@example.com"}},
        "properties": {"order_id": f"o-{n}", "total": 27.5, "currency": "usd"},
    }


def wrk(url: str, body: bytes, seconds: int) -> dict[str, float]:
    """wrk's figures, plus the CPU time the server used per request (`cpu_us`)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n'
            f"wrk.body = [==[{body.decode()}]==]\n"
        )
    pids = server_pids(url)
    cpu_before = cpu_seconds(pids)
    try:
        out = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    cpu = cpu_seconds(pids) - cpu_before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),
        "p99": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),
        "errors": float(errors.group(1)) if errors else 0.0,
        "cpu_us": cpu / max(requests, 1) * 1e6,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--only", choices=["single", "batch"], default=None)
    parser.add_argument("--ordering", choices=["false", "true", "both"], default="both")
    parser.add_argument(
        "--threads", type=int, default=None, help="gunicorn threads (THREADS), for both servers"
    )
    parser.add_argument(
        "--pin", action="store_true", help="the function on core 0, the emulator and wrk on core 1"
    )
    args = parser.parse_args()
    server_cpus = {0} if args.pin else None
    if args.pin:
        os.sched_setaffinity(0, {1})  # the emulator and wrk inherit it
    threads = {"THREADS": str(args.threads)} if args.threads else {}
    if shutil.which("wrk") is None:
        sys.exit("ingest_throughput: needs wrk (apt-get install wrk)")
    single = json.dumps(message(1)).encode()
    batch = json.dumps([message(n) for n in range(100)]).encode()
    rows = []
    with serving(
        "noop", threads, source=ROOT / "bench" / "noop_function.py", cpus=server_cpus
    ) as url:
        floor = wrk(url, single, args.seconds)
    rows.append(_row("no-op function (floor)", "-", 1, floor, floor))
    with running_emulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/{TOPIC}")
        for ordering in ("false", "true") if args.ordering == "both" else (args.ordering,):
            env = ingest_env(emulator.host, PUBSUB_ORDERING=ordering, **threads)
            with serving("ingest", env, cpus=server_cpus) as url:
                wrk(url, single, 2)  # warm up: clients, channels
                for name, body, size in (
                    ("single message", single, 1),
                    ("100-message batch", batch, 100),
                ):
                    if args.only and not name.startswith(
                        {"single": "single", "batch": "100"}[args.only]
                    ):
                        continue
                    result = wrk(url, body, args.seconds)
                    rows.append(_row(f"ingest, {name}", ordering, size, result, floor))
    print(
        table(
            [
                "what",
                "ordering",
                "requests/s",
                "events/s",
                "p50 ms",
                "p99 ms",
                "vs floor (req/s)",
                "CPU µs/request",
                "vs floor (CPU)",
                "errors",
            ],
            rows,
        )
    )


def _row(name: str, ordering: str, size: int, result: dict, floor: dict) -> list[object]:
    return [
        name,
        ordering,
        f"{result['rps']:,.0f}",
        f"{result['rps'] * size:,.0f}",
        f"{result['p50']:.1f}",
        f"{result['p99']:.1f}",
        f"{result['rps'] / floor['rps']:.0%}",
        f"{result['cpu_us']:,.0f}",
        f"{floor['cpu_us'] / result['cpu_us']:.2f}x",
        int(result["errors"]),
    ]


if __name__ == "__main__":
    main()
