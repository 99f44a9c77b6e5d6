"""The monitoring files: what they render to, that their filters read fields the services really
log (both directions: ingest and deliver, saasquatch_webhook and forward, run with in-memory
ports), that every panel and alert on a log-based metric is raised by lines they really write,
that the Cloud SDK's own API messages know every field they set, and that `tools.monitoring`
creates, leaves alone and repairs them through the real gcloud, talking to a stand-in of the
Logging and Monitoring APIs."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from common.outcomes import Outcome, Reason
from segment_api.client import SegmentError
from stream.forward import create_handler as create_forward
from stream.forward_settings import ForwardSettings
from stream.receive import create_handler as create_webhook
from stream.receive_settings import WebhookSettings
from tools import registry
from tools.monitoring import (
    DASHBOARD_ID,
    FILES,
    NAMES,
    MonitoringError,
    Watched,
    _parser,
    covers,
    main,
    resources,
)
from tools.monitoring import render as render_text

from ..factories import TOKEN, envelope, identify, track
from ..support.fakes import FakeTopic
from ..support.functions import MakeDeliver, MakeIngest, client_for
from ..support.gcloud import empty_config_env, installed_gcloud, message_problems
from ..support.monitoring_standin import MonitoringStandIn
from ..support.processes import Processes
from ..support.saasquatch_standin import SaaSquatchStandIn
from ..support.webhook_signing import KID, JwksStandIn, detached_jws, new_key

PROJECT = "acme-growth"
WATCHED = Watched(
    PROJECT,
    ingest_service="seg-in",
    deliver_service="seg-out",
    subscription="raw-deliver",
    dead_letter_subscription="dead-pull",
    webhook_service="hooks-in",
    forward_service="hooks-out",
    webhook_subscription="hooks-forward",
    webhook_dead_letter_subscription="hooks-dead-pull",
    notification_channels=("projects/acme-growth/notificationChannels/42",),
)
# Each entry point's log lines come from its own Cloud Run service.
SERVICE_OF = {
    "ingest": WATCHED.ingest_service,
    "deliver": WATCHED.deliver_service,
    "saasquatch_webhook": WATCHED.webhook_service,
    "forward": WATCHED.forward_service,
}
METRIC = re.compile(r'metric\.type="logging\.googleapis\.com/user/([\w-]+)"')


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {found.name: found.body for found in resources(WATCHED) if found.kind == kind}


def filters(body: Any) -> Iterator[str]:
    """Every monitoring filter in a dashboard or policy."""
    for text, _grouped in queries(body):
        yield text


def queries(body: Any) -> Iterator[tuple[str, list[str]]]:
    """Every monitoring filter in a dashboard or policy, with the fields its aggregation groups
    by (a panel's `aggregation`, a condition's `aggregations`)."""
    if isinstance(body, dict):
        if isinstance(body.get("filter"), str):
            aggregations = body.get("aggregations") or [body.get("aggregation") or {}]
            grouped = [name for step in aggregations for name in step.get("groupByFields", [])]
            yield body["filter"], grouped
        for key, value in body.items():
            if key != "filter":
                yield from queries(value)
    elif isinstance(body, list):
        for item in body:
            yield from queries(item)


def test_the_files_render_for_this_deployment() -> None:
    rendered = json.dumps([found.body for found in resources(WATCHED)])
    assert not re.search(r"\$\{[A-Z_]+\}", rendered)
    for attribute in NAMES:
        assert f'\\"{getattr(WATCHED, attribute)}\\"' in rendered, attribute  # in a filter
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
    for text, grouped in (query for body in watching for query in queries(body)):
        for name in METRIC.findall(text):
            used.add(name)
            assert name in metrics, f"{name} is not a metric of monitoring/metrics"
            named = re.findall(r"metric\.labels?\.(\w+)", " ".join([text, *grouped]))
            for label in named:
                assert label in labels[name], f"{name} has no label {label}"
    assert used == set(metrics), f"metrics nothing shows: {set(metrics) - used}"


def test_filters_name_only_outcomes_and_reasons_of_the_vocabulary() -> None:
    bodies = [found.body for found in resources(WATCHED)]
    texts = [text for body in bodies for text in filters(body)]
    named: dict[str, set[str]] = {"outcome": set(), "reason": set()}
    for text in texts:
        clauses = [(label, values) for label, _equal, values in label_clauses(text)]
        for field, values in clauses + payload_clauses(text):
            if field in named and values is not None:
                named[field] |= values
    assert named["outcome"] and named["outcome"] <= set(Outcome)
    assert named["reason"] and named["reason"] <= set(Reason)


def test_each_metric_reads_the_lines_of_the_service_that_writes_them() -> None:
    """A metric counting forward's lines must watch forward's service, not deliver's."""
    for name, metric in by_kind("log metric").items():
        log_filter = metric["filter"]
        [entry_points] = [
            values for field, values in payload_clauses(log_filter) if field == "entry_point"
        ]
        [services] = re.findall(r'resource\.labels\.service_name=(\("[^)]*\)|"[^"]*")', log_filter)
        assert set(re.findall(r'"([^"]*)"', services)) == {
            SERVICE_OF[entry_point] for entry_point in entry_points or ()
        }, name


def test_the_alerts_the_operations_doc_promises() -> None:
    policies = by_kind("alert policy")
    texts = {name: " ".join(filters(body)) for name, body in policies.items()}

    def threshold(name: str, index: int = 0) -> tuple[str, str, float]:
        condition = policies[name]["conditions"][index]["conditionThreshold"]
        return condition["filter"], condition["comparison"], condition["thresholdValue"]

    assert 'metric.label.status=one_of("401", "403")' in texts["ingest-credentials-refused"]
    for name, subscription in (
        ("dead-letter-backlog", WATCHED.dead_letter_subscription),
        ("forward-dead-letter-backlog", WATCHED.webhook_dead_letter_subscription),
    ):
        log_filter, comparison, value = threshold(name)
        assert "num_undelivered_messages" in log_filter
        assert f'subscription_id="{subscription}"' in log_filter
        assert (comparison, value) == ("COMPARISON_GT", 0)
    for name, subscription in (
        ("push-backlog-age", WATCHED.subscription),
        ("forward-push-backlog-age", WATCHED.webhook_subscription),
    ):
        log_filter, comparison, value = threshold(name)
        assert "oldest_unacked_message_age" in log_filter
        assert f'subscription_id="{subscription}"' in log_filter
        assert (comparison, value) == ("COMPARISON_GT", 900)
    # Any webhook of another tenant, one incident per tenant, named in its documentation.
    other = policies["webhook-other-tenant"]
    log_filter, comparison, value = threshold("webhook-other-tenant")
    assert 'metric.label.reason="other_tenant"' in log_filter
    assert (comparison, value) == ("COMPARISON_GT", 0)
    grouped = other["conditions"][0]["conditionThreshold"]["aggregations"][0]["groupByFields"]
    assert grouped == ["metric.label.tenant_alias"]
    assert "${metric.label.tenant_alias}" in other["documentation"]["content"]
    verification = [threshold("webhook-verification-failing", index)[0] for index in (0, 1)]
    assert [values for text in verification for _, _, values in label_clauses(text)] == [
        {"signing_keys_unavailable"},
        {"bad_signature"},
    ]


def test_covers_ignores_what_the_api_adds_and_the_zeros_it_leaves_out() -> None:
    desired = {"a": 0, "b": {"c": "x", "d": []}, "e": [{"f": 1}], "duration": "0s"}
    assert covers({"b": {"c": "x"}, "e": [{"f": 1, "name": "n"}], "etag": "1"}, desired)
    assert covers({"a": "0", "b": {"c": "x"}, "e": [{"f": 1.0}]}, desired)
    assert not covers({"b": {"c": "y"}, "e": [{"f": 1}]}, desired)
    assert not covers({"b": {"c": "x"}, "e": []}, desired)


# --- the fields the filters read are in the lines the services write ---------------------------


def payload_clauses(log_filter: str) -> list[tuple[str, set[str] | None]]:
    """`(field, values)` for each `jsonPayload.F="v"` or `jsonPayload.F=("v" OR "w")`, and
    `(field, None)` for each `jsonPayload.F:*`."""
    found = re.findall(r'jsonPayload\.(\w+)(?:=\(([^)]*)\)|="([^"]*)"|(:\*))', log_filter)
    return [
        (field, None if present else set(re.findall(r'"([^"]*)"', listed)) or {value})
        for field, listed, value, present in found
    ]


def label_clauses(monitoring_filter: str) -> list[tuple[str, bool, set[str]]]:
    """`(label, True, values)` for each `metric.label.L="v"` or `=one_of("v", "w")`, and
    `(label, False, values)` for each `!=`."""
    found = re.findall(
        r'metric\.labels?\.(\w+)\s*(!?=)\s*(?:one_of\(([^)]*)\)|"([^"]*)")', monitoring_filter
    )
    return [
        (label, operator == "=", set(re.findall(r'"([^"]*)"', listed)) or {value})
        for label, operator, listed, value in found
    ]


def matches(line: dict[str, Any], log_filter: str) -> bool:
    return all(
        field in line and (values is None or str(line[field]) in values)
        for field, values in payload_clauses(log_filter)
    )


def labels_of(line: dict[str, Any], metric: dict[str, Any]) -> dict[str, str]:
    """The labels Logging extracts from `line` for `metric` (a missing field: empty)."""
    labels = {}
    for label, extractor in metric.get("labelExtractors", {}).items():
        [field] = re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", extractor)
        labels[label] = str(line.get(field, ""))
    return labels


def selects(labels: dict[str, str], monitoring_filter: str) -> bool:
    """Whether a time series with `labels` passes the filter's label clauses."""
    return all(
        (labels.get(label, "") in values) == equal
        for label, equal, values in label_clauses(monitoring_filter)
    )


class Segment:
    """forward's Segment port: takes each batch, or raises the next error it is given."""

    def __init__(self) -> None:
        self.errors: list[SegmentError] = []

    def send_batch(self, messages: Sequence[dict[str, Any]]) -> int:
        if self.errors:
            raise self.errors.pop(0)
        return 200


def webhook(tenant: str = "our_tenant", kind: str = "reward.created") -> bytes:
    """A webhook made by SaaSquatch a moment ago (the receiver takes the last 74 hours)."""
    return json.dumps(
        {
            "id": f"wh-{tenant}-{kind}",
            "type": kind,
            "tenantAlias": tenant,
            "live": True,
            "created": int(time.time() * 1000),
            "data": {"id": "r-1", "userId": "u-1", "accountId": "a-1", "type": "CREDIT"},
        }
    ).encode()


@pytest.fixture
def jwks() -> Iterator[JwksStandIn]:
    with JwksStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def real_log_lines(
    make_ingest: MakeIngest,
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    jwks: JwksStandIn,
    capsys: pytest.CaptureFixture[str],
) -> list[dict[str, Any]]:
    """What the four services log, with in-memory ports: ingest for an accepted request and
    refusals, deliver for a delivered message and a dead letter, saasquatch_webhook for an
    accepted webhook, another tenant's, refusals and keys it cannot fetch, forward for each
    outcome."""
    ingest = make_ingest()
    ingest.post("/", json=identify(), headers={"Authorization": f"Bearer {TOKEN}"})
    ingest.post("/", json=identify(), headers={"Authorization": "Bearer wrong"})
    ingest.post("/", data="{", headers={"Authorization": f"Bearer {TOKEN}"})
    deliver = make_deliver()
    deliver.post("/", json=envelope(track()))
    deliver.post("/", json=envelope(track(event="")))  # no event name: a dead letter
    deliver.post("/", data="not a push")

    key = new_key()
    jwks.keys[KID] = key
    settings = WebhookSettings.checked(
        GOOGLE_CLOUD_PROJECT=PROJECT, WEBHOOK_JWKS_URL=jwks.url, WEBHOOK_TENANT_ALIASES="our_tenant"
    )
    receive = client_for(create_webhook(settings, topic=FakeTopic("saasquatch-webhooks")))
    for body in (webhook(), webhook(tenant="someone_else"), b"[1]"):
        receive.post("/", data=body, headers={"X-Hook-JWS-RFC-7797": detached_jws(body, key)})
    receive.post("/", data=webhook())  # no signature
    jwks.failing = True  # a handler of its own: the first one has the keys cached
    cold = client_for(create_webhook(settings, topic=FakeTopic("saasquatch-webhooks")))
    body = webhook()
    cold.post("/", data=body, headers={"X-Hook-JWS-RFC-7797": detached_jws(body, key)})

    segment = Segment()
    forward = client_for(
        create_forward(
            ForwardSettings.checked(GOOGLE_CLOUD_PROJECT=PROJECT, SEGMENT_WRITE_KEY="wk"),
            segment=segment,
            dead_letters=FakeTopic("saasquatch-webhooks-dead-letter"),
        )
    )
    segment.errors = [
        SegmentError("Segment answered 503", 503),  # a retry
        SegmentError("Segment answered 400", 400),  # a dead letter
    ]
    for body in (webhook(), webhook(), webhook(), webhook(kind="test"), b"not json"):
        forward.post("/", json=envelope(body))
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]


def test_every_metric_reads_fields_the_services_really_log(
    real_log_lines: list[dict[str, Any]],
) -> None:
    entry_points = {line["entry_point"] for line in real_log_lines if "entry_point" in line}
    assert entry_points == {"ingest", "deliver", "saasquatch_webhook", "forward"}
    for name, metric in by_kind("log metric").items():
        matched = [line for line in real_log_lines if matches(line, metric["filter"])]
        assert matched, f"{name}: no real log line matches {metric['filter']}"
        extracted = [*metric.get("labelExtractors", {}).values(), metric.get("valueExtractor", "")]
        for field in re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", " ".join(extracted)):
            assert any(field in line for line in matched), f"{name}: no line has {field}"

    def counted(name: str, *fields: str) -> set[tuple[Any, ...]]:
        metric = by_kind("log metric")[name]
        found = [line for line in real_log_lines if matches(line, metric["filter"])]
        return {tuple(line.get(field) for field in fields) for line in found}

    assert counted("segment_ingest_requests", "status", "reason") == {
        (200, None),
        (401, "wrong_token"),
        (400, "invalid_body"),
    }
    assert counted("segment_webhook_requests", "status", "reason", "tenant_alias") == {
        (200, None, None),
        (200, "other_tenant", "someone_else"),
        (400, "invalid_body", None),
        (401, "bad_signature", None),
        (503, "signing_keys_unavailable", None),
    }
    assert counted("segment_forward_outcomes", "outcome", "reason", "webhook_type") == {
        ("delivered", None, "reward.created"),
        ("retry", "segment_unavailable", "reward.created"),
        ("dead_lettered", "segment_rejected", "reward.created"),
        ("ignored", "test_webhook", "test"),
        ("dead_lettered", "malformed_message", None),
    }
    assert counted("segment_dead_lettered", "entry_point", "reason") == {
        ("deliver", "missing_event_name"),
        ("forward", "segment_rejected"),
        ("forward", "malformed_message"),
    }
    # Segment's time: for each webhook that called it, whatever it answered.
    assert counted("segment_forward_segment_latency", "segment_status", "reason") == {
        (200, None),
        (503, "segment_unavailable"),
        (400, "segment_rejected"),
    }


def test_every_panel_and_alert_on_a_log_metric_is_raised_by_lines_the_services_write(
    real_log_lines: list[dict[str, Any]],
) -> None:
    """Each panel's and each alert condition's label clauses (`reason="other_tenant"`, `status=
    one_of("401", "403")`, ...) select the labels Logging extracts from some real line."""
    metrics = by_kind("log metric")
    watching = {
        f"{found.kind} {found.name}": found.body
        for found in resources(WATCHED)
        if found.kind != "log metric"
    }
    for where, body in watching.items():
        for text in filters(body):
            for name in METRIC.findall(text):
                metric = metrics[name]
                series = [
                    labels_of(line, metric)
                    for line in real_log_lines
                    if matches(line, metric["filter"])
                ]
                assert any(selects(labels, text) for labels in series), f"{where}: {text}"


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

    argv = ["--project", PROJECT, "--notification-channels", *WATCHED.notification_channels]
    for attribute in NAMES:  # every name this deployment's own, none the registry's default
        argv += ["--" + attribute.replace("_", "-"), getattr(WATCHED, attribute)]
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
    for default in (registry.default(name) for name in NAMES.values()):
        assert not re.search(rf"(?<![\w-]){default}(?![\w-])", json.dumps(sent)), default
    # Both directions' names, each where it belongs.
    assert '"hooks-in"' in api.metrics["segment_webhook_requests"]["filter"]
    assert '"hooks-out"' in api.metrics["segment_forward_outcomes"]["filter"]
    assert '("seg-out" OR "hooks-out")' in api.metrics["segment_dead_lettered"]["filter"]
    watched = {
        policy["userLabels"]["segment_saasquatch"]: json.dumps(policy["conditions"])
        for policy in api.policies.values()
    }
    assert '\\"hooks-dead-pull\\"' in watched["forward-dead-letter-backlog"]
    assert '\\"hooks-forward\\"' in watched["forward-push-backlog-age"]
    assert '\\"dead-pull\\"' in watched["dead-letter-backlog"]
    writes = len(sent)
    second = run_monitoring(api, processes, capsys)
    assert all(line.endswith(": up to date") for line in second), second
    assert len([r for r in api.requests if r[0] in {"POST", "PUT", "PATCH"}]) == writes


def test_an_edit_made_in_the_console_is_put_back(
    api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    run_monitoring(api, processes, capsys)
    api.metrics["segment_dead_lettered"]["filter"] = "edited by hand"
    [policy] = [
        policy
        for policy in api.policies.values()
        if policy["userLabels"]["segment_saasquatch"] == "dead-letter-backlog"
    ]
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
    options = _parser().parse_args(["--project", PROJECT])
    for attribute, name in NAMES.items():
        default = registry.default(name)
        assert getattr(bare, attribute) == getattr(options, attribute) == default, attribute
        assert bare.placeholders()[name] == default
    assert set(NAMES) == {field.name for field in fields(Watched)} - {
        "project",
        "notification_channels",
    }


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
    names += ["--webhook-subscription", "hooks-forward"]
    names += ["--webhook-dead-letter-subscription", "hooks-dead-pull"]
    done = processes.run([sys.executable, "-c", WITHOUT_PYDANTIC, "--project", PROJECT, *names])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"dashboard {DASHBOARD_ID}: created" in lines
    refused = processes.run([sys.executable, "-c", WITHOUT_PYDANTIC, "--project", PROJECT])
    assert refused.returncode == 2
    assert (
        "required: --subscription, --dead-letter-subscription, --webhook-subscription, "
        "--webhook-dead-letter-subscription"
    ) in refused.stderr
