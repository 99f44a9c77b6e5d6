"""`make run`: the whole pipeline on this machine, until Ctrl-C.

Starts the Pub/Sub and Firestore emulators, provisions the topics and the push subscriptions on
it, serves `ingest` and `deliver` with functions-framework (deliver's delivery ledger on the
Firestore emulator), and prints a curl that sends a sample identify and Order Completed. Without
SaaSquatch credentials `deliver` runs dry (the calls show in its log); with
`SAASQUATCH_TENANT_ALIAS` and `SAASQUATCH_API_KEY` set it delivers for real.

The reverse direction runs too: `saasquatch_webhook` checks signatures against a local key's
JWKS (the banner prints the command that signs and posts a sample webhook with it) and
`forward` sends to a local Segment that prints each message, or, with `SEGMENT_WRITE_KEY` set,
to Segment itself (`SEGMENT_API_BASE_URL`).

Everything it starts stops with it: on Ctrl-C, SIGTERM or SIGHUP (the terminal closed) it stops
them itself, and if it is killed outright a watchdog (`tools.watchdog`) stops them.

Ports: `INGEST_PORT` (8080), `DELIVER_PORT` (8081), `WEBHOOK_PORT` (8082), `FORWARD_PORT`
(8083), `EMULATOR_PORT` (8085), `FIRESTORE_PORT` (8086). Every other setting is passed to the
services as it is in the environment (docs/configuration.md).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from common.settings import ConfigError
from stream.forward_settings import ForwardSettings
from stream.receive_settings import WebhookSettings
from subscription.deliver_settings import DeliverSettings
from subscription.ingest_settings import IngestSettings
from tools import stop_on_interrupt
from tools.emulator import Emulator, FirestoreEmulator, missing_prerequisite
from tools.local_stream import LOCAL_KID, LOCAL_WRITE_KEY, LocalJwks, LocalSegment
from tools.processes import FunctionServer, Watchdog, port_in_use, port_owner
from tools.provision import ProvisionError, PubSubLayout, provision

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "identify_and_order.json"
WEBHOOK_SAMPLE = ROOT / "samples" / "webhook_reward_created.json"
LOCAL_PROJECT = "local-project"
LOCAL_TOKEN = "local-dev-token"


@dataclass(frozen=True)
class Ports:
    ingest: int
    deliver: int
    webhook: int
    forward: int
    emulator: int
    firestore: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        return cls(
            int(env.get("INGEST_PORT", 8080)),
            int(env.get("DELIVER_PORT", 8081)),
            int(env.get("WEBHOOK_PORT", 8082)),
            int(env.get("FORWARD_PORT", 8083)),
            int(env.get("EMULATOR_PORT", 8085)),
            int(env.get("FIRESTORE_PORT", 8086)),
        )

    def named(self) -> dict[str, int]:
        return {
            "INGEST_PORT": self.ingest,
            "DELIVER_PORT": self.deliver,
            "WEBHOOK_PORT": self.webhook,
            "FORWARD_PORT": self.forward,
            "EMULATOR_PORT": self.emulator,
            "FIRESTORE_PORT": self.firestore,
        }


# What a process left by an earlier `make run` has in its command line.
OURS = ("functions_framework", "emulators pubsub", "emulators firestore", "-emulator")


def port_taken(port: int, setting: str) -> str:
    """Why `port` cannot be used, naming a leftover of an earlier run as such."""
    owner = port_owner(port)
    if owner is not None and any(mark in owner[1] for mark in OURS):
        pid, command = owner
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            group = pid
        shown = " ".join(command.split())[:80]
        return (
            f"port {port} is held by a leftover of an earlier make run (pid {pid}: "
            f"{shown}): stop it with `kill -- -{group}`, or set {setting}"
        )
    return f"port {port} is in use: stop what holds it or set {setting}"


class Service(FunctionServer):
    """One entry point; its output is echoed here with a prefix."""

    def start(self, output: int | IO[bytes] = subprocess.PIPE) -> None:
        super().start(output)
        threading.Thread(target=self._echo, args=(self.process,), daemon=True).start()

    def _echo(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"{self.target:<7} | {line.decode(errors='replace').rstrip()}", flush=True)


def say_segment(line: str) -> None:
    print(f"segment | {line}", flush=True)


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


def sample_webhook(webhook_url: str, key: Path) -> str:
    return " ".join(
        [
            ".venv/bin/python -m tools webhooks send",
            shlex.quote(webhook_url),
            shlex.quote(str(WEBHOOK_SAMPLE)),
            "--key",
            shlex.quote(str(key)),
            "--kid",
            LOCAL_KID,
        ]
    )


def _fail(message: str) -> int:
    print(f"make run: {message}", file=sys.stderr, flush=True)
    return 1


def run() -> int:
    problem = missing_prerequisite()
    if problem:
        return _fail(problem)
    try:  # the services would stop at start on a bad setting; say so before starting anything
        # Locally, without a token of your own, ingest accepts the well-known local one.
        has_token = os.environ.get("INGEST_TOKEN") or os.environ.get("INGEST_TOKEN_SECRET")
        ingest = IngestSettings.from_env(
            os.environ if has_token else {**os.environ, "INGEST_TOKEN": LOCAL_TOKEN}
        )
        deliver = DeliverSettings.from_env()
        webhook = WebhookSettings.from_env()
        has_key = os.environ.get("SEGMENT_WRITE_KEY") or os.environ.get("SEGMENT_WRITE_KEY_SECRET")
        forward = ForwardSettings.from_env(
            os.environ if has_key else {**os.environ, "SEGMENT_WRITE_KEY": LOCAL_WRITE_KEY}
        )
    except ConfigError as error:
        return _fail(str(error))
    ports = Ports.from_env(os.environ)
    for name, port in ports.named().items():
        if port_in_use(port):
            return _fail(port_taken(port, name))

    stop_on_interrupt()
    watchdog = Watchdog()
    emulator = Emulator(ports.emulator)
    firestore = FirestoreEmulator(ports.firestore)
    services: list[Service] = []
    local: list[LocalJwks | LocalSegment] = []
    try:
        for each in (emulator, firestore):
            print(f"starting the {each.name} emulator on {each.host} ...", flush=True)
            each.start()
            assert each.pid is not None
            watchdog.watch(each.pid)
        token = (ingest.ingest_tokens or [LOCAL_TOKEN])[0]
        env = {
            **os.environ,
            "PUBSUB_EMULATOR_HOST": emulator.host,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "GOOGLE_CLOUD_PROJECT": ingest.GOOGLE_CLOUD_PROJECT or LOCAL_PROJECT,
            "INGEST_TOKEN": ingest.INGEST_TOKEN or LOCAL_TOKEN,
        }
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host  # for provisioning, in this process
        layout = PubSubLayout(
            project=env["GOOGLE_CLOUD_PROJECT"],
            push_endpoint=f"http://127.0.0.1:{ports.deliver}/",
            topic=ingest.PUBSUB_TOPIC,
            dead_letter_topic=deliver.DEAD_LETTER_TOPIC,
            ordering=ingest.PUBSUB_ORDERING,
            # The emulator now and then strands a message under a retry policy; without one it
            # redelivers a nacked push after about a second.
            retry_policy=False,
        )
        webhooks = PubSubLayout(
            project=env["GOOGLE_CLOUD_PROJECT"],
            push_endpoint=f"http://127.0.0.1:{ports.forward}/",
            topic=webhook.WEBHOOK_TOPIC,
            dead_letter_topic=forward.FORWARD_DEAD_LETTER_TOPIC,
            subscription=f"{webhook.WEBHOOK_TOPIC}-forward",
            retry_policy=False,
        )
        for each_layout in (layout, webhooks):
            for resource, outcome in provision(each_layout):
                print(f"provisioned {resource}: {outcome}", flush=True)

        jwks = LocalJwks(Path(tempfile.mkdtemp(prefix="segment-saasquatch-")))
        local.append(jwks)
        webhook_env = {**env, "WEBHOOK_JWKS_URL": jwks.jwks_url}
        forward_env = dict(env)
        if not has_key:
            segment = LocalSegment(say_segment)
            local.append(segment)
            forward_env |= {
                "SEGMENT_WRITE_KEY": LOCAL_WRITE_KEY,
                "SEGMENT_API_BASE_URL": segment.url,
            }
        services = [
            Service("deliver", env, ports.deliver),
            Service("ingest", env, ports.ingest),
            Service("forward", forward_env, ports.forward),
            Service("saasquatch_webhook", webhook_env, ports.webhook),
        ]
        for service in services:
            service.start()
            assert service.process is not None
            watchdog.watch(service.process.pid)
        for service in services:
            if not service.wait_ready():
                return _fail(f"{service.target} did not start (its output is above)")
        stream = _stream_lines(forward, bool(has_key), services[3].url, jwks, webhooks)
        _banner(deliver, services[1].url, token, layout, env, stream)
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
        for server in local:
            server.close()
        emulator.stop()
        firestore.stop()
        watchdog.close()
        print("stopped: ingest, deliver, saasquatch_webhook, forward and the emulators", flush=True)


def _banner(
    config: DeliverSettings,
    ingest_url: str,
    token: str,
    layout: PubSubLayout,
    env: Mapping[str, str],
    stream: list[str],
) -> None:
    if config.dry_run:
        mode = (
            "deliver runs DRY: each SaaSquatch call is logged below, nothing is sent "
            "(set SAASQUATCH_TENANT_ALIAS and SAASQUATCH_API_KEY to deliver for real)"
        )
    else:
        mode = (
            f"deliver sends to SaaSquatch tenant {config.SAASQUATCH_TENANT_ALIAS} "
            f"at {config.SAASQUATCH_BASE_URL}"
        )
    lines = [
        "",
        "ready.",
        f"  ingest   {ingest_url}   (Segment Webhooks destination: Authorization: Bearer {token})",
        f"  {mode}",
        f"  dead letters: subscription {layout.dead_letter_subscription_name} on the emulator",
        "",
        "send a sample identify and Order Completed:",
        "",
        f"  {sample_curl(ingest_url, token)}",
        "",
        *stream,
        "the operator tools, in another terminal, talk to these emulators with:",
        "",
        *(
            f"  export {name}={env[name]}"
            for name in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")
        ),
        "  .venv/bin/python -m tools dead-letters list",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


def _stream_lines(
    config: ForwardSettings, has_key: bool, webhook_url: str, jwks: LocalJwks, layout: PubSubLayout
) -> list[str]:
    target = (
        f"forward sends to Segment at {config.SEGMENT_API_BASE_URL}"
        if has_key
        else "forward sends to a local Segment: each message shows below as `segment |` "
        "(set SEGMENT_WRITE_KEY to send to Segment)"
    )
    lines = [
        "the reverse direction (SaaSquatch webhooks -> Segment):",
        f"  saasquatch_webhook   {webhook_url}   (checks signatures against a local key's JWKS)",
        f"  {target}",
        f"  dead letters: subscription {layout.dead_letter_subscription_name} on the emulator",
        "",
        "send a sample reward.created, signed as SaaSquatch signs it:",
        "",
        f"  {sample_webhook(webhook_url, jwks.key_path)}",
        "",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(run())
