"""Child processes that run in a process group of their own (servers and their workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import suppress


def stop_group(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the whole group, then SIGKILL it if it has not ended within `timeout`."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
