"""The test's child processes, each in a process group of its own, all stopped after it."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from tools.processes import ROOT, stop_group

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
