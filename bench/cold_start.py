"""Cold start: from process start to the first answered request, for each entry point.

    .venv/bin/python bench/cold_start.py [--runs 5]

Starts `functions-framework --target=...` (as Cloud Run does) and sends a request as soon as the
port opens, then again until one is answered by the function. The request needs no Pub/Sub or
SaaSquatch (ingest: no token, 401; deliver: an empty envelope, 400), so the figure is import,
settings and server start-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import requests
from _support import ROOT, median, table

from tools.processes import free_port, stop_group

REQUESTS = {"ingest": b'{"type": "identify"}', "deliver": b"{}"}


def one_start(target: str) -> float:
    port = free_port()
    env = {**os.environ, "GOOGLE_CLOUD_PROJECT": "bench-project", "INGEST_TOKEN": "t"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", f"--target={target}", f"--port={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            try:
                answer = requests.post(
                    f"http://127.0.0.1:{port}/", data=REQUESTS[target], timeout=10
                )
                if answer.status_code in (400, 401):
                    return time.perf_counter() - started
            except requests.ConnectionError:
                time.sleep(0.005)
    finally:
        stop_group(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for target in ("ingest", "deliver"):
        times = [one_start(target) for _ in range(args.runs)]
        rows.append([target, f"{median(times):.2f}", f"{min(times):.2f}", f"{max(times):.2f}"])
    print(table(["entry point", "median s", "best s", "worst s"], rows))


if __name__ == "__main__":
    main()
