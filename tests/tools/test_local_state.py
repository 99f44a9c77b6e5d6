"""`make run` across a stop and a start: the dead letters and Firestore documents it keeps in its
state folder, one make run per folder (a second one is told where the first runs, or starts
beside it with PORTS=auto), a leftover stopped by one command, and make clean-local."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import pytest

from tools.processes import command_line, free_port

from ..support.processes import PORTS, Processes, Running, all_freed, deliver_json, local_env

pytestmark = pytest.mark.e2e

SEATS = '{ "customFields": { "seats": $number(properties.seats) } }'
SEATS_FIXED = '{ "customFields": { "seats": properties.seats } }'
REPLAY = ("--reason", "transformer_failed")
TRACK = {
    "type": "track",
    "event": "Seats Bought",
    "userId": "u-42",
    "messageId": "seats-twelve-1",
    "properties": {"seats": "twelve"},
}


def exports(running: Running) -> dict[str, str]:
    """The variables the banner tells the operator tools to use."""
    found = {}
    for line in running.seen:
        match = re.fullmatch(r"\s*export (\w+)=(\S+)", line)
        if match:
            found[match[1]] = match[2]
    return found


def test_a_dead_letter_made_in_one_run_is_listed_and_replayed_in_the_next(
    processes: Processes, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in PORTS}
    state = tmp_path / "state"
    env = local_env(ports, state)
    first = Running(processes, {**env, "TRACK_UPSERT_TRANSFORMER": SEATS})
    try:
        first.wait_for(lambda line: line == "Ctrl-C stops everything.")
        assert f"nothing to restore from {state} (a fresh start)" in first.seen
        # The printed curl, with a track of our own as its body.
        curl = next(line.strip() for line in first.seen if line.strip().startswith("curl "))
        body = tmp_path / "track.json"
        body.write_text(json.dumps(TRACK))
        words = shlex.split(curl)
        words[-1] = f"@{body}"
        sent = processes.run(words, timeout=30)
        assert json.loads(sent.stdout) == {"accepted": 1}, sent.stderr
        first.wait_for(lambda line: deliver_json(line).get("reason") == "transformer_failed")

        # A second make run on the same folder is told where the first one runs.
        second = processes.run([sys.executable, "-m", "tools.run_local"], env=env, timeout=60)
        assert second.returncode == 1
        [line] = second.stderr.strip().splitlines()
        assert line.startswith(f"make run: already running (pid {first.process.pid}): ")
        assert f"ingest http://127.0.0.1:{ports['INGEST_PORT']}/" in line
        assert f"saasquatch_webhook http://127.0.0.1:{ports['WEBHOOK_PORT']}/" in line
        assert "make run PORTS=auto" in line
    finally:
        assert first.interrupt() == 0
    assert f"saved to {state}: 1 dead letter, 0 waiting messages and the Firestore documents" in (
        first.seen
    )
    assert all_freed(ports) == []

    # Fix the transformer, start again: the dead letter is back, and replays.
    again = Running(processes, {**env, "TRACK_UPSERT_TRANSFORMER": SEATS_FIXED})
    try:
        again.wait_for(lambda line: line == "Ctrl-C stops everything.")
        [restored] = [line for line in again.seen if line.startswith("restored from ")]
        assert restored.startswith(
            f"restored from {state}: 1 dead letter (deliver 1, forward 0), 0 waiting messages"
        )
        tools_env = {**env, **exports(again)}
        listed = processes.run(
            [sys.executable, "-m", "tools", "dead-letters", "list", "--json"], env=tools_env
        )
        groups = json.loads(listed.stdout)
        assert {reason: group["count"] for reason, group in groups.items()} == {
            "transformer_failed": 1
        }, listed.stderr
        replayed = processes.run(
            [sys.executable, "-m", "tools", "dead-letters", "replay", *REPLAY],
            env=tools_env,
        )
        assert replayed.stdout.splitlines()[0] == "replayed 1 message", replayed.stderr

        def the_call(line: str) -> bool:
            call = deliver_json(line)
            return bool(call.get("dry_run")) and call.get("purpose") == "track_event"

        call = deliver_json(again.wait_for(the_call))
        assert call["url"].endswith("/open/account/{accountId}/user/{userId}/events")
        assert call["body"]["events"][0]["key"] == "seatsBought"
        delivered = deliver_json(again.wait_for(lambda line: "deliver delivered" in line))
        assert delivered["idempotency_key"] == TRACK["messageId"]
    finally:
        assert again.interrupt() == 0
    assert f"saved to {state}: 0 dead letters, 0 waiting messages and the Firestore documents" in (
        again.seen
    )

    # make clean-local: the next make run starts from nothing.
    cleaned = processes.run([sys.executable, "-m", "tools.run_local", "--clean"], env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout == f"removed {state}: the next make run starts from nothing\n"
    assert not state.exists()


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def test_a_second_run_starts_beside_with_ports_auto_and_a_leftover_stops_with_one_command(
    processes: Processes, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in PORTS}
    state = tmp_path / "state"
    env = local_env(ports, state)
    first = Running(processes, env)
    first.wait_for(lambda line: line == "Ctrl-C stops everything.")

    beside_env = {name: value for name, value in env.items() if name not in PORTS}
    beside = Running(processes, {**beside_env, "PORTS": "auto"})
    try:
        beside.wait_for(lambda line: line == "Ctrl-C stops everything.")
        banner = "\n".join(beside.seen)
        assert f"state: NOT kept (make run pid {first.process.pid} keeps {state})" in banner
        [ingest] = re.findall(r"ingest +(http://\S+)", banner)
        assert ingest != f"http://127.0.0.1:{ports['INGEST_PORT']}/"
    finally:
        assert beside.interrupt() == 0
    assert not [line for line in beside.seen if line.startswith("saving to")]

    # A make run killed with its watchdog leaves everything it started: a leftover.
    [watchdog] = [
        pid for pid in children(first.process.pid) if "tools.watchdog" in command_line(pid)
    ]
    os.kill(watchdog, signal.SIGKILL)
    assert first.kill() == -signal.SIGKILL
    assert all_freed(ports, timeout=0) != [], "the services outlive it"

    result = processes.run([sys.executable, "-m", "tools.run_local"], env=env, timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "is held by a leftover of an earlier make run" in line
    [stop] = re.findall(r"`(kill -- [-\d ]+)`", line)
    assert len(stop.split()) == 2 + 6, "the four services' and both emulators' groups"
    stopped = processes.run(["bash", "-c", stop], timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert all_freed(ports) == []
