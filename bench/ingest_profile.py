"""Where ingest spends its CPU: py-spy samples the served function (pinned to core 0) while wrk
(core 1) posts single messages through it to the emulator (core 1).

    .venv/bin/python bench/ingest_profile.py [--seconds 15] [--top 25] [--body single|batch]

Needs `wrk` and `py-spy` (`pip install py-spy`). Prints the functions holding the GIL most often,
by own samples and by samples with the function anywhere on the stack ("total"), as a share of
all samples that held the GIL. Idle threads (waiting on a socket or a lock) are not counted.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from _support import serving, table
from google.cloud import pubsub_v1
from ingest_throughput import PROJECT, TOPIC, ingest_env, message, wrk

from tools.emulator import running_emulator


def worker_pid(port: int) -> int:
    """The gunicorn worker serving `port` (the newest process of the server's group)."""
    out = subprocess.run(["pgrep", "-f", "--", f"--port={port}"], capture_output=True, text=True)
    parents = [int(pid) for pid in out.stdout.split()]
    children = subprocess.run(
        ["pgrep", "-P", ",".join(map(str, parents))], capture_output=True, text=True
    ).stdout.split()
    return int(children[-1]) if children else parents[-1]


def summarise(collapsed: Path, top: int, by_total: bool = False) -> list[list[object]]:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    rows = []
    ranked = sorted(own, key=lambda frame: (own[frame], total[frame]), reverse=True)
    if by_total:
        ranked = sorted(total, key=lambda frame: total[frame], reverse=True)
    for frame in ranked[:top]:
        count = own[frame]
        rows.append([frame, f"{count / samples:.1%}", f"{total[frame] / samples:.1%}"])
    return rows


def _function(frame: str) -> str:
    """`name (path:line)` -> `name (package/module.py)`: one row per function, not per line."""
    name, _, location = frame.partition(" (")
    path = location.rpartition(":")[0]
    parts = Path(path).parts
    short = parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-2:]
    return f"{name} ({'/'.join(short)})" if short else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--body", choices=["single", "batch"], default="single")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--by-total", action="store_true", help="rank by total, not own samples")
    parser.add_argument(
        "--running",
        action="store_true",
        help="count every running thread, also without the GIL (gRPC's own work)",
    )
    args = parser.parse_args()
    for tool in ("wrk", "py-spy"):
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
            sys.exit(f"ingest_profile: needs {tool}")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    body = (
        json.dumps(message(1))
        if args.body == "single"
        else json.dumps([message(n) for n in range(100)])
    ).encode()
    os.sched_setaffinity(0, {1})
    with running_emulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/{TOPIC}")
        env = ingest_env(emulator.host, THREADS=str(args.threads))
        with serving("ingest", env, cpus={0}) as url, tempfile.TemporaryDirectory() as scratch:
            wrk(url, body, 2)  # warm up
            port = int(url.rsplit(":", 1)[1].strip("/"))
            collapsed = Path(scratch) / "ingest.txt"
            spy = threading.Thread(
                target=subprocess.run,
                args=(
                    [
                        *(py_spy, "record", "--nonblocking", "-r", "200", "-f", "raw"),
                        *(() if args.running else ("--gil",)),
                        *("-d", str(args.seconds), "-o", str(collapsed)),
                        *("-p", str(worker_pid(port))),
                    ],
                ),
                kwargs={"capture_output": True, "check": True},
            )
            spy.start()
            result = wrk(url, body, args.seconds)
            spy.join()
            rows = summarise(collapsed, args.top, args.by_total)
    print(f"ingest, {args.body} body: {result['rps']:,.0f} requests/s while sampled\n")
    print(table(["function (module)", "own", "total"], rows))


if __name__ == "__main__":
    main()
