"""Backfill: every valid message once, bad lines reported, resumable after Ctrl-C. Behaviour
on the in-memory topic; the real client (Ctrl-C, a missing topic, no Pub/Sub) on the
emulator."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from subscription.raw_events import encode_raw_event
from tools.backfill import main, resume_command
from tools.backfill import parser as backfill_parser

from ..factories import PROJECT
from ..support.fakes import FakeTopic
from ..support.processes import Processes
from ..support.pubsub import UNREACHABLE_PUBSUB, Pulled, Topic, without_google

BAD_LINES = {17: "{not json", 2500: '"a string"', 7777: "[1, 2]", 9999: '{"type": NaN}'}


def message(n: int) -> dict:
    return {
        "type": "track" if n % 3 else "identify",
        "userId": f"user-{n % 250}",
        "event": "Order Completed",
        "messageId": f"bf-{n:07d}",
        "properties": {"order_id": f"o-{n}", "total": n / 10},
    }


def write_export(path: Path, lines: int, bad: dict[int, str] | None = None) -> Path:
    bad = bad or {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for n in range(1, lines + 1):
            out.write((bad[n] if n in bad else json.dumps(message(n))) + "\n")
    return path


def received_ids(topic: Topic | FakeTopic, expected: int) -> Counter[str]:
    pulled = topic.pull(expected, timeout=60)
    pulled += topic.pull(1, timeout=2)  # nothing more should come
    return Counter(json.loads(m.data)["messageId"] for m in pulled)


def fake_run(topic: FakeTopic, *args: str) -> int:
    """The command, publishing to the in-memory topic."""
    return main([*args, "--project", PROJECT, "--topic", topic.name, "--no-progress"], topic=topic)


def run(*args: str) -> int:
    return main([*args, "--project", PROJECT, "--no-progress"])


def test_a_gzip_export_is_published_once_per_valid_line_and_bad_lines_are_named(
    raw_events: FakeTopic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_export(tmp_path / "export.jsonl.gz", 10_000, BAD_LINES)
    assert fake_run(raw_events, str(export)) == 0
    ids = received_ids(raw_events, 10_000 - len(BAD_LINES))
    expected = {f"bf-{n:07d}" for n in range(1, 10_001) if n not in BAD_LINES}
    assert set(ids) == expected
    assert set(ids.values()) == {1}, "each exactly once"
    report = capsys.readouterr().err
    assert "published 9996 messages" in report
    assert "skipped 4 invalid lines: lines 17, 2500, 7777 and 9999" in report


def test_messages_are_published_exactly_as_ingest_publishes_them(
    tmp_path: Path,
) -> None:
    ordered = FakeTopic("raw-events", ordering=True)
    export = write_export(tmp_path / "few.jsonl", 5)
    assert fake_run(ordered, str(export), "--ordering") == 0
    pulled_all = ordered.pull()
    assert len(pulled_all) == 5
    for pulled in pulled_all:
        original = json.loads(pulled.data)
        as_ingest = encode_raw_event(original, ordering=True)
        assert pulled.data == as_ingest.data
        # Marked as a backfill: deliver looks it up in its ledger before sending it.
        assert dict(pulled.attributes) == {**as_ingest.attributes, "origin": "backfill"}
        assert pulled.ordering_key == as_ingest.ordering_key == original["userId"]


def test_resume_from_publishes_only_the_rest(raw_events: FakeTopic, tmp_path: Path) -> None:
    export = write_export(tmp_path / "export.jsonl.gz", 10_000, BAD_LINES)
    assert fake_run(raw_events, str(export), "--resume-from", "6001") == 0
    ids = received_ids(raw_events, 4000 - 2)
    assert set(ids) == {f"bf-{n:07d}" for n in range(6001, 10_001) if n not in BAD_LINES}


def test_a_json_array_file_streams_too(raw_events: FakeTopic, tmp_path: Path) -> None:
    export = tmp_path / "users.json"
    export.write_text(json.dumps([message(n) for n in range(1, 301)], indent=2))
    assert fake_run(raw_events, str(export), "--resume-from", "101") == 0
    assert set(received_ids(raw_events, 200)) == {f"bf-{n:07d}" for n in range(101, 301)}


def test_dry_run_prints_the_saasquatch_calls_and_publishes_nothing(
    raw_events: FakeTopic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_export(tmp_path / "few.jsonl", 3, {2: "oops"})
    assert fake_run(raw_events, str(export), "--dry-run") == 0
    printed = capsys.readouterr()
    assert "mapped 2 messages (dry run: nothing published)" in printed.err
    assert "skipped 1 invalid line: line 2" in printed.err
    plans = [json.loads(line) for line in printed.out.splitlines()]
    assert [plan["line"] for plan in plans] == [1, 3]
    assert plans[0]["outcome"] == "delivered"
    assert plans[0]["calls"][0]["path"] == "/open/account/user-1/user/user-1/events"
    assert raw_events.pull() == []


@pytest.mark.parametrize("remember", ["", "false"], ids=["remembered", "hosted-rule"])
def test_dry_run_uses_the_account_an_earlier_line_named_as_deliver_would(
    raw_events: FakeTopic,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    remember: str,
) -> None:
    monkeypatch.setenv("REMEMBER_ACCOUNTS", remember)
    identify = {"type": "identify", "userId": "u-42", "traits": {"account_id": "acct-7"}}
    refund = {"type": "track", "userId": "u-42", "event": "Order Refunded", "messageId": "r-1"}
    export = tmp_path / "two.jsonl"
    export.write_text(json.dumps(identify) + "\n" + json.dumps(refund) + "\n")
    assert fake_run(raw_events, str(export), "--dry-run") == 0
    refunded = json.loads(capsys.readouterr().out.splitlines()[1])
    account = "u-42" if remember == "false" else "acct-7"
    assert refunded["calls"][0]["path"] == f"/open/account/{account}/user/u-42/events"
    assert refunded["account"]["from"] == ("user_id" if remember == "false" else "remembered")


def test_missing_files_and_project_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main([str(tmp_path / "nope.jsonl")]) == 2
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    export = write_export(tmp_path / "few.jsonl", 1)
    assert main([str(export)]) == 2
    assert "--project" in capsys.readouterr().err


class Progress:
    """Reads a process's stderr as it comes (tqdm rewrites its line with `\\r`), and signals once
    the progress bar has counted `at_least` published messages."""

    def __init__(self, stream: int, at_least: int) -> None:
        self.text = ""
        self.published = threading.Event()
        self._at_least = at_least
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: int) -> None:
        while chunk := os.read(stream, 4096):
            self.text += chunk.decode(errors="replace")
            counts = [int(n) for n in re.findall(r"messages=(\d+)", self.text[-4096:])]
            if counts and max(counts) >= self._at_least:
                self.published.set()

    def rest(self) -> str:
        """Everything written, once the process has closed its stderr."""
        self._thread.join(timeout=60)
        return self.text


def ids_of(pulled: list[Pulled]) -> Counter[str]:
    return Counter(json.loads(m.data)["messageId"] for m in pulled)


@pytest.mark.parametrize(
    "given",
    [
        ["history.jsonl", "--rate", "100"],
        ["--rat=20", "--no-ordering", "--window=10", "a b.jsonl", "it's.jsonl"],
        ["--rate", "20", "--no-progress", "--", "-dash.jsonl", "ünï.jsonl"],
        ["--resume-from", "7", "--no-ledger", "--topic", "t", "x.jsonl", "y.jsonl"],
    ],
)
def test_the_resume_line_parses_back_to_the_same_options_and_the_files_left(
    given: list[str],
) -> None:
    """What the shell makes of the printed line is what was given: every option, however it
    was spelled, the new line, and the files from the interrupted one on (a name starting with
    `-` stays a file)."""
    original = backfill_parser().parse_args(given)
    left = original.files[-1:]
    words = shlex.split(resume_command(given, 724, left))
    assert words[1:4] == ["-m", "tools", "backfill"]
    again = backfill_parser().parse_args(words[4:])
    assert again.files == left and again.resume_from == 724
    assert {**vars(again), "files": None, "resume_from": None} == {
        **vars(original),
        "files": None,
        "resume_from": None,
    }


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_after_the_in_flight_publishes_and_says_where_to_resume(
    emulator, topic: Topic, tmp_path: Path, processes: Processes, stop: signal.Signals
) -> None:
    """Backfill is at least once: after Ctrl-C every line before the resume point is published,
    and resuming there publishes the rest; lines in flight at the interrupt may come twice. It
    holds when the shell that started it ignores SIGINT (a background job), and for SIGTERM."""
    export = write_export(tmp_path / "export.jsonl.gz", 3000)
    everything = {f"bf-{n:07d}" for n in range(1, 3001)}
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": emulator.host, "GOOGLE_CLOUD_PROJECT": PROJECT}
    process = processes.start(
        [sys.executable, "-m", "tools", "backfill", str(export), "--topic", topic.name,
         "--rate", "400"],
        env=env,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    progress = Progress(process.stderr.fileno(), at_least=200)
    assert progress.published.wait(timeout=60), progress.text
    os.killpg(process.pid, stop)
    assert process.wait(timeout=60) == 130, progress.rest()
    err = progress.rest()
    match = re.search(r"Continue with:\n  (.*--resume-from (\d+) .*)\n", err)
    assert match, err
    printed, resume = match.group(1), int(match.group(2))
    assert 200 < resume < 3000, "stopped half-way, after what the progress bar counted"
    before = {f"bf-{n:07d}" for n in range(1, resume)}
    first = ids_of(topic.pull_until(lambda got: before <= set(ids_of(got)), timeout=60))
    assert before <= set(first), "no gap before the resume point"

    # The printed line, pasted into a shell in the project folder, with no venv activated:
    # the project's own interpreter and every option given (the rate too).
    assert printed.startswith(".venv/bin/python -m tools backfill ") and "--rate 400" in printed
    shell = {name: value for name, value in env.items() if name != "VIRTUAL_ENV"}
    shell["PATH"] = "/usr/bin:/bin"  # no python of the venv's on PATH
    resumed_run = processes.run(["bash", "-c", printed], env=shell, timeout=120)
    assert resumed_run.returncode == 0, resumed_run.stderr
    resumed = {f"bf-{n:07d}" for n in range(resume, 3001)}
    rest = ids_of(topic.pull_until(lambda got: resumed <= set(ids_of(got)), timeout=60))
    assert resumed <= set(rest), "the resume publishes everything from its line on"
    assert set(first) | set(rest) == everything, "nothing lost, nothing made up"


def test_a_missing_topic_is_named_with_the_lines_it_failed(
    emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_export(tmp_path / "few.jsonl", 3)
    assert run(str(export), "--topic", "no-such-topic") == 1
    [failed] = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert failed.startswith("  FAILED to publish 3 lines: lines 1, 2 and 3: not found:")


@UNREACHABLE_PUBSUB
def test_when_pubsub_cannot_be_reached_one_line_says_why(
    tmp_path: Path, processes: Processes, env: dict[str, str], says: str
) -> None:
    export = write_export(tmp_path / "few.jsonl", 3)
    result = processes.run(
        [sys.executable, "-m", "tools", "backfill", str(export), "--project", PROJECT],
        env=without_google(tmp_path, **env),
        timeout=30,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("backfill: ") and says in line
    assert "Traceback" not in result.stderr
