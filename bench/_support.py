"""Shared by the benchmark scripts: serving a function the way Cloud Run does, timing, tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.processes import FunctionServer  # noqa: E402


@contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """This process (and what it starts meanwhile: affinity is inherited) on `cpus`."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def serving(
    target: str,
    env: Mapping[str, str],
    source: Path | None = None,
    port: int | None = None,
    cpus: set[int] | None = None,
) -> Iterator[str]:
    """`functions-framework --target=...` (gunicorn with threads, as on Cloud Run) on `cpus`
    (default: any); its URL."""
    server = FunctionServer(target, {**os.environ, **env}, port, source)
    with pinned(cpus):
        server.start()
    try:
        if not server.wait_ready():
            raise RuntimeError(f"{target} did not start")
        yield server.url
    finally:
        server.stop()


def server_pids(url: str) -> list[int]:
    """The processes serving `url`: functions-framework's gunicorn master and its workers."""
    port = url.rstrip("/").rsplit(":", 1)[1]
    found = subprocess.run(["pgrep", "-f", "--", f"--port={port}"], capture_output=True, text=True)
    parents = found.stdout.split()
    children = subprocess.run(
        ["pgrep", "-P", ",".join(parents)], capture_output=True, text=True
    ).stdout.split()
    return sorted({int(pid) for pid in parents + children})  # a worker matches both


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time the processes (all their threads) have used so far."""
    total = 0
    for pid in pids:
        with suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
