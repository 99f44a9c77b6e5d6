"""The real Google Pub/Sub emulator, started once per test session in its own process group."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Emulator:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            raise RuntimeError("gcloud (Google Cloud SDK with the Pub/Sub emulator) is not on PATH")
        self._process = subprocess.Popen(
            [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port={self.host}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the Java server dies with it
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("the Pub/Sub emulator exited at start (is Java installed?)")
            try:
                if requests.get(f"http://{self.host}/", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Pub/Sub emulator did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=15)
        self._process = None
        # The Java server can outlive the group leader for a moment; wait until the port is free.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)

    def reset(self) -> None:
        requests.post(f"http://{self.host}/reset", timeout=10).raise_for_status()


@contextmanager
def running_emulator(port: int | None = None) -> Iterator[Emulator]:
    emulator = Emulator(port)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
