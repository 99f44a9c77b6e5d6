"""The log-based metrics, dashboard and alert policies that watch a deployment, created or
updated with gcloud from the files in `monitoring/`.

    python -m tools.monitoring --project P [--notification-channels CHANNEL,...]

The files name the services and subscriptions of both directions as placeholders (`NAMES`:
`${INGEST_SERVICE}`, `${DELIVER_SERVICE}`, `${SUBSCRIPTION}`, `${DEAD_LETTER_SUBSCRIPTION}`, and
`${WEBHOOK_SERVICE}`, `${FORWARD_SERVICE}`, `${WEBHOOK_SUBSCRIPTION}`,
`${WEBHOOK_DEAD_LETTER_SUBSCRIPTION}`); they are filled in for this deployment.
Each resource is looked up first and then created, updated, or left alone when it already says
what the file says; one line per resource reports which. Edits made in the console are put back
on the next run: the files are the truth.

Standard library only, since the build runs it in the gcloud image, where gcloud does the calls.
The names default to `tools.registry`'s; the subscriptions' defaults are made from the services'
settings, which need the project's packages: where those cannot be imported (the gcloud image)
the subscriptions must be given, as the build does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools import registry

FILES = Path(__file__).resolve().parent.parent / "monitoring"
DASHBOARD_ID = "segment-saasquatch"
# The user label that finds this project's alert policies again (their names are Google's ids).
POLICY_LABEL = "segment_saasquatch"

Gcloud = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


class MonitoringError(Exception):
    """gcloud refused something; the message has its last line."""


# Watched's fields and options -> the registry's names they default to (and the placeholders
# the files spell them with).
NAMES = {
    "ingest_service": "INGEST_SERVICE",
    "deliver_service": "DELIVER_SERVICE",
    "subscription": "SUBSCRIPTION",
    "dead_letter_subscription": "DEAD_LETTER_SUBSCRIPTION",
    "webhook_service": "WEBHOOK_SERVICE",
    "forward_service": "FORWARD_SERVICE",
    "webhook_subscription": "WEBHOOK_SUBSCRIPTION",
    "webhook_dead_letter_subscription": "WEBHOOK_DEAD_LETTER_SUBSCRIPTION",
}


def _default(name: str) -> Any:
    return field(default_factory=lambda: registry.default(name))


@dataclass(frozen=True)
class Watched:
    """The names of what a deployment's monitoring watches (the build's substitutions)."""

    project: str
    ingest_service: str = _default("INGEST_SERVICE")
    deliver_service: str = _default("DELIVER_SERVICE")
    subscription: str = _default("SUBSCRIPTION")
    dead_letter_subscription: str = _default("DEAD_LETTER_SUBSCRIPTION")
    webhook_service: str = _default("WEBHOOK_SERVICE")
    forward_service: str = _default("FORWARD_SERVICE")
    webhook_subscription: str = _default("WEBHOOK_SUBSCRIPTION")
    webhook_dead_letter_subscription: str = _default("WEBHOOK_DEAD_LETTER_SUBSCRIPTION")
    notification_channels: tuple[str, ...] = field(default_factory=tuple)

    def placeholders(self) -> dict[str, str]:
        return {name: getattr(self, attribute) for attribute, name in NAMES.items()}


@dataclass(frozen=True)
class Resource:
    kind: str  # "log metric", "dashboard" or "alert policy"
    name: str  # the metric's name, the dashboard's id, the policy's label value
    body: dict[str, Any]


class _Placeholders(string.Template):
    # Only upper-case names are ours: the dashboard's `${metric.labels.reason}` is Monitoring's.
    idpattern = r"[A-Z_]+"
    flags = re.RegexFlag(0)


def render(text: str, watched: Watched) -> str:
    """`text` with this deployment's names in place of the placeholders."""
    filled = _Placeholders(text).safe_substitute(watched.placeholders())
    left = re.findall(r"\$\{[A-Z_]+\}", filled)
    if left:
        raise MonitoringError(f"unknown placeholders: {', '.join(sorted(set(left)))}")
    return filled


def resources(watched: Watched, files: Path = FILES) -> list[Resource]:
    """Everything in `files`, for this deployment: metrics first (the rest refers to them)."""

    def load(path: Path) -> dict[str, Any]:
        return json.loads(render(path.read_text(), watched))

    found = [
        Resource("log metric", path.stem, load(path))
        for path in sorted((files / "metrics").glob("*.json"))
    ]
    dashboard = load(files / "dashboard.json")
    dashboard["name"] = f"projects/{watched.project}/dashboards/{DASHBOARD_ID}"
    found.append(Resource("dashboard", DASHBOARD_ID, dashboard))
    for path in sorted((files / "alerts").glob("*.json")):
        policy = load(path)
        if policy.get("userLabels", {}).get(POLICY_LABEL) != path.stem:
            raise MonitoringError(f"{path.name}: userLabels.{POLICY_LABEL} must be {path.stem!r}")
        policy["notificationChannels"] = list(watched.notification_channels)
        found.append(Resource("alert policy", path.stem, policy))
    return found


def covers(current: Any, desired: Any) -> bool:
    """Whether `current` (as the API returns it) already says all that `desired` says: fields
    the API adds are ignored, and a zero or empty value may be left out (proto3 omits them)."""
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return current in (None, {}) and not any(desired.values())
        return all(covers(current.get(key), value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(current, list):
            return current is None and not desired
        return len(current) == len(desired) and all(map(covers, current, desired))
    if current is None:
        return desired in (0, 0.0, "", False, "0s")
    if isinstance(desired, int | float) and isinstance(current, int | float | str):
        try:
            return float(current) == float(desired)
        except ValueError:
            return False
    return current == desired


def run_gcloud(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gcloud", *args], capture_output=True, text=True, check=False)


class Applier:
    """Creates or updates each resource with gcloud, saying what it did."""

    def __init__(self, project: str, gcloud: Gcloud = run_gcloud) -> None:
        self._project = project
        self._gcloud = gcloud
        self._scratch = Path(tempfile.mkdtemp(prefix="monitoring-"))

    def apply(self, resource: Resource) -> str:
        apply = {
            "log metric": self._metric,
            "dashboard": self._dashboard,
            "alert policy": self._policy,
        }[resource.kind]
        return apply(resource)

    def _call(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._gcloud([*args, "--project", self._project, "--quiet"])

    def _must(self, *args: str) -> str:
        done = self._call(*args)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["(no output)"]
            raise MonitoringError(f"gcloud {' '.join(args[:3])}: {lines[-1]}")
        return done.stdout

    def _file(self, resource: Resource, body: dict[str, Any]) -> str:
        path = self._scratch / f"{resource.name}.json"
        path.write_text(json.dumps(body, indent=2))
        return str(path)

    def _current(self, *args: str) -> dict[str, Any] | None:
        done = self._call(*args, "--format", "json")
        if done.returncode != 0 or not done.stdout.strip():
            return None
        found = json.loads(done.stdout)
        return (found[0] if found else None) if isinstance(found, list) else found

    def _metric(self, resource: Resource) -> str:
        current = self._current("logging", "metrics", "describe", resource.name)
        if current is not None and covers(current, resource.body):
            return "up to date"
        verb = "create" if current is None else "update"
        config = self._file(resource, resource.body)
        self._must("logging", "metrics", verb, resource.name, "--config-from-file", config)
        return f"{verb}d"

    def _dashboard(self, resource: Resource) -> str:
        name = resource.body["name"]
        current = self._current("monitoring", "dashboards", "describe", name)
        if current is not None and covers(current, resource.body):
            return "up to date"
        if current is None:
            config = self._file(resource, resource.body)
            self._must("monitoring", "dashboards", "create", "--config-from-file", config)
            return "created"
        config = self._file(resource, {**resource.body, "etag": current.get("etag", "")})
        self._must("monitoring", "dashboards", "update", name, "--config-from-file", config)
        return "updated"

    def _policy(self, resource: Resource) -> str:
        label = f'userLabels.{POLICY_LABEL}="{resource.name}"'
        current = self._current("alpha", "monitoring", "policies", "list", "--filter", label)
        if current is not None and covers(current, resource.body):
            return "up to date"
        policy = self._file(resource, resource.body)
        if current is None:
            self._must("alpha", "monitoring", "policies", "create", "--policy-from-file", policy)
            return "created"
        name = current["name"]
        self._must("alpha", "monitoring", "policies", "update", name, "--policy-from-file", policy)
        return "updated"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.monitoring",
        description="Create or update the metrics, dashboard and alerts of segment-saasquatch.",
    )
    parser.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", ""))
    helps = {
        "subscription": "deliver's push one",
        "dead_letter_subscription": "deliver's dead letters' pull one",
        "webhook_subscription": "forward's push one",
        "webhook_dead_letter_subscription": "forward's dead letters' pull one",
    }
    for attribute, name in NAMES.items():
        option = "--" + attribute.replace("_", "-")
        default = _known_default(name)
        if default is None:
            needs = "required here: its default is made from the services' settings"
            about = f"{helps[attribute]}; {needs}" if attribute in helps else needs
            parser.add_argument(option, required=True, help=about)
        else:
            parser.add_argument(option, default=default, help=helps.get(attribute))
    parser.add_argument(
        "--notification-channels",
        default="",
        help="comma-separated channel names (projects/P/notificationChannels/ID) the alerts use",
    )
    return parser


def _known_default(name: str) -> str | None:
    """The registry's default for `name`, or None where the services' settings, which some
    defaults are made from, cannot be imported (no pydantic in the gcloud image)."""
    try:
        return registry.default(name)
    except ImportError:
        return None


def main(argv: Sequence[str] | None = None, gcloud: Gcloud = run_gcloud) -> int:
    args = _parser().parse_args(argv)
    if not args.project:
        print("monitoring: --project (or GOOGLE_CLOUD_PROJECT) is required", file=sys.stderr)
        return 2
    channels = tuple(name.strip() for name in args.notification_channels.split(",") if name.strip())
    names = {attribute: getattr(args, attribute) for attribute in NAMES}
    watched = Watched(args.project, **names, notification_channels=channels)
    if not channels:
        print("monitoring: no notification channels given: the alerts show in the console only")
    applier = Applier(args.project, gcloud)
    try:
        for resource in resources(watched):
            print(f"{resource.kind} {resource.name}: {applier.apply(resource)}", flush=True)
    except MonitoringError as error:
        print(f"monitoring: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
