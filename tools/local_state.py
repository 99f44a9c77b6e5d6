"""What `make run` keeps between a stop and the next start, in its state folder (`.local/`, or
`LOCAL_STATE_DIR`): the messages the Pub/Sub emulator held (it keeps none itself), the Firestore
emulator's documents (the delivery ledger, the remembered accounts), the local webhook signing
key, and the record of the `make run` that owns the folder.

    state.json     the messages and the name of the Firestore export: the one commit point
    firestore/     the Firestore emulator's exports (only the one state.json names is kept)
    webhook-key.pem  the local signing key (0600), made once
    run.json       pid, ports and URLs of the make run holding run.lock
    run.lock       held (flock) while a make run owns the folder; the kernel lets go when it dies

A save replaces state.json as a whole (temp file, then rename), and only a run whose restore
finished saves: a restore cut short leaves the emulator with part of the state, and saving that
would lose the rest. So a state is restored from one file, never added to itself twice.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from google.pubsub_v1 import PubsubMessage

from tools.processes import ROOT, is_make_run

STATE = "state.json"
RUN = "run.json"
LOCK = "run.lock"
KEY = "webhook-key.pem"
FIRESTORE = "firestore"
PULL_BATCH = 1000
PUBLISH_BATCH = 500
CALL_SECONDS = 30.0


def state_folder(env: Mapping[str, str]) -> Path:
    return Path(env.get("LOCAL_STATE_DIR") or ROOT / ".local").resolve()


def write_atomically(path: Path, data: bytes) -> None:
    """`path` holds either its old content or all of `data`, whatever stops us (0600)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Claim:
    """The folder's lock: one `make run` at a time keeps state in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def take(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            (self.folder / RUN).unlink(missing_ok=True)
            os.close(self._fd)  # closing lets go of the lock
            self._fd = None


def record_run(folder: Path, record: Mapping[str, Any]) -> None:
    write_atomically(folder / RUN, json.dumps(record, indent=2).encode())


def live_run(folder: Path) -> dict[str, Any] | None:
    """The record of the make run that owns `folder`, if it still runs."""
    try:
        record = json.loads((folder / RUN).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and is_make_run(record.get("pid")) else None


@dataclass(frozen=True)
class Queue:
    """One place messages wait: drained from `subscription` at the stop (a push subscription is
    made a pull one first), republished to `topic` at the start."""

    name: str
    subscription: str  # its path
    topic: str  # its path
    push: bool = False


@dataclass
class Saved:
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    firestore: Path | None = None  # the export's overall_export_metadata file

    def count(self, suffix: str) -> int:
        return sum(len(found) for name, found in self.messages.items() if name.endswith(suffix))


class UnreadableState(Exception):
    pass


def load(folder: Path) -> Saved | None:
    """What the last clean stop saved, or None (nothing saved, or `make clean-local`)."""
    try:
        text = (folder / STATE).read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        firestore = folder / data["firestore"] if data.get("firestore") else None
        saved = Saved(dict(data["messages"]), firestore)
    except (ValueError, KeyError, TypeError) as error:
        raise UnreadableState(f"{folder / STATE} cannot be read ({error})") from error
    if saved.firestore is not None and not saved.firestore.is_file():
        saved.firestore = None
    return saved


def restore(publisher: Any, saved: Saved, queues: Iterable[Queue]) -> None:
    """Each saved message back to its queue's topic, attributes and ordering key included."""
    for queue in queues:
        messages = [_message(entry) for entry in saved.messages.get(queue.name, [])]
        for start in range(0, len(messages), PUBLISH_BATCH):
            publisher.api.publish(
                topic=queue.topic, messages=messages[start : start + PUBLISH_BATCH]
            )


def _message(entry: Mapping[str, Any]) -> PubsubMessage:
    return PubsubMessage(
        data=base64.b64decode(entry["data"]),
        attributes=entry.get("attributes", {}),
        ordering_key=entry.get("ordering_key", ""),
    )


def drain(subscriber: Any, queue: Queue) -> list[dict[str, Any]]:
    """Every message waiting on the queue's subscription, none acknowledged (the emulator stops
    next). A push subscription is made a pull one first, so no push takes one meanwhile."""
    if queue.push:
        subscriber.modify_push_config(subscription=queue.subscription, push_config={})
    found: dict[str, dict[str, Any]] = {}
    while True:
        response = subscriber.pull(
            request={
                "subscription": queue.subscription,
                "max_messages": PULL_BATCH,
                "return_immediately": True,
            },
            timeout=CALL_SECONDS,
        )
        new = [r.message for r in response.received_messages if r.message.message_id not in found]
        if not new:
            return list(found.values())
        for message in new:
            found[message.message_id] = {
                "data": base64.b64encode(bytes(message.data)).decode(),
                "attributes": dict(message.attributes),
                "ordering_key": message.ordering_key,
            }


def export_firestore(folder: Path, host: str, project: str) -> Path:
    """The Firestore emulator's documents, exported into a new folder under `folder/firestore`;
    the export's metadata file (what `--import-data` takes)."""
    parent = folder / FIRESTORE
    parent.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(dir=parent, prefix="export-"))
    database = f"projects/{project}/databases/(default)"
    answer = requests.post(
        f"http://{host}/emulator/v1/projects/{project}:export",
        json={"database": database, "export_directory": str(target)},
        timeout=CALL_SECONDS,
    )
    answer.raise_for_status()
    [metadata] = target.glob("*/*.overall_export_metadata")
    return metadata


def save(folder: Path, messages: Mapping[str, list[dict[str, Any]]], firestore: Path) -> None:
    """Commit a new state (one rename), then forget the exports it no longer names."""
    named = firestore.relative_to(folder)
    data = {"version": 1, "messages": messages, "firestore": str(named)}
    write_atomically(folder / STATE, json.dumps(data).encode())
    keep = named.parts[1]
    for export in (folder / FIRESTORE).iterdir():
        if export.name != keep:
            shutil.rmtree(export, ignore_errors=True)


def clean(folder: Path) -> str:
    """Forget everything saved (the next make run starts from nothing); refused while a make
    run owns the folder."""
    claim = Claim(folder)
    if folder.exists() and not claim.take():
        owner = live_run(folder) or {}
        return f"a make run (pid {owner.get('pid', '?')}) uses {folder}: stop it first"
    claim.release()
    shutil.rmtree(folder, ignore_errors=True)
    return ""
