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
would lose the rest. So a state is restored from one file, never added to itself twice. A state
that cannot be used whole (damaged, another version, naming a queue or an export that is not
there) is refused before anything starts, and left as it is.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
VERSION = 1
# Where messages wait, as a state names them (see run_local.queues_of).
QUEUES = ("deliver dead letters", "deliver waiting", "forward dead letters", "forward waiting")
PULL_BATCH = 1000
PUBLISH_BATCH = 500
PUBLISH_BYTES = 9_000_000  # a publish request may hold 10 MB; the emulator hangs on more
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
    """What the last clean stop saved, or None (nothing saved, or `make clean-local`);
    UnreadableState, naming the file and what is wrong, for a state that cannot be restored
    whole (it is left untouched)."""
    path = folder / STATE
    try:
        text = path.read_bytes().decode()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise UnreadableState(f"{path} cannot be read ({error})") from error
    try:
        return _parsed(folder, json.loads(text))
    except ValueError as error:
        raise UnreadableState(f"{path} cannot be used: {error}") from error


def _parsed(folder: Path, data: object) -> Saved:
    """The state in `data`, every message checked as restore will use it; ValueError for the
    first thing that is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a saved state (a JSON object is expected)")
    if data.get("version") != VERSION:
        raise ValueError(f"version {data.get('version')!r}; this make run reads version {VERSION}")
    messages = data.get("messages")
    if not isinstance(messages, dict):
        raise ValueError("`messages` is not an object")
    for name, entries in messages.items():
        if name not in QUEUES:
            raise ValueError(f"unknown queue {name!r} (known: {', '.join(QUEUES)})")
        if not isinstance(entries, list):
            raise ValueError(f"{name}: a list of messages is expected")
        for number, entry in enumerate(entries, 1):
            try:
                _message(entry)
            except (TypeError, ValueError, KeyError, binascii.Error) as error:
                raise ValueError(f"{name}, message {number}: {_why(error)}") from error
    return Saved(dict(messages), _export(folder, data.get("firestore")))


def _why(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no {error}"
    return str(error) or type(error).__name__


def _export(folder: Path, named: object) -> Path:
    """The Firestore export the state names, which must be there: restoring none would lose the
    ledger and the accounts for good at the next save."""
    if not isinstance(named, str) or not named:
        raise ValueError("it names no Firestore export")
    path = (folder / named).resolve()
    if not path.is_relative_to((folder / FIRESTORE).resolve()) or not path.is_file():
        raise ValueError(f"the Firestore export it names ({named}) is not there")
    return path


def restore(publisher: Any, saved: Saved, queues: Iterable[Queue]) -> None:
    """Each saved message back to its queue's topic, attributes and ordering key included."""
    for queue in queues:
        messages = [_message(entry) for entry in saved.messages.get(queue.name, [])]
        for batch in _batches(messages):
            publisher.api.publish(topic=queue.topic, messages=batch, timeout=CALL_SECONDS)


def _batches(messages: list[PubsubMessage]) -> Iterable[list[PubsubMessage]]:
    """Publish requests within Pub/Sub's limits (a message bigger than the byte bound alone)."""
    batch: list[PubsubMessage] = []
    size = 0
    for message in messages:
        length = len(message.data)
        if batch and (len(batch) == PUBLISH_BATCH or size + length > PUBLISH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += length
    if batch:
        yield batch


def _message(entry: object) -> PubsubMessage:
    if not isinstance(entry, dict):
        raise TypeError("a message is an object")
    data = entry["data"]
    attributes = entry.get("attributes", {})
    ordering_key = entry.get("ordering_key", "")
    if not isinstance(data, str):
        raise TypeError("`data` is not base64 text")
    if not isinstance(attributes, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in attributes.items()
    ):
        raise TypeError("`attributes` is not an object of strings")
    if not isinstance(ordering_key, str):
        raise TypeError("`ordering_key` is not a string")
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error as error:
        raise ValueError(f"`data` is not base64 ({error})") from error
    return PubsubMessage(data=decoded, attributes=attributes, ordering_key=ordering_key)


def drain(subscriber: Any, queue: Queue, since: datetime) -> list[dict[str, Any]]:
    """Every message not acknowledged on the queue's subscription, none acknowledged now (the
    emulator stops next). A push subscription is made a pull one first, so no push takes one
    meanwhile. A message pushed or pulled and not answered (deliver retrying it, or working on
    it at the stop) stays leased to that delivery until its ack deadline, and no pull sees it:
    seeking the subscription back to `since` (before the emulator started) marks every message
    it still holds unacknowledged again, leases ended. Acknowledged ones are not retained, so
    they stay gone."""
    if queue.push:
        subscriber.modify_push_config(
            request={"subscription": queue.subscription, "push_config": {}},
            timeout=CALL_SECONDS,
        )
    subscriber.seek(
        request={"subscription": queue.subscription, "time": since}, timeout=CALL_SECONDS
    )
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


class InUse(Exception):
    pass


# What make run keeps in its folder, and nothing else: `clean` removes these only.
KEPT = (STATE, RUN, LOCK, KEY)
TEMPORARY = tuple(f".{name}." for name in (STATE, RUN, KEY))  # write_atomically's temp files
EXPORT = "export-"  # export_firestore's folders in firestore/


def clean(folder: Path) -> list[str]:
    """Forget what make run kept in `folder` (the next make run starts from nothing): only its
    own files, then the folder if that left it empty. The names of anything else it holds,
    left in place (LOCAL_STATE_DIR may name a folder holding more). InUse while a make run owns
    the folder."""
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise InUse(f"{folder} is not a folder")
    claim = Claim(folder)
    if not claim.take():
        owner = live_run(folder) or {}
        raise InUse(f"a make run (pid {owner.get('pid', '?')}) uses {folder}: stop it first")
    try:
        for entry in folder.iterdir():
            ours = entry.name in KEPT or entry.name.startswith(TEMPORARY)
            if ours and (entry.is_symlink() or not entry.is_dir()):
                entry.unlink(missing_ok=True)
        exports = folder / FIRESTORE
        if exports.is_dir() and not exports.is_symlink():
            for export in exports.iterdir():
                if export.name.startswith(EXPORT) and export.is_dir() and not export.is_symlink():
                    shutil.rmtree(export)
            if not any(exports.iterdir()):
                exports.rmdir()
    finally:
        claim.release()
        (folder / LOCK).unlink(missing_ok=True)
    left = sorted(_listed(folder))
    if not left:
        folder.rmdir()
    return left


def _listed(folder: Path) -> Iterable[str]:
    for entry in folder.iterdir():
        if entry.name == FIRESTORE and entry.is_dir() and not entry.is_symlink():
            yield from (f"{FIRESTORE}/{inner.name}" for inner in entry.iterdir())
        else:
            yield entry.name
