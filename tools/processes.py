"""Child processes that run in a process group of their own (servers and their workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


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


def port_owner(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the local process listening on `port`, when this user can see
    it (from /proc: the socket's inode in /proc/net/tcp*, then the process holding it)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                    inodes.add(fields[9])  # 0A: LISTEN
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with suppress(OSError):
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    return int(proc.name), command.decode(errors="replace")
    return None


# Every process `make run` starts carries this in its environment: the pid of that make run. A
# process whose make run is gone is a leftover, and so is everything else it started.
RUN_TAG = "SEGMENT_SAASQUATCH_RUN"


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_make_run(pid: object) -> bool:
    """`pid` is a live `make run` (python -m tools.run_local) of this user's."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    command = command_line(pid)
    return "-m tools.run_local" in command or "-m tools run" in command


def run_of(pid: int) -> int | None:
    """The make run that started `pid` (from its environment), when it was one."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        name, _, value = entry.partition(b"=")
        if name == RUN_TAG.encode() and value.isdigit():
            return int(value)
    return None


def groups_of_run(run: int) -> list[int]:
    """The process groups of every process still running that make run `run` started."""
    groups = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != run and run_of(int(proc.name)) == run:
            with suppress(ProcessLookupError):
                groups.add(os.getpgid(int(proc.name)))
    return sorted(groups)


class Watchdog:
    """`python -m tools.watchdog`: stops the process groups it is told about if this process
    dies without saying `done` (see that module)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tools.watchdog"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def watch(self, group: int) -> None:
        """Stop this process group (a child started with `start_new_session` leads its own,
        whose id is its pid) if we die."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"{group}\n")
        self._process.stdin.flush()

    def close(self) -> None:
        """We stopped everything ourselves."""
        assert self._process.stdin is not None
        with suppress(BrokenPipeError):
            self._process.stdin.write("done\n")
            self._process.stdin.close()
        self._process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LOOPBACK = "127.0.0.1"


class FunctionServer:
    """`functions-framework --target=...` as Cloud Run serves it (gunicorn with threads), in a
    process group of its own so stopping it stops its workers too. Restartable on its port."""

    def __init__(
        self,
        target: str,
        env: Mapping[str, str],
        port: int | None = None,
        source: Path | None = None,
    ) -> None:
        self.target = target
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._command = [
            sys.executable,
            "-m",
            "functions_framework",
            f"--target={target}",
            # Loopback only: locally ingest has a well-known token and deliver no auth at all.
            f"--host={LOOPBACK}",
            f"--port={self.port}",
        ]
        if source is not None:
            self._command.append(f"--source={source}")
        self._env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, output: int | IO[bytes] = subprocess.DEVNULL) -> None:
        """Start it, its stdout and stderr going to `output` (a file, PIPE or DEVNULL)."""
        self.process = subprocess.Popen(
            self._command,
            cwd=ROOT,
            env=self._env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """True once the port accepts connections (no request is sent, so nothing is logged);
        False if the process ended or the time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            if port_in_use(self.port):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None
