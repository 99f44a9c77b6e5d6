"""The test's child processes, each in a process group of its own, all stopped after it; and
`make run` (tools.run_local) as its tests drive it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tools.processes import ROOT, port_in_use, stop_group

from .served import Served, served


class Processes:
    """Starts processes for one test (the `processes` fixture) and stops them all after it."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[Any]] = []
        self._served = ExitStack()

    def start(self, args: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        options.setdefault("cwd", ROOT)
        process = subprocess.Popen(list(args), start_new_session=True, **options)
        self._started.append(process)
        return process

    def run(
        self, args: Sequence[str], timeout: float = 120, **options: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run to the end, capturing text output."""
        options.setdefault("cwd", ROOT)
        return subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False, **options
        )

    def serve(self, target: str, env: Mapping[str, str], port: int | None = None) -> Served:
        """`functions-framework --target=TARGET` with `env`, running until the test ends."""
        return self._served.enter_context(served(target, env, port))

    def stop_all(self) -> None:
        self._served.close()
        for process in self._started:
            if process.poll() is None:
                stop_group(process)


class Running:
    """`python -m tools.run_local` in its own process group, its output read line by line."""

    def __init__(self, processes: Processes, env: dict[str, str]) -> None:
        self.process = processes.start(
            [sys.executable, "-m", "tools.run_local"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if condition(line):
                return line
        raise AssertionError("not seen; output so far:\n" + "\n".join(self.seen))

    def interrupt(self, sent: signal.Signals = signal.SIGINT) -> int:
        """Ctrl-C (or another signal), as the terminal sends it, to the whole foreground group;
        then the rest of the output is in `seen`."""
        os.killpg(self.process.pid, sent)
        return self.ended()

    def kill(self) -> int:
        """SIGKILL to `make run`'s own process only: nothing of it gets to clean up."""
        os.kill(self.process.pid, signal.SIGKILL)
        return self.ended()

    def ended(self) -> int:
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


def deliver_json(line: str) -> dict:
    prefix, _, rest = line.partition("| ")
    return json.loads(rest) if prefix.strip() == "deliver" and rest.startswith("{") else {}


PORTS = (
    "INGEST_PORT",
    "DELIVER_PORT",
    "WEBHOOK_PORT",
    "FORWARD_PORT",
    "EMULATOR_PORT",
    "FIRESTORE_PORT",
)


def local_env(ports: dict[str, int], state: Path) -> dict[str, str]:
    """This environment without the pipeline's settings, on `ports`, keeping state in `state`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            (
                "PUBSUB_",
                "FIRESTORE_",
                "SAASQUATCH_",
                "INGEST_",
                "DRY_RUN",
                "GOOGLE_CLOUD",
                "SEGMENT_",
                "WEBHOOK_",
                "FORWARD_",
                "LOCAL_STATE_DIR",
                "PORTS",
                *PORTS,
            )
        )
    }
    ports_env = {name: str(port) for name, port in ports.items()}
    return {**env, **ports_env, "LOCAL_STATE_DIR": str(state)}


def all_freed(ports: dict[str, int], timeout: float = 30.0) -> list[int]:
    """The ports still held once everything had `timeout` to end (nothing else holds them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(port_in_use(port) for port in ports.values()):
        time.sleep(0.2)
    return [port for port in ports.values() if port_in_use(port)]
