"""Shared by the benchmark scripts: serving a function the way Cloud Run does, timing, tables."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.processes import FunctionServer  # noqa: E402


@contextmanager
def serving(
    target: str, env: Mapping[str, str], source: Path | None = None, port: int | None = None
) -> Iterator[str]:
    """`functions-framework --target=...` (gunicorn with threads, as on Cloud Run); its URL."""
    server = FunctionServer(target, {**os.environ, **env}, port, source)
    server.start()
    try:
        if not server.wait_ready():
            raise RuntimeError(f"{target} did not start")
        yield server.url
    finally:
        server.stop()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
