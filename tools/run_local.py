"""`make run`: the whole pipeline on this machine, until Ctrl-C.

Starts the Pub/Sub emulator, provisions the topics and the push subscription on it, serves `ingest`
and `deliver` with functions-framework, and prints a curl that sends a sample identify and Order
Completed. Without SaaSquatch credentials `deliver` runs dry (the calls show in its log); with
`SAASQUATCH_TENANT_ALIAS` and `SAASQUATCH_API_KEY` set it delivers for real.

Ports: `INGEST_PORT` (8080), `DELIVER_PORT` (8081), `EMULATOR_PORT` (8085). Every other setting is
passed to the services as it is in the environment (see the README's Configuration).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tools import env_flag
from tools.emulator import Emulator, missing_prerequisite
from tools.processes import port_in_use, stop_group
from tools.provision import ProvisionError, PubSubLayout, provision

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "identify_and_order.json"
LOCAL_PROJECT = "local-project"
LOCAL_TOKEN = "local-dev-token"


@dataclass(frozen=True)
class Ports:
    ingest: int
    deliver: int
    emulator: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        return cls(
            int(env.get("INGEST_PORT", 8080)),
            int(env.get("DELIVER_PORT", 8081)),
            int(env.get("EMULATOR_PORT", 8085)),
        )


class Service:
    """One entry point served by functions-framework; its output is echoed with a prefix."""

    def __init__(self, target: str, port: int, env: Mapping[str, str]) -> None:
        self.target = target
        self.url = f"http://127.0.0.1:{port}/"
        self._port = port
        self._command = [
            sys.executable,
            "-m",
            "functions_framework",
            f"--target={target}",
            f"--port={port}",
        ]
        self._env = dict(env)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self._command,
            cwd=ROOT,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the group
        )
        threading.Thread(target=self._echo, daemon=True).start()

    def _echo(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            print(f"{self.target:<7} | {line.decode(errors='replace').rstrip()}", flush=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """True once the port accepts connections (no request, so no noise in the log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            if port_in_use(self._port):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self._process is not None:
            stop_group(self._process)


def sample_curl(ingest_url: str, token: str) -> str:
    return " ".join(
        [
            "curl -sS -X POST",
            shlex.quote(ingest_url),
            "-H",
            shlex.quote(f"Authorization: Bearer {token}"),
            "-H 'Content-Type: application/json'",
            "--data-binary",
            shlex.quote(f"@{SAMPLE}"),
        ]
    )


def _fail(message: str) -> int:
    print(f"make run: {message}", file=sys.stderr, flush=True)
    return 1


def _stop_on_signal(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run(env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    problem = missing_prerequisite()
    if problem:
        return _fail(problem)
    ports = Ports.from_env(env)
    for name, port in (("INGEST_PORT", ports.ingest), ("DELIVER_PORT", ports.deliver)):
        if port_in_use(port):
            return _fail(f"port {port} is in use: stop what holds it or set {name}")
    if port_in_use(ports.emulator):
        return _fail(f"port {ports.emulator} is in use: stop what holds it or set EMULATOR_PORT")

    # Explicit handlers: a shell that starts us in the background sets SIGINT to "ignore".
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    emulator = Emulator(ports.emulator)
    services: list[Service] = []
    try:
        print(f"starting the Pub/Sub emulator on {emulator.host} ...", flush=True)
        emulator.start()
        env.update(
            PUBSUB_EMULATOR_HOST=emulator.host,
            GOOGLE_CLOUD_PROJECT=env.get("GOOGLE_CLOUD_PROJECT") or LOCAL_PROJECT,
            INGEST_TOKEN=env.get("INGEST_TOKEN") or LOCAL_TOKEN,
        )
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host  # for provisioning, in this process
        layout = PubSubLayout(
            project=env["GOOGLE_CLOUD_PROJECT"],
            push_endpoint=f"http://127.0.0.1:{ports.deliver}/",
            topic=env.get("PUBSUB_TOPIC") or "segment-events",
            dead_letter_topic=env.get("DEAD_LETTER_TOPIC") or "segment-events-dead-letter",
            ordering=env_flag(env.get("PUBSUB_ORDERING")),
            # The emulator now and then strands a message under a retry policy; without one it
            # redelivers a nacked push after about a second.
            retry_policy=False,
        )
        for resource, outcome in provision(layout):
            print(f"provisioned {resource}: {outcome}", flush=True)

        services = [
            Service("deliver", ports.deliver, env),
            Service("ingest", ports.ingest, env),
        ]
        for service in services:
            service.start()
        for service in services:
            if not service.wait_ready():
                return _fail(f"{service.target} did not start (its output is above)")
        _banner(env, services[1].url, layout)
        while all(service.running for service in services):
            time.sleep(0.5)
        stopped = next(service.target for service in services if not service.running)
        return _fail(f"{stopped} stopped unexpectedly (its output is above)")
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except (RuntimeError, ProvisionError) as error:
        return _fail(str(error))
    finally:
        for service in services:
            service.stop()
        emulator.stop()
        print("stopped: ingest, deliver and the Pub/Sub emulator", flush=True)


def _banner(env: Mapping[str, str], ingest_url: str, layout: PubSubLayout) -> None:
    tenant = env.get("SAASQUATCH_TENANT_ALIAS", "")
    dry = env_flag(env.get("DRY_RUN")) or not tenant
    if dry:
        mode = (
            "deliver runs DRY: each SaaSquatch call is logged below, nothing is sent "
            "(set SAASQUATCH_TENANT_ALIAS and SAASQUATCH_API_KEY to deliver for real)"
        )
    else:
        base = env.get("SAASQUATCH_BASE_URL") or "https://app.referralsaasquatch.com"
        mode = f"deliver sends to SaaSquatch tenant {tenant} at {base}"
    lines = [
        "",
        "ready.",
        f"  ingest   {ingest_url}   (Segment Webhooks destination: Authorization: Bearer "
        f"{env['INGEST_TOKEN']})",
        f"  {mode}",
        f"  dead letters: subscription {layout.dead_letter_subscription_name} on the emulator",
        "",
        "send a sample identify and Order Completed:",
        "",
        f"  {sample_curl(ingest_url, env['INGEST_TOKEN'])}",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(run())
