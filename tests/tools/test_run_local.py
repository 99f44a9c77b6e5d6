"""`make run`'s program: everything it starts, the printed curl, and every way of stopping it
(Ctrl-C, the terminal closing, being killed outright) stopping it all."""

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

from tools.processes import free_port, port_in_use, port_owner

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


def local_env(ports: dict[str, int]) -> dict[str, str]:
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
            )
        )
    }
    return {**env, **{name: str(port) for name, port in ports.items()}}


def all_freed(ports: dict[str, int], timeout: float = 30.0) -> list[int]:
    """The ports still held once everything had `timeout` to end (nothing else holds them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(port_in_use(port) for port in ports.values()):
        time.sleep(0.2)
    return [port for port in ports.values() if port_in_use(port)]


def test_make_run_starts_the_pipeline_and_the_printed_curl_goes_through_it(
    processes: Processes,
) -> None:
    ports = {name: free_port() for name in PORTS}
    running = Running(processes, local_env(ports))
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

        # The reverse direction: the printed command signs a sample webhook with the local key,
        # saasquatch_webhook verifies it, forward sends it to the local Segment, which shows it.
        send = next(line for line in running.seen if "-m tools webhooks send" in line)
        posted = processes.run(["bash", "-c", send.strip()], timeout=30)
        # Published, not dropped: `send` made it now, as one of the local tenant's.
        assert posted.stdout == '200 {"accepted": 1}\n', posted.stdout + posted.stderr
        shown = running.wait_for(lambda line: line.startswith("segment | "))
        assert json.loads(shown.partition("| ")[2]) == {
            "type": "track",
            "event": "Reward Created",
            "userId": "user-1234",
            "messageId": "saasquatch-sample-webhook-0001",
        }
    finally:
        code = running.interrupt()
    assert code == 0
    assert "stopped: ingest, deliver, saasquatch_webhook, forward and the emulators" in running.seen
    assert all_freed(ports) == [], "everything stopped"


def test_the_banner_says_how_to_point_the_tools_at_its_emulators(processes: Processes) -> None:
    ports = {name: free_port() for name in PORTS}
    own_token = "seg-own-token-7c1d9e"
    running = Running(processes, {**local_env(ports), "INGEST_TOKEN": own_token})
    try:
        running.wait_for(lambda line: line.strip() == "Ctrl-C stops everything.")
        banner = "\n".join(running.seen)
        assert own_token not in banner, "a token of your own is never printed"
        assert '-H "Authorization: Bearer $INGEST_TOKEN"' in banner
        assert f"export PUBSUB_EMULATOR_HOST=127.0.0.1:{ports['EMULATOR_PORT']}" in banner
        assert f"export FIRESTORE_EMULATOR_HOST=127.0.0.1:{ports['FIRESTORE_PORT']}" in banner
        assert "export GOOGLE_CLOUD_PROJECT=local-project" in banner
        assert ".venv/bin/python -m tools dead-letters list" in banner
    finally:
        running.interrupt()


@pytest.mark.parametrize("how", ["SIGHUP", "SIGTERM", "SIGKILL"])
def test_closing_the_terminal_or_killing_make_run_leaves_nothing_behind(
    processes: Processes, how: str
) -> None:
    """SIGHUP (the terminal closed) is handled like Ctrl-C; after SIGKILL nothing of `make run`
    runs any more, so its watchdog stops what it had started."""
    ports = {name: free_port() for name in PORTS}
    running = Running(processes, local_env(ports))
    running.wait_for(lambda line: line == "Ctrl-C stops everything.")
    assert sorted(all_freed(ports, timeout=0)) == sorted(ports.values()), "all six listen"
    words = " ".join(running.seen).split()
    key = next(Path(word) for word in words if word.endswith("webhook-key.pem"))
    assert key.is_file()
    if how == "SIGTERM":
        # `kill -TERM -- -PGID` on `make run` reaches it twice (from the sender, then from
        # make passing it on): the second arrives during the cleanup, which still ends.
        os.killpg(running.process.pid, signal.SIGTERM)
        running.wait_for(lambda line: line == "stopping ...")
        assert running.interrupt(signal.SIGTERM) == 0
    if how in ("SIGHUP", "SIGTERM"):
        if how == "SIGHUP":
            assert running.interrupt(signal.SIGHUP) == 0
        assert (
            "stopped: ingest, deliver, saasquatch_webhook, forward and the emulators"
            in running.seen
        )
        assert not [line for line in running.seen if "Traceback" in line]
        assert not key.parent.exists(), "the local signing key goes with the run"
    else:
        assert running.kill() == -signal.SIGKILL
    assert all_freed(ports) == [], "nothing is left listening"
    assert [port_owner(port) for port in ports.values()] == [None] * 6


def test_a_port_held_by_a_leftover_of_an_earlier_run_is_named_as_such(
    processes: Processes,
) -> None:
    port = free_port()
    listener = (
        "import socket, sys, time\n"
        "held = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "time.sleep(600)"
    )
    leftover = processes.start(
        [sys.executable, "-c", listener, str(port), "functions_framework", "--target=ingest"]
    )
    deadline = time.monotonic() + 10
    while not port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    ports = {name: free_port() for name in PORTS} | {"INGEST_PORT": port}
    result = processes.run([sys.executable, "-m", "tools.run_local"], env=local_env(ports))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"make run: port {port} is held by a leftover of an earlier make run")
    assert f"kill -- -{leftover.pid}" in line and "INGEST_PORT" in line


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
