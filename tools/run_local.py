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
from contextlib import ExitStack
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
LOCAL_TENANT = "local_tenant"  # whose webhooks saasquatch_webhook takes, without a tenant of yours
STOPPED = "stopped: ingest, deliver, saasquatch_webhook, forward and the emulators"


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

    def of(self, target: str) -> int:
        """The port of the service serving `target`."""
        return {
            "ingest": self.ingest,
            "deliver": self.deliver,
            "saasquatch_webhook": self.webhook,
            "forward": self.forward,
        }[target]


@dataclass(frozen=True)
class Settings:
    """The four services' settings as they will start with them."""

    ingest: IngestSettings
    deliver: DeliverSettings
    webhook: WebhookSettings
    forward: ForwardSettings
    own_write_key: bool  # a Segment write key is set: forward sends to Segment itself

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """ConfigError, naming the variable, for a setting the service would stop at start on."""
        # Locally, without a token of your own, ingest accepts the well-known local one.
        own_token = bool(env.get("INGEST_TOKEN") or env.get("INGEST_TOKEN_SECRET"))
        own_key = bool(env.get("SEGMENT_WRITE_KEY") or env.get("SEGMENT_WRITE_KEY_SECRET"))
        return cls(
            ingest=IngestSettings.from_env(
                env if own_token else {**env, "INGEST_TOKEN": LOCAL_TOKEN}
            ),
            deliver=DeliverSettings.from_env(env),
            webhook=WebhookSettings.from_env(
                env if _names_a_tenant(env) else {**env, "WEBHOOK_TENANT_ALIASES": LOCAL_TENANT}
            ),
            forward=ForwardSettings.from_env(
                env if own_key else {**env, "SEGMENT_WRITE_KEY": LOCAL_WRITE_KEY}
            ),
            own_write_key=own_key,
        )


def _names_a_tenant(env: Mapping[str, str]) -> bool:
    return bool(env.get("WEBHOOK_TENANT_ALIASES") or env.get("SAASQUATCH_TENANT_ALIAS"))


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
    """The sample's curl command; `$INGEST_TOKEN` stays a variable for the shell to fill in."""
    header = f"Authorization: Bearer {token}"
    return " ".join(
        [
            "curl -sS -X POST",
            shlex.quote(ingest_url),
            "-H",
            f'"{header}"' if token.startswith("$") else shlex.quote(header),
            "-H 'Content-Type: application/json'",
            "--data-binary",
            shlex.quote(f"@{SAMPLE}"),
        ]
    )


def sample_webhook(webhook_url: str, key: Path, tenant: str) -> str:
    """The command that signs the sample webhook as one of `tenant`'s, made now."""
    return " ".join(
        [
            ".venv/bin/python -m tools webhooks send",
            shlex.quote(webhook_url),
            shlex.quote(str(WEBHOOK_SAMPLE)),
            "--key",
            shlex.quote(str(key)),
            "--kid",
            LOCAL_KID,
            "--tenant",
            shlex.quote(tenant),
        ]
    )


def _fail(message: str) -> int:
    print(f"make run: {message}", file=sys.stderr, flush=True)
    return 1


def run() -> int:
    """Check what can be checked before starting anything, then `serve` until it ends: what it
    started stops in the reverse order, then one line says so."""
    problem = missing_prerequisite()
    if problem:
        return _fail(problem)
    try:  # the services would stop at start on a bad setting; say so before starting anything
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        return _fail(str(error))
    ports = Ports.from_env(os.environ)
    for name, port in ports.named().items():
        if port_in_use(port):
            return _fail(port_taken(port, name))

    stop_on_interrupt()
    with ExitStack() as stack:  # each step puts the stop of what it starts on the stack
        stack.callback(print, STOPPED, flush=True)
        try:
            return serve(stack, settings, ports)
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
            return 0
        except (RuntimeError, ProvisionError) as error:
            return _fail(str(error))


def serve(stack: ExitStack, settings: Settings, ports: Ports) -> int:
    """Start everything, print the banner, and run until a service stops (1) or Ctrl-C."""
    watchdog = start_watchdog(stack)
    pubsub, firestore = Emulator(ports.emulator), FirestoreEmulator(ports.firestore)
    start_emulator(stack, watchdog, pubsub)
    start_emulator(stack, watchdog, firestore)
    env = service_env(settings, pubsub, firestore)
    layouts = provision_topics(settings, ports, env, pubsub)
    # The local signing key lives as long as the run: its folder goes with the stop.
    key_folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="segment-saasquatch-"))
    jwks = stack.enter_context(LocalJwks(Path(key_folder)))
    segment = None if settings.own_write_key else stack.enter_context(LocalSegment(say_segment))
    services = start_services(stack, watchdog, ports, service_envs(env, jwks, segment))
    for service in services.values():
        if not service.wait_ready():
            return _fail(f"{service.target} did not start (its output is above)")
    print_banner(settings, services, layouts, env, jwks)
    return wait_for_a_stop(services)


def start_watchdog(stack: ExitStack) -> Watchdog:
    """The watchdog, told `done` last (after everything else stopped)."""
    watchdog = Watchdog()
    stack.callback(watchdog.close)
    return watchdog


def start_emulator(stack: ExitStack, watchdog: Watchdog, emulator: Emulator) -> None:
    stack.callback(emulator.stop)
    print(f"starting the {emulator.name} emulator on {emulator.host} ...", flush=True)
    emulator.start()
    assert emulator.pid is not None
    watchdog.watch(emulator.pid)


def service_env(
    settings: Settings, pubsub: Emulator, firestore: FirestoreEmulator
) -> dict[str, str]:
    """This environment, pointed at the emulators, with a project and an ingest token."""
    return {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": pubsub.host,
        "FIRESTORE_EMULATOR_HOST": firestore.host,
        "GOOGLE_CLOUD_PROJECT": settings.ingest.GOOGLE_CLOUD_PROJECT or LOCAL_PROJECT,
        "INGEST_TOKEN": settings.ingest.INGEST_TOKEN or LOCAL_TOKEN,
    }


def provision_topics(
    settings: Settings, ports: Ports, env: Mapping[str, str], pubsub: Emulator
) -> dict[str, PubSubLayout]:
    """Both directions' topics and push subscriptions on the emulator, by the service pushed to."""
    os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.host  # for provisioning, in this process
    layouts = {
        "deliver": PubSubLayout(
            project=env["GOOGLE_CLOUD_PROJECT"],
            push_endpoint=f"http://127.0.0.1:{ports.deliver}/",
            topic=settings.ingest.PUBSUB_TOPIC,
            dead_letter_topic=settings.deliver.DEAD_LETTER_TOPIC,
            ordering=settings.ingest.PUBSUB_ORDERING,
            # The emulator now and then strands a message under a retry policy; without one it
            # redelivers a nacked push after about a second.
            retry_policy=False,
        ),
        "forward": PubSubLayout(
            project=env["GOOGLE_CLOUD_PROJECT"],
            push_endpoint=f"http://127.0.0.1:{ports.forward}/",
            topic=settings.webhook.WEBHOOK_TOPIC,
            dead_letter_topic=settings.forward.FORWARD_DEAD_LETTER_TOPIC,
            subscription=f"{settings.webhook.WEBHOOK_TOPIC}-forward",
            retry_policy=False,
        ),
    }
    for layout in layouts.values():
        for resource, outcome in provision(layout):
            print(f"provisioned {resource}: {outcome}", flush=True)
    return layouts


def service_envs(
    env: Mapping[str, str], jwks: LocalJwks, segment: LocalSegment | None
) -> dict[str, Mapping[str, str]]:
    """Each target's environment, in the order they start: webhook checks against the local
    JWKS; forward, without a Segment write key of yours, sends to the local Segment."""
    forward = dict(env)
    if segment is not None:
        forward |= {"SEGMENT_WRITE_KEY": LOCAL_WRITE_KEY, "SEGMENT_API_BASE_URL": segment.base_url}
    return {
        "deliver": env,
        "ingest": env,
        "forward": forward,
        "saasquatch_webhook": {
            **env,
            "WEBHOOK_JWKS_URL": jwks.jwks_url,
            **({} if _names_a_tenant(env) else {"WEBHOOK_TENANT_ALIASES": LOCAL_TENANT}),
        },
    }


def start_services(
    stack: ExitStack, watchdog: Watchdog, ports: Ports, envs: Mapping[str, Mapping[str, str]]
) -> dict[str, Service]:
    """Each target on its port, watched; by target name. Not yet waited for."""
    services = {target: Service(target, env, ports.of(target)) for target, env in envs.items()}
    for service in services.values():
        stack.callback(service.stop)
        service.start()
        assert service.process is not None
        watchdog.watch(service.process.pid)
    return services


def wait_for_a_stop(services: Mapping[str, Service]) -> int:
    """Until a service ends by itself (1); Ctrl-C ends it with KeyboardInterrupt."""
    while all(service.running for service in services.values()):
        time.sleep(0.5)
    stopped = next(target for target, service in services.items() if not service.running)
    return _fail(f"{stopped} stopped unexpectedly (its output is above)")


def print_banner(
    settings: Settings,
    services: Mapping[str, Service],
    layouts: Mapping[str, PubSubLayout],
    env: Mapping[str, str],
    jwks: LocalJwks,
) -> None:
    config = settings.deliver
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
    ingest_url = services["ingest"].url
    # A token of your own is never printed: the banner and the sample name the variable.
    own = settings.ingest.INGEST_TOKEN not in ("", LOCAL_TOKEN)
    token = "$INGEST_TOKEN" if own else LOCAL_TOKEN
    dead_letters = layouts["deliver"].dead_letter_subscription_name
    webhook_url = services["saasquatch_webhook"].url
    lines = [
        "",
        "ready.",
        f"  ingest   {ingest_url}   (Segment Webhooks destination: Authorization: Bearer {token})",
        f"  {mode}",
        f"  dead letters: subscription {dead_letters} on the emulator",
        "",
        "send a sample identify and Order Completed:",
        "",
        f"  {sample_curl(ingest_url, token)}",
        "",
        *_stream_lines(settings, webhook_url, jwks.key_path, layouts["forward"]),
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
    settings: Settings, webhook_url: str, key: Path, layout: PubSubLayout
) -> list[str]:
    target = (
        f"forward sends to Segment at {settings.forward.SEGMENT_API_BASE_URL}"
        if settings.own_write_key
        else "forward sends to a local Segment: each message shows below as `segment |` "
        "(set SEGMENT_WRITE_KEY to send to Segment)"
    )
    return [
        "the reverse direction (SaaSquatch webhooks -> Segment):",
        f"  saasquatch_webhook   {webhook_url}   (checks signatures against a local key's JWKS)",
        f"  {target}",
        f"  dead letters: subscription {layout.dead_letter_subscription_name} on the emulator",
        "",
        "send a sample reward.created, signed as SaaSquatch signs it:",
        "",
        f"  {sample_webhook(webhook_url, key, sorted(settings.webhook.tenant_aliases)[0])}",
        "",
    ]


if __name__ == "__main__":
    sys.exit(run())
