"""Operator tools, `python -m tools COMMAND`: run (make run), provision, backfill, dead-letters.

They read the same environment variables as the services, with the same defaults, so a command
run next to a deployment's configuration talks to its topics.
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Mapping


def stop_on_interrupt() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, so a command stops cleanly either way.

    Set explicitly: a shell that starts a command in the background (a script, `make`, CI) hands
    it SIGINT set to "ignore", and Python then installs no handler of its own.
    """
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def env_flag(value: str | None) -> bool:
    """An environment switch the way the settings read booleans."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def setting(name: str, env: Mapping[str, str] = os.environ) -> str:
    """The variable from `env`, else the services' default for it."""
    from delivery.settings import DeliverSettings
    from ingestion.settings import IngestSettings

    owner = IngestSettings if name in IngestSettings.model_fields else DeliverSettings
    return env.get(name) or owner.default(name)


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", ""))


def add_raw_events_arguments(parser: argparse.ArgumentParser, ordering_help: str) -> None:
    """--topic and --ordering, defaulting to ingest's PUBSUB_TOPIC and PUBSUB_ORDERING."""
    parser.add_argument("--topic", default=setting("PUBSUB_TOPIC"), help="the raw-events topic")
    parser.add_argument(
        "--ordering",
        action=argparse.BooleanOptionalAction,
        default=env_flag(os.environ.get("PUBSUB_ORDERING")),
        help=ordering_help,
    )
