"""The log-based metrics, dashboard and alert policies that watch a deployment, created or
updated with gcloud from the files in `monitoring/`.

    python -m tools.monitoring --project P [--notification-channels CHANNEL,...]
        [--deployment NAME] [--retry-seconds N]

The files name the services and subscriptions of both directions as placeholders (`NAMES`:
`${INGEST_SERVICE}`, `${DELIVER_SERVICE}`, `${SUBSCRIPTION}`, `${DEAD_LETTER_SUBSCRIPTION}`, and
`${WEBHOOK_SERVICE}`, `${FORWARD_SERVICE}`, `${WEBHOOK_SUBSCRIPTION}`,
`${WEBHOOK_DEAD_LETTER_SUBSCRIPTION}`); they are filled in for this deployment.
Each resource is looked up first and then created, updated, or left alone when it already says
what the file says; one line per resource reports which. Edits made in the console are put back
on the next run: the files are the truth.

A second deployment in the project (staging beside live) names its own: `--deployment NAME` (the
build's `_DEPLOYMENT`) is added to every metric's name and each reference to it, the dashboard's
id and title, and the policies' label and titles. Without it the names are the files' own, as
they were before there was a second deployment: the Logging API cannot rename a metric.

Alert policies come last and wait for their metrics: Cloud Monitoring answers 404 "Cannot find
metric(s)" for a log-based metric created in the last minutes ("could take up to 10 minutes"), so
that answer, and only that one, is asked again every 30 s (`--retry-seconds`), 20 times at most
per run.

Standard library only, since the build runs it in the gcloud image on gcloud's bundled Python
(that image has no `python3` on PATH; docs/deploy.md), where gcloud does the calls.
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools import registry

FILES = Path(__file__).resolve().parent.parent / "monitoring"
DASHBOARD_ID = "segment-saasquatch"
# The user label that finds this project's alert policies again (their names are Google's ids).
POLICY_LABEL = "segment_saasquatch"
# Every display name (the dashboard's, each policy's) starts with it; a deployment's name follows.
PRODUCT = "segment-saasquatch"
# A deployment's name: lower case (a policy's label values must be), and short enough that the
# longest metric name (100 characters at most) and label value (63 at most) stay within Cloud
# Logging's and Cloud Monitoring's limits, with room for longer files.
DEPLOYMENT = re.compile(r"[a-z][a-z0-9_-]{0,23}")
DEPLOYMENT_RULE = (
    "give 1 to 24 lower-case letters, digits, '-' or '_', starting with a letter "
    "(it goes into metric names and label values)"
)
# A log-based metric, as dashboards and policies name it.
USER_METRIC = re.compile(r"logging\.googleapis\.com/user/([\w-]+)")

Gcloud = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]
Sleep = Callable[[float], None]

# Cloud Monitoring's answer for a metric it does not see yet (a log-based metric is visible to
# alert policies some minutes after it is created): "Cannot find metric(s) that match type = ...
# If a metric was created recently, it could take up to 10 minutes to become available."
METRIC_NOT_YET_VISIBLE = "Cannot find metric(s)"
# How long a run waits for such metrics, in all: the 10 minutes Monitoring names (20 waits of
# the registry's MONITORING_RETRY_SECONDS, the build's _MONITORING_RETRY_SECONDS; a test's 0).
WAIT_SECONDS = int(registry.default("MONITORING_RETRY_SECONDS"))
WAITS = 20
LONGEST_WAIT_SECONDS = 60


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
    deployment: str = ""

    def __post_init__(self) -> None:
        if self.deployment and not DEPLOYMENT.fullmatch(self.deployment):
            raise MonitoringError(f"deployment {self.deployment!r}: {DEPLOYMENT_RULE}")

    def placeholders(self) -> dict[str, str]:
        return {name: getattr(self, attribute) for attribute, name in NAMES.items()}

    # The names of this deployment's own resources: the files' own without a deployment name.

    def metric_name(self, stem: str) -> str:
        return f"{stem}_{self.deployment}" if self.deployment else stem

    def dashboard_id(self) -> str:
        return f"{DASHBOARD_ID}-{self.deployment}" if self.deployment else DASHBOARD_ID

    def policy_label(self, stem: str) -> str:
        return f"{stem}-{self.deployment}" if self.deployment else stem

    def display_name(self, title: str, where: str) -> str:
        """`title` (which starts with PRODUCT) with the deployment's name after PRODUCT."""
        if not title.startswith(PRODUCT):
            raise MonitoringError(f"{where}: displayName must start with {PRODUCT!r}")
        return f"{PRODUCT} ({self.deployment}){title[len(PRODUCT) :]}" if self.deployment else title


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
    """Everything in `files`, for this deployment, under its names: metrics first (the rest
    refers to them)."""
    metrics = sorted((files / "metrics").glob("*.json"))
    stems = {path.stem for path in metrics}

    def load(path: Path) -> dict[str, Any]:
        def renamed(found: re.Match[str]) -> str:
            if found.group(1) not in stems:
                raise MonitoringError(f"{path.name}: no metric {found.group(1)} in metrics/")
            return f"logging.googleapis.com/user/{watched.metric_name(found.group(1))}"

        return json.loads(USER_METRIC.sub(renamed, render(path.read_text(), watched)))

    found = [Resource("log metric", watched.metric_name(path.stem), load(path)) for path in metrics]
    dashboard = load(files / "dashboard.json")
    dashboard["name"] = f"projects/{watched.project}/dashboards/{watched.dashboard_id()}"
    dashboard["displayName"] = watched.display_name(dashboard["displayName"], "dashboard.json")
    found.append(Resource("dashboard", watched.dashboard_id(), dashboard))
    for path in sorted((files / "alerts").glob("*.json")):
        policy = load(path)
        if policy.get("userLabels", {}).get(POLICY_LABEL) != path.stem:
            raise MonitoringError(f"{path.name}: userLabels.{POLICY_LABEL} must be {path.stem!r}")
        label = watched.policy_label(path.stem)
        policy["userLabels"][POLICY_LABEL] = label
        policy["displayName"] = watched.display_name(policy.get("displayName", ""), path.name)
        policy["enabled"] = True  # one switched off in the console is switched on again
        if watched.notification_channels:  # else the policy keeps the channels it has
            policy["notificationChannels"] = list(watched.notification_channels)
        found.append(Resource("alert policy", label, policy))
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
    """Creates or updates each resource with gcloud, saying what it did. A policy whose metric
    Monitoring does not see yet is tried again after `WAIT_SECONDS`, `WAITS` times in all over
    the run (the waits are shared: the metrics were all created together)."""

    def __init__(
        self,
        project: str,
        gcloud: Gcloud = run_gcloud,
        sleep: Sleep = time.sleep,
        waits: int | None = None,
        wait_seconds: float | None = None,
    ) -> None:
        self._project = project
        self._gcloud = gcloud
        self._sleep = sleep
        self._waits = self._waits_left = WAITS if waits is None else waits
        self._wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
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
            raise MonitoringError(f"gcloud {' '.join(args[:3])}: {_last_line(done)}")
        return done.stdout

    def _patiently(self, resource: Resource, *args: str) -> None:
        """`_must`, asked again while Monitoring does not see the policy's metric yet."""
        while True:
            done = self._call(*args)
            if done.returncode == 0:
                return
            if METRIC_NOT_YET_VISIBLE not in done.stderr:
                raise MonitoringError(f"gcloud {' '.join(args[:4])}: {_last_line(done)}")
            if self._waits_left == 0:
                waited = self._waits * self._wait_seconds
                raise MonitoringError(
                    f"{resource.kind} {resource.name}: Cloud Monitoring still cannot find its "
                    f"metric after {waited:g} s of waiting ({_last_line(done)}); a log-based "
                    "metric takes up to 10 minutes to appear: run the build again later"
                )
            self._waits_left -= 1
            print(
                f"{resource.kind} {resource.name}: Cloud Monitoring does not see its metric yet "
                f"(a new one takes up to 10 minutes); trying again in {self._wait_seconds:g} s",
                flush=True,
            )
            self._sleep(self._wait_seconds)

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
        body = resource.body
        if current is not None and "notificationChannels" not in body:
            # No channels named: an update (which replaces the whole policy) keeps the ones it
            # has, so a redeploy without _NOTIFICATION_CHANNELS silences nobody.
            body = {**body, "notificationChannels": current.get("notificationChannels", [])}
        if current is not None and covers(current, body):
            return "up to date"
        policy = self._file(resource, body)
        if current is None:
            create = ("alpha", "monitoring", "policies", "create", "--policy-from-file", policy)
            self._patiently(resource, *create)
            return "created"
        name = current["name"]
        update = ("alpha", "monitoring", "policies", "update", name, "--policy-from-file", policy)
        self._patiently(resource, *update)
        return "updated"


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines() or ["(no output)"]
    return lines[-1]


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
    parser.add_argument(
        "--deployment",
        type=_deployment,
        default="",
        help="this deployment's name, added to every metric, the dashboard and the policies "
        "(staging beside live); empty (the default): the files' own names",
    )
    parser.add_argument(
        "--retry-seconds",
        type=_retry_seconds,
        default=WAIT_SECONDS,
        help=f"the wait before asking again for a policy whose metric Monitoring does not see "
        f"yet, {WAITS} times at most (0-{LONGEST_WAIT_SECONDS}; default {WAIT_SECONDS})",
    )
    return parser


def _deployment(value: str) -> str:
    if value and not DEPLOYMENT.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r}: {DEPLOYMENT_RULE}")
    return value


def _retry_seconds(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,2}", value) or int(value) > LONGEST_WAIT_SECONDS:
        seconds = f"0 to {LONGEST_WAIT_SECONDS}"
        raise argparse.ArgumentTypeError(f"{value!r}: give whole seconds, {seconds}")
    return int(value)


def _known_default(name: str) -> str | None:
    """The registry's default for `name`, or None where the services' settings, which some
    defaults are made from, cannot be imported (no pydantic in the gcloud image)."""
    try:
        return registry.default(name)
    except ImportError:
        return None


def main(
    argv: Sequence[str] | None = None, gcloud: Gcloud = run_gcloud, sleep: Sleep = time.sleep
) -> int:
    args = _parser().parse_args(argv)
    if not args.project:
        print("monitoring: --project (or GOOGLE_CLOUD_PROJECT) is required", file=sys.stderr)
        return 2
    channels = tuple(name.strip() for name in args.notification_channels.split(",") if name.strip())
    names = {attribute: getattr(args, attribute) for attribute in NAMES}
    watched = Watched(
        args.project, **names, notification_channels=channels, deployment=args.deployment
    )
    if not channels:
        print(
            "monitoring: warning: no notification channels (--notification-channels, the build's "
            "_NOTIFICATION_CHANNELS): policies that exist keep theirs; new ones notify no one",
            flush=True,
        )
    applier = Applier(args.project, gcloud, sleep, wait_seconds=args.retry_seconds)
    try:
        for resource in resources(watched):
            print(f"{resource.kind} {resource.name}: {applier.apply(resource)}", flush=True)
    except MonitoringError as error:
        print(f"monitoring: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
