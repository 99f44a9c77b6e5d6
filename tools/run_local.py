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

What the emulators hold survives a stop and a start (`tools.local_state`, in `.local/` or
LOCAL_STATE_DIR): saved once the services stopped and before the emulators do, restored after
provisioning. One make run at a time keeps a state folder; a second one says where the first
runs, or, with `PORTS=auto`, starts beside it on free ports and keeps nothing.
`python -m tools.run_local --clean` (make clean-local) forgets the state.

Ports: `INGEST_PORT` (8080), `DELIVER_PORT` (8081), `WEBHOOK_PORT` (8082), `FORWARD_PORT`
(8083), `EMULATOR_PORT` (8085), `FIRESTORE_PORT` (8086); `PORTS=auto`: free ones for those not
set. Every other setting is passed to the services as it is in the environment
(docs/configuration.md).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import google.cloud.pubsub_v1 as pubsub_v1

from common.settings import ConfigError
from stream.forward_settings import ForwardSettings
from stream.receive_settings import WebhookSettings
from subscription.deliver_settings import DeliverSettings
from subscription.ingest_settings import IngestSettings
from tools import cause, plural, stop_on_interrupt
from tools.emulator import Emulator, FirestoreEmulator, missing_prerequisite
from tools.local_state import (
    KEY,
    Claim,
    InUse,
    Queue,
    Saved,
    UnreadableState,
    clean,
    drain,
    export_firestore,
    live_run,
    load,
    record_run,
    restore,
    save,
    state_folder,
)
from tools.local_stream import LOCAL_KID, LOCAL_WRITE_KEY, LocalJwks, LocalSegment
from tools.processes import (
    RUN_TAG,
    FunctionServer,
    Watchdog,
    free_port,
    groups_of_run,
    is_make_run,
    port_in_use,
    port_owner,
    run_of,
)
from tools.provision import ProvisionError, PubSubLayout, provision
from tools.pubsub_clients import subscriber_client

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
    def from_env(cls, env: Mapping[str, str], auto: bool = False) -> Ports:
        """Each port from its variable, else its default, or with `auto` a free one."""

        def port(name: str, default: int) -> int:
            if env.get(name):
                return int(env[name])
            return free_port() if auto else default

        return cls(
            port("INGEST_PORT", 8080),
            port("DELIVER_PORT", 8081),
            port("WEBHOOK_PORT", 8082),
            port("FORWARD_PORT", 8083),
            port("EMULATOR_PORT", 8085),
            port("FIRESTORE_PORT", 8086),
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

    def urls(self) -> dict[str, str]:
        targets = ("ingest", "deliver", "saasquatch_webhook", "forward")
        return {target: f"http://127.0.0.1:{self.of(target)}/" for target in targets}


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


def ports_taken(busy: Mapping[str, int]) -> str:
    """Why the ports in `busy` (by variable) cannot be used, in one line: a live make run is
    named as one; a leftover (what a make run started, that make run gone) with one command
    that stops every process group of it, not only the one on the first port."""
    leftover: tuple[int, str, int, str] | None = None
    groups: dict[int, None] = {}  # ordered
    for name, port in busy.items():
        owner = port_owner(port)
        if owner is None:
            continue
        pid, command = owner
        run = run_of(pid)
        if run is not None and is_make_run(run):
            return (
                f"port {port} is used by a running make run (pid {run}): stop it (Ctrl-C in its "
                f"terminal, or `kill {run}`), set {name}, or start beside it with "
                "`make run PORTS=auto`"
            )
        if run is not None:
            found = groups_of_run(run)
        elif any(mark in command for mark in OURS):  # started by an older make run, untagged
            found = [_group(pid)]
        else:
            continue
        leftover = leftover or (port, name, pid, command)
        groups.update(dict.fromkeys(found))
    if leftover is not None:
        port, name, pid, command = leftover
        shown = " ".join(command.split())[:80]
        stop = "kill -- " + " ".join(f"-{group}" for group in groups)
        return (
            f"port {port} is held by a leftover of an earlier make run (pid {pid}: {shown}): "
            f"stop all of it with `{stop}`, or set {name}"
        )
    name, port = next(iter(busy.items()))
    return (
        f"port {port} is in use: stop what holds it, set {name}, or use free ports with "
        "`make run PORTS=auto`"
    )


def _group(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return pid


def already_running(owner: Mapping[str, Any] | None, folder: Path) -> str:
    """The line a second make run says when the first one keeps `folder`."""
    if owner is None:
        return f"another make run is starting with {folder}: wait for it, or `make run PORTS=auto`"
    urls = owner.get("urls", {})
    shown = ", ".join(f"{target} {url}" for target, url in urls.items())
    pid = owner.get("pid")
    return (
        f"already running (pid {pid}): {shown}; stop it with Ctrl-C in its terminal (or "
        f"`kill {pid}`), or start another beside it with `make run PORTS=auto`"
    )


@dataclass(frozen=True)
class LocalState:
    """Where this run keeps what survives it: `saved` is what the last clean stop left, restored
    after provisioning. `keeps` is False when another make run owns the folder (PORTS=auto)."""

    folder: Path
    keeps: bool
    saved: Saved | None = None
    owner: Mapping[str, Any] | None = None  # the make run keeping it, when not this one


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


def run(argv: Sequence[str] = ()) -> int:
    """Check what can be checked before starting anything, then `serve` until it ends: what it
    started stops in the reverse order, then one line says so."""
    folder = state_folder(os.environ)
    if list(argv) == ["--clean"]:
        return clean_local(folder)
    problem = missing_prerequisite()
    if problem:
        return _fail(problem)
    try:  # the services would stop at start on a bad setting; say so before starting anything
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        return _fail(str(error))
    auto = os.environ.get("PORTS", "").strip()
    if auto not in ("", "auto"):
        return _fail(f"PORTS={auto}: the one value it takes is `auto` (free ports)")
    claim = Claim(folder)
    if not claim.take():
        owner = live_run(folder)
        if not auto:
            return _fail(already_running(owner, folder))
        state = LocalState(folder, keeps=False, owner=owner)
    else:
        try:
            state = LocalState(folder, keeps=True, saved=load(folder))
        except UnreadableState as error:
            claim.release()
            return _fail(f"{error}: move it away, or `make clean-local` to start from nothing")
    try:
        return run_with(settings, Ports.from_env(os.environ, auto=bool(auto)), state)
    finally:
        claim.release()


def clean_local(folder: Path) -> int:
    existed = folder.exists()
    try:
        left = clean(folder)
    except (InUse, OSError) as error:
        print(f"make clean-local: {cause(error)}", file=sys.stderr, flush=True)
        return 1
    if left:
        print(
            f"removed what make run kept in {folder}: the next make run starts from nothing; "
            f"left the rest of {folder}: {', '.join(left)}",
            flush=True,
        )
    elif existed:
        print(f"removed {folder}: the next make run starts from nothing", flush=True)
    else:
        print(f"nothing kept in {folder}: the next make run starts from nothing", flush=True)
    return 0


def run_with(settings: Settings, ports: Ports, state: LocalState) -> int:
    busy = {name: port for name, port in ports.named().items() if port_in_use(port)}
    if busy:
        return _fail(ports_taken(busy))
    if state.keeps:
        record_run(state.folder, run_record(ports, state.folder))
    os.environ[RUN_TAG] = str(os.getpid())  # every process started from here carries it

    stop_on_interrupt()
    with ExitStack() as stack:  # each step puts the stop of what it starts on the stack
        stack.callback(print, STOPPED, flush=True)
        try:
            return serve(stack, settings, ports, state)
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
            return 0
        except (RuntimeError, ProvisionError) as error:
            return _fail(str(error))


def run_record(ports: Ports, folder: Path) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "ports": ports.named(),
        "urls": ports.urls(),
        "state": str(folder),
    }


def serve(stack: ExitStack, settings: Settings, ports: Ports, state: LocalState) -> int:
    """Start everything, print the banner, and run until a service stops (1) or Ctrl-C."""
    watchdog = start_watchdog(stack)
    began = datetime.now(UTC)  # before the emulators start: every message is newer
    saved = state.saved
    imported = (f"--import-data={saved.firestore}",) if saved and saved.firestore else ()
    pubsub = Emulator(ports.emulator)
    firestore = FirestoreEmulator(ports.firestore, options=imported)
    start_emulator(stack, watchdog, pubsub)
    start_emulator(stack, watchdog, firestore)
    env = service_env(settings, pubsub, firestore)
    layouts = provision_topics(settings, ports, env, pubsub)
    if state.keeps:
        project = env["GOOGLE_CLOUD_PROJECT"]
        keep_state(stack, state, queues_of(layouts), firestore, project, began)
    jwks = stack.enter_context(LocalJwks(state.folder / KEY))
    segment = None if settings.own_write_key else stack.enter_context(LocalSegment(say_segment))
    services = start_services(stack, watchdog, ports, service_envs(env, jwks, segment))
    for service in services.values():
        if not service.wait_ready():
            return _fail(f"{service.target} did not start (its output is above)")
    print_banner(settings, services, layouts, env, jwks, state)
    return wait_for_a_stop(services)


def queues_of(layouts: Mapping[str, PubSubLayout]) -> list[Queue]:
    """Where messages wait in each direction: its dead letters, and what its push subscription
    has not delivered yet."""
    queues = []
    for service, layout in layouts.items():
        queues += [
            Queue(
                f"{service} dead letters",
                layout.subscription_path(layout.dead_letter_subscription_name),
                layout.topic_path(layout.dead_letter_topic),
            ),
            Queue(
                f"{service} waiting",
                layout.subscription_path(layout.push_subscription_name),
                layout.topic_path(layout.topic),
                push=True,
            ),
        ]
    return queues


def keep_state(
    stack: ExitStack,
    state: LocalState,
    queues: Sequence[Queue],
    firestore: FirestoreEmulator,
    project: str,
    began: datetime,
) -> None:
    """Restore what the last stop saved, then put the save on the stack: it runs once the
    services stopped, before the emulators do. A restore cut short saves nothing (see
    tools.local_state)."""
    if state.saved is not None:
        restore(pubsub_v1.PublisherClient(), state.saved, queues)
    say_restored(state, firestore, project)
    stack.callback(save_state, state.folder, queues, firestore, project, began)


def say_restored(state: LocalState, firestore: FirestoreEmulator, project: str) -> None:
    saved = state.saved
    if saved is None:
        print(f"nothing to restore from {state.folder} (a fresh start)", flush=True)
        return
    documents = count_documents(firestore, project)
    print(
        f"restored from {state.folder}: "
        f"{plural(saved.count(' dead letters'), 'dead letter')} "
        f"(deliver {len(saved.messages.get('deliver dead letters', []))}, "
        f"forward {len(saved.messages.get('forward dead letters', []))}), "
        f"{plural(saved.count(' waiting'), 'waiting message')}, "
        f"{plural(documents, 'Firestore document')} (ledger, accounts)",
        flush=True,
    )


def count_documents(firestore: FirestoreEmulator, project: str) -> int:
    """The documents in the emulator's top-level collections."""
    from google.cloud import firestore as client_library

    os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.host
    client = client_library.Client(project=project)
    return sum(
        int(result[0].value)
        for collection in client.collections()
        for result in collection.count().get()
    )


def save_state(
    folder: Path,
    queues: Sequence[Queue],
    firestore: Emulator,
    project: str,
    began: datetime,
    subscriber: Any = None,
) -> None:
    """Drain every queue (every message not acknowledged since `began`), export Firestore, and
    commit both as the new state; a failure anywhere keeps the last one whole and says so."""
    print(f"saving to {folder} ...", flush=True)
    try:
        subscriber = subscriber or subscriber_client()
        messages = {queue.name: drain(subscriber, queue, began) for queue in queues}
        save(folder, messages, export_firestore(folder, firestore.host, project))
    except Exception as error:
        print(
            f"make run: not saved ({cause(error)}); {folder} keeps the last stop's state",
            flush=True,
        )
        return
    dead = sum(len(found) for name, found in messages.items() if name.endswith(" dead letters"))
    waiting = sum(len(found) for name, found in messages.items() if name.endswith(" waiting"))
    print(
        f"saved to {folder}: {plural(dead, 'dead letter')}, "
        f"{plural(waiting, 'waiting message')} and the Firestore documents",
        flush=True,
    )


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
    state: LocalState,
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
        state_line(state),
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


def state_line(state: LocalState) -> str:
    if state.keeps:
        return (
            f"state: kept in {state.folder} (dead letters, waiting messages, the ledger) for "
            "the next make run; `make clean-local` starts from nothing"
        )
    pid = (state.owner or {}).get("pid", "?")
    return (
        f"state: NOT kept (make run pid {pid} keeps {state.folder}): what these emulators hold "
        "goes with this run's stop"
    )


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
    sys.exit(run(sys.argv[1:]))
