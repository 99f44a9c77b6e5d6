"""Shared by the benchmark scripts: serving a function the way Cloud Run does, timing, tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.emulator import free_port  # noqa: E402
from tools.processes import port_in_use, stop_group  # noqa: E402


@contextmanager
def serving(
    target: str, env: Mapping[str, str], source: Path | None = None, port: int | None = None
) -> Iterator[str]:
    """`functions-framework --target=...` (gunicorn with threads, as on Cloud Run); its URL."""
    port = port or free_port()
    command = [sys.executable, "-m", "functions_framework", f"--target={target}", f"--port={port}"]
    if source is not None:
        command.append(f"--source={source}")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_in_use(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{target} did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_group(process)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
