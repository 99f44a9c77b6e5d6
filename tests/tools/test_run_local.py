"""`make run`'s program: everything it starts, the printed curl, and every way of stopping it
(Ctrl-C, the terminal closing, being killed outright) stopping it all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tools.processes import free_port, port_in_use, port_owner

from ..support.processes import PORTS, Processes, Running, all_freed, deliver_json, local_env

pytestmark = pytest.mark.e2e


def test_make_run_starts_the_pipeline_and_the_printed_curl_goes_through_it(
    processes: Processes, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in PORTS}
    running = Running(processes, local_env(ports, tmp_path / "state"))
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
        # One line per message, the values included (it is local).
        shown = running.wait_for(lambda line: line.startswith("segment | "))
        head, _, rest = shown.partition("| ")[2].partition(" {")
        assert head == 'track "Reward Created" userId=user-1234'
        message = json.loads("{" + rest)
        assert message["messageId"] == "saasquatch-sample-webhook-0001"
        assert message["properties"]["assignedCredit"] == 1000
        assert message["properties"]["rewardId"] == "sample-reward-1"
    finally:
        code = running.interrupt()
    assert code == 0
    assert "stopped: ingest, deliver, saasquatch_webhook, forward and the emulators" in running.seen
    assert all_freed(ports) == [], "everything stopped"


def test_the_banner_says_how_to_point_the_tools_at_its_emulators(
    processes: Processes, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in PORTS}
    own_token = "seg-own-token-7c1d9e"
    env = {**local_env(ports, tmp_path / "state"), "INGEST_TOKEN": own_token}
    running = Running(processes, env)
    try:
        running.wait_for(lambda line: line.strip() == "Ctrl-C stops everything.")
        banner = "\n".join(running.seen)
        assert own_token not in banner, "a token of your own is never printed"
        assert '-H "Authorization: Bearer $INGEST_TOKEN"' in banner
        assert f"export PUBSUB_EMULATOR_HOST=127.0.0.1:{ports['EMULATOR_PORT']}" in banner
        assert f"export FIRESTORE_EMULATOR_HOST=127.0.0.1:{ports['FIRESTORE_PORT']}" in banner
        assert "export GOOGLE_CLOUD_PROJECT=local-project" in banner
        assert ".venv/bin/python -m tools dead-letters list" in banner
        assert f"state: kept in {tmp_path / 'state'}" in banner
    finally:
        running.interrupt()


@pytest.mark.parametrize("how", ["SIGHUP", "SIGTERM", "SIGKILL"])
def test_closing_the_terminal_or_killing_make_run_leaves_nothing_behind(
    processes: Processes, how: str, tmp_path: Path
) -> None:
    """SIGHUP (the terminal closed) is handled like Ctrl-C; after SIGKILL nothing of `make run`
    runs any more, so its watchdog stops what it had started. The local signing key lives in
    the state folder, never in a temp folder a stop could leave behind."""
    ports = {name: free_port() for name in PORTS}
    state = tmp_path / "state"
    running = Running(processes, local_env(ports, state))
    running.wait_for(lambda line: line == "Ctrl-C stops everything.")
    assert sorted(all_freed(ports, timeout=0)) == sorted(ports.values()), "all six listen"
    words = " ".join(running.seen).split()
    key = next(Path(word) for word in words if word.endswith("webhook-key.pem"))
    assert key == state / "webhook-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
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
        assert key.is_file(), "the local signing key is kept for the next run"
    else:
        assert running.kill() == -signal.SIGKILL
    assert all_freed(ports) == [], "nothing is left listening"
    assert [port_owner(port) for port in ports.values()] == [None] * 6


def test_a_port_held_by_a_leftover_of_an_earlier_run_is_named_as_such(
    processes: Processes, tmp_path: Path
) -> None:
    """A process of an older make run (untagged) is still named by its command line."""
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
    env = local_env(ports, tmp_path / "state")
    result = processes.run([sys.executable, "-m", "tools.run_local"], env=env)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"make run: port {port} is held by a leftover of an earlier make run")
    assert f"`kill -- -{leftover.pid}`" in line and "INGEST_PORT" in line


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
