"""The real Google emulators (`gcloud beta emulators pubsub|firestore`), each in its own process
group.

Used by `make run` and by the tests. Stopping the `gcloud` wrapper alone would leave the Java
server running, so the whole group is signalled.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Self

import requests

from tools.processes import free_port, port_in_use, stop_group

INSTALL_SDK = (
    "the emulators need the Google Cloud SDK: install it "
    "(https://cloud.google.com/sdk/docs/install), then run "
    "`gcloud components install beta pubsub-emulator cloud-firestore-emulator`"
)
INSTALL_JAVA = (
    "the emulators need Java 11 or newer on PATH: install a JRE "
    "(for example `apt-get install default-jre-headless`)"
)


def missing_prerequisite() -> str | None:
    """One line saying what to install, or None when gcloud and Java are both on PATH."""
    if shutil.which("gcloud") is None:
        return INSTALL_SDK
    if shutil.which("java") is None:
        return INSTALL_JAVA
    return None


class Emulator:
    """The Pub/Sub emulator; `FirestoreEmulator` is the same with another name and reset."""

    name = "Pub/Sub"
    command = "pubsub"
    component = "pubsub-emulator"
    environment = "PUBSUB_EMULATOR_HOST"  # the variable its clients find it by

    def __init__(self, port: int | None = None, options: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.options = options  # more of `gcloud beta emulators ... start`'s flags
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process group's leader, while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 90.0) -> None:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            raise RuntimeError(INSTALL_SDK)
        self._process = subprocess.Popen(
            [
                gcloud,
                "beta",
                "emulators",
                self.command,
                "start",
                f"--host-port={self.host}",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the Java server dies with it
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the {self.name} emulator did not start: install it with "
                    f"`gcloud components install beta {self.component}` "
                    f"(or the google-cloud-cli-{self.component} package)"
                )
            try:
                if requests.get(f"http://{self.host}/", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the {self.name} emulator did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        if self._process is None:
            return
        stop_group(self._process, timeout=15)
        self._process = None
        # The Java server can outlive the group leader for a moment; wait until the port is free.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and port_in_use(self.port):
            time.sleep(0.1)

    def reset(self, project: str = "") -> None:
        """Forget every topic and subscription (the Pub/Sub emulator is not per project)."""
        requests.post(f"http://{self.host}/reset", timeout=10).raise_for_status()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FirestoreEmulator(Emulator):
    name = "Firestore"
    command = "firestore"
    component = "cloud-firestore-emulator"
    environment = "FIRESTORE_EMULATOR_HOST"

    def reset(self, project: str = "") -> None:
        """Delete every document of `project`'s default database."""
        url = f"http://{self.host}/emulator/v1/projects/{project}/databases/(default)/documents"
        requests.delete(url, timeout=10).raise_for_status()


def running_emulator(port: int | None = None) -> Emulator:
    """`with running_emulator() as emulator:`: started, and stopped after."""
    return Emulator(port)


def running_firestore(port: int | None = None) -> FirestoreEmulator:
    return FirestoreEmulator(port)
