"""The monitoring files: what they render to, that their filters read fields the services really
log, that the Cloud SDK's own API messages know every field they set, and that
`tools.monitoring` creates, leaves alone and repairs them through the real gcloud, talking to a
stand-in of the Logging and Monitoring APIs."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools import registry
from tools.monitoring import DASHBOARD_ID, FILES, MonitoringError, Watched, covers, main, resources
from tools.monitoring import render as render_text

from ..factories import TOKEN, envelope, identify, track
from ..support.functions import MakeDeliver, MakeIngest
from ..support.gcloud import empty_config_env, installed_gcloud, message_problems
from ..support.monitoring_standin import MonitoringStandIn
from ..support.processes import Processes
from ..support.pubsub import Topic
from ..support.saasquatch_standin import SaaSquatchStandIn

PROJECT = "acme-growth"
WATCHED = Watched(
    PROJECT,
    ingest_service="seg-in",
    deliver_service="seg-out",
    subscription="raw-deliver",
    dead_letter_subscription="dead-pull",
    notification_channels=("projects/acme-growth/notificationChannels/42",),
)
METRIC = re.compile(r'metric\.type="logging\.googleapis\.com/user/([\w-]+)"')


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {found.name: found.body for found in resources(WATCHED) if found.kind == kind}


def filters(body: Any) -> Iterator[str]:
    """Every monitoring filter in a dashboard or policy."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "filter" and isinstance(value, str):
                yield value
            else:
                yield from filters(value)
    elif isinstance(body, list):
        for item in body:
            yield from filters(item)


def test_the_files_render_for_this_deployment() -> None:
    rendered = json.dumps([found.body for found in resources(WATCHED)])
    assert not re.search(r"\$\{[A-Z_]+\}", rendered)
    for name in ("seg-in", "seg-out", "raw-deliver", "dead-pull"):
        assert name in rendered
    assert "${metric.labels.reason}" in rendered  # Monitoring's own templates are left alone
    dashboard = by_kind("dashboard")[DASHBOARD_ID]
    assert dashboard["name"] == f"projects/{PROJECT}/dashboards/{DASHBOARD_ID}"
    for policy in by_kind("alert policy").values():
        assert policy["notificationChannels"] == list(WATCHED.notification_channels)


def test_an_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(MonitoringError, match=r"\$\{INGEST_SERVCE\}"):
        render_text('{"filter": "${INGEST_SERVCE}"}', WATCHED)


def test_dashboards_and_alerts_use_only_metrics_and_labels_that_exist() -> None:
    metrics = by_kind("log metric")
    labels = {
        name: {label["key"] for label in body["metricDescriptor"].get("labels", [])}
        for name, body in metrics.items()
    }
    watching = [*by_kind("dashboard").values(), *by_kind("alert policy").values()]
    used = set()
    for text in (text for body in watching for text in filters(body)):
        for name in METRIC.findall(text):
            used.add(name)
            assert name in metrics, f"{name} is not a metric of monitoring/metrics"
            for label in re.findall(r"metric\.labels?\.(\w+)", text):
                assert label in labels[name], f"{name} has no label {label}"
    assert used == set(metrics), f"metrics nothing shows: {set(metrics) - used}"


def test_the_three_alerts_the_operations_doc_promises() -> None:
    policies = by_kind("alert policy")
    texts = {name: " ".join(filters(body)) for name, body in policies.items()}
    assert 'metric.label.status=one_of("401", "403")' in texts["ingest-credentials-refused"]
    assert "num_undelivered_messages" in texts["dead-letter-backlog"]
    backlog = policies["dead-letter-backlog"]["conditions"][0]["conditionThreshold"]
    assert (backlog["comparison"], backlog["thresholdValue"]) == ("COMPARISON_GT", 0)
    age = policies["push-backlog-age"]["conditions"][0]["conditionThreshold"]
    assert "oldest_unacked_message_age" in age["filter"] and age["thresholdValue"] == 900


def test_covers_ignores_what_the_api_adds_and_the_zeros_it_leaves_out() -> None:
    desired = {"a": 0, "b": {"c": "x", "d": []}, "e": [{"f": 1}], "duration": "0s"}
    assert covers({"b": {"c": "x"}, "e": [{"f": 1, "name": "n"}], "etag": "1"}, desired)
    assert covers({"a": "0", "b": {"c": "x"}, "e": [{"f": 1.0}]}, desired)
    assert not covers({"b": {"c": "y"}, "e": [{"f": 1}]}, desired)
    assert not covers({"b": {"c": "x"}, "e": []}, desired)


# --- the fields the filters read are in the lines the services write ---------------------------


def payload_clauses(log_filter: str) -> list[tuple[str, str | None]]:
    """`(field, value)` for each `jsonPayload.F="v"` and `(field, None)` for `jsonPayload.F:*`."""
    clauses = re.findall(r'jsonPayload\.(\w+)(?:="([^"]*)"|(:\*))', log_filter)
    return [(field, None if present else value) for field, value, present in clauses]


def matches(line: dict[str, Any], log_filter: str) -> bool:
    return all(
        field in line and (value is None or str(line[field]) == value)
        for field, value in payload_clauses(log_filter)
    )


@pytest.fixture
def real_log_lines(
    make_ingest: MakeIngest,
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    topic: Topic,
    capsys: pytest.CaptureFixture[str],
) -> list[dict[str, Any]]:
    """What ingest and deliver log for an accepted request, refusals, a delivered message and
    a dead letter."""
    ingest = make_ingest()
    ingest.post("/", json=identify(), headers={"Authorization": f"Bearer {TOKEN}"})
    ingest.post("/", json=identify(), headers={"Authorization": "Bearer wrong"})
    ingest.post("/", data="{", headers={"Authorization": f"Bearer {TOKEN}"})
    deliver = make_deliver(DEAD_LETTER_TOPIC=topic.name)
    deliver.post("/", json=envelope(track()))
    deliver.post("/", json=envelope(track(event="")))  # no event name: a dead letter
    deliver.post("/", data="not a push")
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]


def test_every_metric_reads_fields_the_services_really_log(
    real_log_lines: list[dict[str, Any]],
) -> None:
    outcomes = {line.get("outcome") for line in real_log_lines}
    assert {"accepted", "refused", "delivered", "dead_lettered"} <= outcomes
    for name, metric in by_kind("log metric").items():
        matched = [line for line in real_log_lines if matches(line, metric["filter"])]
        assert matched, f"{name}: no real log line matches {metric['filter']}"
        extracted = [*metric.get("labelExtractors", {}).values(), metric.get("valueExtractor", "")]
        for field in re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", " ".join(extracted)):
            assert any(field in line for line in matched), f"{name}: no line has {field}"
    requests = [
        line
        for line in real_log_lines
        if matches(line, by_kind("log metric")["segment_ingest_requests"]["filter"])
    ]
    assert {(line["status"], line.get("reason")) for line in requests} == {
        (200, None),
        (401, "wrong_token"),
        (400, "invalid_body"),
    }


# --- what the Cloud SDK's own API messages know -------------------------------------------------


def test_the_sdk_s_api_messages_know_every_field_the_files_set(processes: Processes) -> None:
    bodies = [(found.kind, found.name, found.body) for found in resources(WATCHED)]
    assert message_problems(bodies) == []
    misspelt = {"displayName": "x", "mosaicLayout": {"columns": 48, "tyles": []}}
    assert message_problems([("dashboard", "bad", misspelt)]) == [
        "dashboard bad.mosaicLayout.tyles"
    ]


# --- created, left alone, repaired: through the real gcloud ----------------------------------


class Api(MonitoringStandIn):
    """The stand-in, and the environment that sends the real gcloud to it: an empty
    configuration and a fake token."""

    env: dict[str, str]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with Api() as stand_in:
        token = tmp_path / "token"
        token.write_text("stand-in-token")
        stand_in.env = empty_config_env(
            tmp_path / "gcloud-config",
            CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=str(token),
            CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING=stand_in.endpoint,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING=stand_in.endpoint,
        )
        yield stand_in


def run_monitoring(api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]) -> list[str]:
    gcloud = installed_gcloud()

    def real(args: Any) -> Any:
        return processes.run([gcloud, *args], timeout=180, env=api.env)

    argv = [
        "--project",
        PROJECT,
        "--ingest-service",
        "seg-in",
        "--notification-channels",
        "projects/acme-growth/notificationChannels/42",
    ]
    assert main(argv, gcloud=real) == 0, capsys.readouterr()
    return capsys.readouterr().out.splitlines()


def test_first_run_creates_everything_and_the_second_changes_nothing(
    api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_monitoring(api, processes, capsys)
    assert first and all(line.endswith(": created") for line in first), first
    assert set(api.metrics) == {path.stem for path in (FILES / "metrics").glob("*.json")}
    assert set(api.dashboards) == {DASHBOARD_ID}
    assert len(api.policies) == len(list((FILES / "alerts").glob("*.json")))
    sent = [body for method, _path, body in api.requests if method in {"POST", "PUT", "PATCH"}]
    assert all("seg-in" in json.dumps(body) or "seg-out" not in json.dumps(body) for body in sent)
    writes = len(sent)
    second = run_monitoring(api, processes, capsys)
    assert all(line.endswith(": up to date") for line in second), second
    assert len([r for r in api.requests if r[0] in {"POST", "PUT", "PATCH"}]) == writes


def test_an_edit_made_in_the_console_is_put_back(
    api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    run_monitoring(api, processes, capsys)
    api.metrics["segment_dead_lettered"]["filter"] = "edited by hand"
    [policy] = [p for p in api.policies.values() if "dead letters" in p["displayName"]]
    policy["conditions"][0]["conditionThreshold"]["thresholdValue"] = 50
    api.dashboards[DASHBOARD_ID]["displayName"] = "renamed"
    lines = run_monitoring(api, processes, capsys)
    changed = sorted(line for line in lines if not line.endswith("up to date"))
    assert changed == [
        "alert policy dead-letter-backlog: updated",
        f"dashboard {DASHBOARD_ID}: updated",
        "log metric segment_dead_lettered: updated",
    ]
    assert "edited by hand" not in json.dumps(api.metrics)
    assert api.dashboards[DASHBOARD_ID]["displayName"] == "segment-saasquatch"


def test_a_refusal_from_gcloud_is_one_line(
    api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    def refusing(args: Any) -> Any:
        result = processes.run([installed_gcloud(), *args], timeout=180, env=api.env)
        if "create" in args:
            result.returncode, result.stderr = 1, "ERROR: (gcloud) PERMISSION_DENIED: no\n"
        return result

    assert main(["--project", PROJECT], gcloud=refusing) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("monitoring: gcloud logging metrics create") and "PERMISSION" in line


# --- its defaults, with and without the project's packages ---------------------------------------


def test_its_defaults_are_the_registrys() -> None:
    bare = Watched(PROJECT)
    assert (
        bare.ingest_service,
        bare.deliver_service,
        bare.subscription,
        bare.dead_letter_subscription,
    ) == tuple(
        registry.default(name)
        for name in (
            "INGEST_SERVICE",
            "DELIVER_SERVICE",
            "SUBSCRIPTION",
            "DEAD_LETTER_SUBSCRIPTION",
        )
    )


# The gcloud image's Python: no pydantic (nor any of the project's packages).
WITHOUT_PYDANTIC = """
import subprocess, sys
sys.modules["pydantic"] = None
from tools import monitoring, registry
assert registry.default("INGEST_SERVICE") == "segment-ingest"
try:
    registry.default("SUBSCRIPTION")
except ImportError:
    pass
else:
    raise AssertionError("pydantic was not blocked")
def gcloud(args):
    return subprocess.CompletedProcess(args, 0, "[]" if "list" in args else "", "")
sys.exit(monitoring.main(sys.argv[1:], gcloud=gcloud))
"""


def test_without_the_projects_packages_it_runs_when_given_the_subscriptions(
    processes: Processes,
) -> None:
    """As the build runs it, in the gcloud image: the subscriptions are passed, the services'
    names default from the registry."""
    names = ["--subscription", "raw-deliver", "--dead-letter-subscription", "dead-pull"]
    done = processes.run([sys.executable, "-c", WITHOUT_PYDANTIC, "--project", PROJECT, *names])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"dashboard {DASHBOARD_ID}: created" in lines
    refused = processes.run([sys.executable, "-c", WITHOUT_PYDANTIC, "--project", PROJECT])
    assert refused.returncode == 2
    assert "required: --subscription, --dead-letter-subscription" in refused.stderr
