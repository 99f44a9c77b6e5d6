"""`make run`'s program: everything it starts, the printed curl, and Ctrl-C stopping it all."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tools.processes import free_port, port_in_use

from ..support.processes import Processes

pytestmark = pytest.mark.e2e


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

    def wait_for(self, condition, timeout: float = 60.0) -> str:
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

    def interrupt(self) -> int:
        """Ctrl-C, as the terminal sends it; then the rest of the output is in `seen`."""
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


def deliver_json(line: str) -> dict:
    prefix, _, rest = line.partition("| ")
    return json.loads(rest) if prefix.strip() == "deliver" and rest.startswith("{") else {}


def test_make_run_starts_the_pipeline_and_the_printed_curl_goes_through_it(
    processes: Processes,
) -> None:
    ports = {name: free_port() for name in ("INGEST_PORT", "DELIVER_PORT", "EMULATOR_PORT")}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PUBSUB_", "SAASQUATCH_", "INGEST_", "DRY_RUN", "GOOGLE_CLOUD"))
    }
    env.update({name: str(port) for name, port in ports.items()})
    running = Running(processes, env)
    try:
        running.wait_for(lambda line: line == "ready.")
        # Locally ingest has a well-known token and deliver no auth: loopback only.
        for name, port in ports.items():
            assert listening_on(port) == {"127.0.0.1"}, name
        curl = running.wait_for(lambda line: line.strip().startswith("curl "))
        assert "DRY" in "\n".join(running.seen)
        sent = processes.run(["bash", "-c", curl.strip()], timeout=30)
        assert json.loads(sent.stdout) == {"accepted": 2}, sent.stderr

        calls: dict[str, dict] = {}

        def both_calls_logged(line: str) -> bool:
            call = deliver_json(line)
            if call.get("dry_run") and "purpose" in call:
                calls[call["purpose"]] = call
            return set(calls) == {"upsert_user", "track_event"}

        running.wait_for(both_calls_logged)
        upsert_call, event_call = calls["upsert_user"], calls["track_event"]
        assert upsert_call["method"] == "PUT"
        assert upsert_call["url"].endswith(
            "/api/v1/TENANT_ALIAS/open/account/{accountId}/user/{userId}"
        )
        assert upsert_call["body"]["email"] == "str(29)"  # the shape, never the address
        assert event_call["body"]["events"][0]["key"] == "purchase"
        assert event_call["body"]["events"][0]["fields"]["order_id"] == "str(8)"
    finally:
        code = running.interrupt()
    assert code == 0
    assert "stopped: ingest, deliver and the Pub/Sub emulator" in running.seen
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(port_in_use(port) for port in ports.values()):
        time.sleep(0.2)
    assert not [port for port in ports.values() if port_in_use(port)], "everything stopped"


def listening_on(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            if address.startswith("0000000000000000FFFF0000"):  # IPv4 mapped into IPv6 (Java)
                address = address[-8:]
            if len(address) == 8:
                found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
            else:
                found.add("::1" if address == "00000000000000000000000001000000" else address)
    return found


def _only(tmp_path: Path, *tools: str) -> str:
    """A PATH holding only the named programs (from this machine)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize(
    ("tools", "says"),
    [((), "Google Cloud SDK"), (("gcloud",), "Java")],
)
def test_a_missing_emulator_or_java_is_one_clear_line(
    tmp_path: Path, tools: tuple[str, ...], says: str, processes: Processes
) -> None:
    env = {"PATH": _only(tmp_path, *tools), "HOME": str(tmp_path)}
    result = processes.run([sys.executable, "-m", "tools.run_local"], env=env, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("make run: ")
    assert says in line
