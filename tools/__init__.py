"""Operator tools, `python -m tools COMMAND`: run (make run), provision, backfill, dead-letters.

They read the same environment variables as the services, with the same defaults, so a command
run next to a deployment's configuration talks to its topics. Those defaults, and the names that
are no service's setting (subscriptions, Cloud Run services), come from `tools.registry`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
from collections.abc import Mapping


def stop_on_interrupt() -> None:
    """Ctrl-C, SIGTERM and SIGHUP (the terminal closed) raise KeyboardInterrupt, so a command
    stops cleanly whichever way it is stopped.

    Set explicitly: a shell that starts a command in the background (a script, `make`, CI) hands
    it SIGINT set to "ignore", and Python then installs no handler of its own.

    Only the first signal interrupts: the stop then runs to its end. A signal to the whole
    process group (`kill -TERM -- -PGID`) reaches the command twice, once from the sender and
    once from `make` passing it on, and the second must not break the cleanup in half (what
    is still left then is the watchdog's to stop).
    """
    global _signals
    _signals = itertools.count()
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)


# Signals seen since `stop_on_interrupt`. Counted by `next`, one step in C: a handler can be
# interrupted by the next signal's handler between any two Python steps, so it must take no
# lock (a `threading.Event` did, and two signals at once deadlocked the stop for good).
_signals = itertools.count()


def _interrupted(_signum: int, _frame: object) -> None:
    if next(_signals):
        return
    raise KeyboardInterrupt


def env_flag(value: str | None) -> bool:
    """An environment switch the way the settings read booleans."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def setting(name: str, env: Mapping[str, str] = os.environ) -> str:
    """The variable from `env`, else the services' default for it (any of the four services'
    variables, or a name declared in `tools.registry`); KeyError for anything else."""
    from tools import registry

    return registry.setting(name, env)


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", ""))


def add_raw_events_arguments(parser: argparse.ArgumentParser, ordering_help: str) -> None:
    """--topic and --ordering, defaulting to ingest's PUBSUB_TOPIC and PUBSUB_ORDERING."""
    parser.add_argument("--topic", default=setting("PUBSUB_TOPIC"), help="the raw-events topic")
    parser.add_argument(
        "--ordering",
        action=argparse.BooleanOptionalAction,
        default=env_flag(setting("PUBSUB_ORDERING")),
        help=ordering_help,
    )


def emulator_unreachable(variable: str = "PUBSUB_EMULATOR_HOST", seconds: float = 2.0) -> str:
    """A line saying the emulator named by `variable` does not answer, or "" (also when no
    emulator is named): without this a client waits a minute before it gives up."""
    import socket

    host = os.environ.get(variable, "")
    if not host:
        return ""
    name, _, port = host.rpartition(":")
    try:
        socket.create_connection((name or "127.0.0.1", int(port)), timeout=seconds).close()
    except (OSError, ValueError):
        return f"nothing answers at {variable}={host}: is the emulator running (make run)?"
    return ""


def preflight() -> str:
    """Why Pub/Sub cannot be reached at all, in one line ("" when it may be): an emulator that
    does not answer, or no Google credentials when there is no emulator."""
    unreachable = emulator_unreachable()
    if unreachable or os.environ.get("PUBSUB_EMULATOR_HOST"):
        return unreachable
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        return (
            "no Google credentials: run `gcloud auth application-default login` "
            "(or set PUBSUB_EMULATOR_HOST to use the emulator)"
        )
    return ""


def cause(error: BaseException) -> str:
    """The first underlying cause of a failed call, in one line an operator can act on."""
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError

    from subscription.ledger import LedgerUnavailable

    while isinstance(error, exceptions.RetryError) and error.cause is not None:
        error = error.cause
    first = (str(getattr(error, "message", "") or error).strip().splitlines() or [""])[0][:300]
    if isinstance(error, DefaultCredentialsError):
        return "no Google credentials: run `gcloud auth application-default login`"
    if isinstance(error, LedgerUnavailable):
        return f"the delivery ledger (Firestore) cannot be read: {first}"
    if isinstance(error, exceptions.NotFound):
        return f"not found: {first}"
    if isinstance(error, exceptions.PermissionDenied | exceptions.Forbidden):
        return f"permission denied: {first}"
    if isinstance(
        error, exceptions.ServiceUnavailable | exceptions.DeadlineExceeded | exceptions.RetryError
    ):
        return emulator_unreachable() or f"Pub/Sub did not answer: {first}"
    if isinstance(error, exceptions.GoogleAPICallError):
        return f"Pub/Sub refused: {first}"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def plural(count: int, singular: str, plural_form: str = "") -> str:
    """`1 message`, `2 messages`."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"
