"""`make run`'s state folder as files: a damaged state is refused in one line and left as it is,
`make clean-local` removes only what make run keeps there, and a save that cannot drain keeps
the last state whole."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.api_core.exceptions import ResourceExhausted
from google.pubsub_v1 import PubsubMessage

from tools.local_state import STATE, Queue, Saved, UnreadableState, clean, load, restore
from tools.processes import free_port
from tools.run_local import clean_local, save_state

from ..support.processes import PORTS, Processes, local_env

EXPORT = "firestore/export-1/x/x.overall_export_metadata"
GOOD = base64.b64encode(b'{"type": "track"}').decode()


def state_folder(tmp_path: Path, state: object) -> Path:
    folder = tmp_path / "state"
    (folder / EXPORT).parent.mkdir(parents=True)
    (folder / EXPORT).write_text("")
    (folder / STATE).write_text(json.dumps(state))
    return folder


def a_state(**changes: Any) -> dict[str, Any]:
    state = {
        "version": 1,
        "messages": {"deliver dead letters": [{"data": GOOD, "attributes": {"reason": "x"}}]},
        "firestore": EXPORT,
    }
    return {**state, **changes}


def test_a_whole_state_is_loaded(tmp_path: Path) -> None:
    saved = load(state_folder(tmp_path, a_state()))
    assert saved is not None
    assert saved.count(" dead letters") == 1
    assert saved.firestore == (tmp_path / "state" / EXPORT).resolve()


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ([], "not a saved state"),
        (a_state(version=99), "version 99; this make run reads version 1"),
        (a_state(messages=[]), "`messages` is not an object"),
        (a_state(messages={"deliver parked": []}), "unknown queue 'deliver parked'"),
        (a_state(messages={"deliver waiting": [{}]}), "deliver waiting, message 1: no 'data'"),
        (
            a_state(messages={"deliver waiting": [{"data": "%%%"}]}),
            "deliver waiting, message 1: `data` is not base64",
        ),
        (
            a_state(messages={"forward waiting": [{"data": GOOD, "attributes": {"a": 1}}]}),
            "forward waiting, message 1: `attributes` is not an object of strings",
        ),
        (a_state(firestore=None), "it names no Firestore export"),
        (
            a_state(firestore="firestore/export-gone/x.overall_export_metadata"),
            "the Firestore export it names (firestore/export-gone/x.overall_export_metadata) "
            "is not there",
        ),
        (a_state(firestore="../../etc/passwd"), "the Firestore export it names"),
    ],
)
def test_a_damaged_state_is_one_line_naming_the_file_and_what_is_wrong(
    tmp_path: Path, state: object, says: str
) -> None:
    folder = state_folder(tmp_path, state)
    before = (folder / STATE).read_bytes()
    with pytest.raises(UnreadableState) as raised:
        load(folder)
    message = str(raised.value)
    assert message.startswith(f"{folder / STATE} cannot be used: ")
    assert says in message
    assert "\n" not in message
    assert (folder / STATE).read_bytes() == before


def test_a_state_that_is_not_json_or_text_is_one_line(tmp_path: Path) -> None:
    folder = state_folder(tmp_path, {})
    for content in (b'{"version": 1, "mess', b"\xff\xfe"):
        (folder / STATE).write_bytes(content)
        with pytest.raises(UnreadableState, match=f"^{folder / STATE} cannot be"):
            load(folder)


def make_run_files(folder: Path) -> None:
    """What a make run leaves in its folder, a temp file of a cut-short save included."""
    (folder / "firestore" / "export-abc" / "x").mkdir(parents=True)
    for name in ("state.json", "run.json", "run.lock", "webhook-key.pem", ".state.json.k2j3"):
        (folder / name).write_text("kept")


def test_clean_local_removes_only_what_make_run_keeps_and_names_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "home"
    make_run_files(folder)
    (folder / "precious.txt").write_text("mine")
    (folder / "firestore" / "notes").write_text("mine too")

    assert clean_local(folder) == 0

    assert (folder / "precious.txt").read_text() == "mine"
    assert (folder / "firestore" / "notes").read_text() == "mine too"
    assert sorted(p.name for p in folder.iterdir()) == ["firestore", "precious.txt"]
    assert [p.name for p in (folder / "firestore").iterdir()] == ["notes"]
    line = capsys.readouterr().out.strip()
    assert line.endswith(f"left the rest of {folder}: firestore/notes, precious.txt")


def test_clean_local_removes_the_folder_when_it_held_only_what_make_run_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / ".local"
    make_run_files(folder)
    assert clean(folder) == []
    assert not folder.exists()
    assert clean_local(folder) == 0
    assert capsys.readouterr().out == (
        f"nothing kept in {folder}: the next make run starts from nothing\n"
    )


class FailingPull:
    def modify_push_config(self, **_: Any) -> None:
        pass

    def seek(self, **_: Any) -> None:
        pass

    def pull(self, **_: Any) -> None:
        raise ResourceExhausted("Received message larger than max")


def test_a_save_that_cannot_drain_says_so_and_keeps_the_last_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = state_folder(tmp_path, a_state())
    before = (folder / STATE).read_bytes()
    queue = Queue("deliver waiting", "projects/p/subscriptions/s", "projects/p/topics/t", True)

    save_state(folder, [queue], None, "p", datetime.now(UTC), FailingPull())  # type: ignore[arg-type]

    assert (folder / STATE).read_bytes() == before
    out = capsys.readouterr().out
    assert "make run: not saved (" in out and "Received message larger than max" in out
    assert f"{folder} keeps the last stop's state" in out


def test_make_run_refuses_a_damaged_state_before_starting_anything(
    processes: Processes, tmp_path: Path
) -> None:
    folder = state_folder(tmp_path, [])
    env = local_env({name: free_port() for name in PORTS}, folder)
    result = processes.run([sys.executable, "-m", "tools.run_local"], env=env, timeout=60)
    assert result.returncode == 1
    assert result.stdout == "", "nothing started"
    assert result.stderr == (
        f"make run: {folder / STATE} cannot be used: not a saved state (a JSON object is "
        "expected): move it away, or `make clean-local` to start from nothing\n"
    )
    assert json.loads((folder / STATE).read_text()) == []


class Recording:
    def __init__(self) -> None:
        self.requests: list[list[int]] = []

    @property
    def api(self) -> Recording:
        return self

    def publish(self, topic: str, messages: list[PubsubMessage], timeout: float) -> None:
        self.requests.append([len(m.data) for m in messages])


def test_a_restore_publishes_within_the_request_size_limit() -> None:
    big = base64.b64encode(b"x" * 5_000_000).decode()
    small = base64.b64encode(b"x").decode()
    entries = [{"data": big}, {"data": big}, {"data": small}]
    queue = Queue("deliver waiting", "projects/p/subscriptions/s", "projects/p/topics/t", True)
    publisher = Recording()
    restore(publisher, Saved({"deliver waiting": entries}), [queue])
    assert publisher.requests == [[5_000_000], [5_000_000, 1]]
