"""An entry point served by `functions-framework` in its own process, as Cloud Run serves it
(gunicorn, threads), with its log lines kept for the test to read."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from stream.forward_settings import ForwardSettings
from stream.receive_settings import WebhookSettings
from subscription.deliver_settings import DeliverSettings
from subscription.ingest_settings import IngestSettings
from tools.processes import FunctionServer

# Settings a test process may have inherited; each served function gets only what it is given.
_OURS = frozenset().union(
    *(
        settings.model_fields
        for settings in (IngestSettings, DeliverSettings, WebhookSettings, ForwardSettings)
    )
)


class Served(FunctionServer):
    """An entry point whose output goes to a log file the test can read."""

    def __init__(self, target: str, env: Mapping[str, str], port: int | None = None) -> None:
        inherited = {k: v for k, v in os.environ.items() if k not in _OURS}
        super().__init__(target, {**inherited, **env}, port)
        handle, name = tempfile.mkstemp(prefix=f"{target}-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)

    def start(self, timeout: float = 30.0) -> None:  # type: ignore[override]
        with self.log_path.open("ab") as log:
            super().start(log)
        if not self.wait_ready(timeout):
            self.stop()
            raise RuntimeError(f"{self.target} did not start:\n{self.output()}")

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
