"""An entry point served by `functions-framework` in its own process, as Cloud Run serves it
(gunicorn, threads), with its log lines kept for the test to read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests

from tools.emulator import free_port
from tools.processes import stop_group

ROOT = Path(__file__).resolve().parent.parent

# Settings a test process may have inherited; each served function gets only what it is given.
_OURS = (
    "PUBSUB_",
    "INGEST_",
    "SAASQUATCH_",
    "PUSH_",
    "DEAD_LETTER",
    "DRY_RUN",
    "GOOGLE_CLOUD_PROJECT",
    "TRACK_UPSERT",
)


class Served:
    def __init__(self, target: str, env: Mapping[str, str], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(_OURS)},
            **env,
        }
        handle, name = tempfile.mkstemp(prefix=f"{target}-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "functions_framework",
                    f"--target={self.target}",
                    f"--port={self.port}",
                ],
                cwd=ROOT,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.target} exited at start:\n{self.output()}")
            try:
                requests.get(self.url, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.target} did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        if self._process is None:
            return
        stop_group(self._process)  # the server and its workers
        self._process = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    def results(self) -> list[dict[str, Any]]:
        """deliver's one line per message."""
        return [line for line in self.log_lines() if line.get("entry_point") == self.target]


@contextmanager
def served(target: str, env: Mapping[str, str], port: int | None = None) -> Iterator[Served]:
    function = Served(target, env, port)
    function.start()
    try:
        yield function
    finally:
        function.stop()
        function.log_path.unlink(missing_ok=True)
