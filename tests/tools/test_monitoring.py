"""The monitoring files: what they render to, that their filters read fields the services really
log (both directions: ingest and deliver, saasquatch_webhook and forward, run with in-memory
ports), that every panel and alert on a log-based metric is raised by lines they really write,
that the Cloud SDK's own API messages know every field they set, and that `tools.monitoring`
creates, leaves alone and repairs them through the real gcloud, talking to a stand-in of the
Logging and Monitoring APIs."""

from __future__ import annotations

import json
import re
import subprocess
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
from tools import monitoring, registry
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


# --- a deployment's own names (staging beside live) ---------------------------------------------

STEMS = sorted(path.stem for path in (FILES / "metrics").glob("*.json"))
STAGING = Watched(**{**vars(WATCHED), "deployment": "staging"})


def own_names(watched: Watched) -> dict[str, Any]:
    """What names each resource of `watched`: metric names, the dashboard's id and title, the
    policies' labels and titles, and every log-based metric the dashboard and policies read."""
    found = resources(watched)
    watching = [r.body for r in found if r.kind != "log metric"]
    return {
        "metrics": sorted(r.name for r in found if r.kind == "log metric"),
        "dashboard": [(r.name, r.body["name"]) for r in found if r.kind == "dashboard"],
        "labels": sorted(
            r.body["userLabels"]["segment_saasquatch"] for r in found if r.kind == "alert policy"
        ),
        "titles": sorted(body["displayName"] for body in watching),
        "read": {
            name for body in watching for text in filters(body) for name in METRIC.findall(text)
        },
    }


def test_without_a_deployment_name_the_names_are_exactly_the_files_own() -> None:
    """The names every deployment made before there was a second one: a metric cannot be
    renamed, so these must never change."""
    names = own_names(WATCHED)
    assert names["metrics"] == STEMS and "segment_ingest_requests" in STEMS
    assert names["dashboard"] == [
        ("segment-saasquatch", f"projects/{PROJECT}/dashboards/segment-saasquatch")
    ]
    assert names["labels"] == POLICIES
    files = [FILES / "dashboard.json", *sorted((FILES / "alerts").glob("*.json"))]
    assert names["titles"] == sorted(json.loads(f.read_text())["displayName"] for f in files)
    assert names["read"] == set(STEMS)
    assert _parser().parse_args(["--project", PROJECT]).deployment == ""


def test_a_deployment_name_renames_every_resource_and_every_reference_alike() -> None:
    live, staging = own_names(WATCHED), own_names(STAGING)
    assert staging["metrics"] == [f"{stem}_staging" for stem in STEMS]
    assert staging["dashboard"] == [
        ("segment-saasquatch-staging", f"projects/{PROJECT}/dashboards/segment-saasquatch-staging")
    ]
    assert staging["labels"] == [f"{name}-staging" for name in POLICIES]
    assert staging["titles"] == sorted(
        title.replace("segment-saasquatch", "segment-saasquatch (staging)", 1)
        for title in live["titles"]
    )
    assert all(title.startswith("segment-saasquatch (staging)") for title in staging["titles"])
    # Every metric the dashboard and the policies read is one of staging's, each of them read.
    assert staging["read"] == set(staging["metrics"])
    for kind in ("metrics", "dashboard", "labels", "titles", "read"):
        assert not set(map(str, live[kind])) & set(map(str, staging[kind])), kind
    # Nothing names a metric of live's, anywhere; and but for the names, all is the same.
    sent = json.dumps([r.body for r in resources(STAGING)])
    for stem in STEMS:
        assert not re.search(rf"user/{stem}(?![\w-])", sent), stem
    plain = json.dumps([r.body for r in resources(WATCHED)])
    unnamed = sent.replace(" (staging)", "").replace("_staging", "").replace("-staging", "")
    assert unnamed == plain


def test_the_longest_deployment_name_keeps_every_name_within_the_apis_limits() -> None:
    """Logging: a metric name of 100 characters at most; Monitoring: label values of 63 at most,
    lower case. So a longer metric or alert file fails here, not in the build."""
    longest = Watched(PROJECT, **{a: getattr(WATCHED, a) for a in NAMES}, deployment="s" * 24)
    names = own_names(longest)
    assert max(map(len, names["metrics"])) <= 100
    assert all(re.fullmatch(r"[a-z0-9_-]{1,63}", label) for label in names["labels"])
    assert all(re.fullmatch(r"[\w.-]{1,100}", name) for name in names["metrics"])


@pytest.mark.parametrize("name", ["Staging", "1st", "-x", "s" * 25, "st aging", "st.g", "é"])
def test_a_deployment_name_that_would_make_a_name_the_apis_refuse_is_refused(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(MonitoringError, match="lower-case"):
        Watched(PROJECT, deployment=name)
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["--project", PROJECT, "--deployment", name])
    assert exited.value.code == 2
    assert "--deployment" in capsys.readouterr().err


def test_a_file_that_names_a_metric_it_does_not_have_is_refused(tmp_path: Path) -> None:
    """A reference the renaming could not follow would watch another deployment's metric."""
    for part in ("metrics", "alerts"):
        (tmp_path / part).mkdir()
    (tmp_path / "metrics" / "segment_a.json").write_text('{"filter": "x"}')
    reading = 'metric.type=\\"logging.googleapis.com/user/segment_b\\"'
    (tmp_path / "dashboard.json").write_text(
        f'{{"displayName": "segment-saasquatch", "filter": "{reading}"}}'
    )
    with pytest.raises(MonitoringError, match=r"dashboard\.json: no metric segment_b"):
        resources(STAGING, tmp_path)
    (tmp_path / "dashboard.json").write_text('{"displayName": "another product"}')
    with pytest.raises(MonitoringError, match="displayName must start with 'segment-saasquatch'"):
        resources(STAGING, tmp_path)


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

    # ingest answers 401 to credentials it refuses; a 403 from Cloud Run never reaches its log,
    # and Cloud Run's own count watches for that (below).
    assert 'metric.label.status="401"' in texts["ingest-credentials-refused"]
    log_filter, comparison, value = threshold("ingest-retrying")
    assert "user/segment_ingest_requests" in log_filter
    assert 'metric.label.outcome="retry"' in log_filter  # every 5xx ingest answers
    assert (comparison, value) == ("COMPARISON_GT", 5)
    for name, service in (
        ("ingest-cloud-run-errors", WATCHED.ingest_service),
        ("webhook-cloud-run-errors", WATCHED.webhook_service),
    ):
        on_service = (
            'metric.type="run.googleapis.com/request_count" AND resource.type="cloud_run_revision"'
            f' AND resource.label.service_name="{service}"'
        )
        five, five_comparison, five_value = threshold(name, 0)
        assert five == f'{on_service} AND metric.label.response_code_class="5xx"'
        assert (five_comparison, five_value) == ("COMPARISON_GT", 5)
        four = policies[name]["conditions"][1]["conditionThreshold"]
        assert four["filter"] == f'{on_service} AND metric.label.response_code_class="4xx"'
        assert four["denominatorFilter"] == on_service  # a share of all of its answers
        assert (four["comparison"], four["thresholdValue"], four["duration"]) == (
            "COMPARISON_GT",
            0.5,
            "900s",
        )
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
    raw_events: FakeTopic,
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    jwks: JwksStandIn,
    capsys: pytest.CaptureFixture[str],
) -> list[dict[str, Any]]:
    """What the four services log, with in-memory ports: ingest for an accepted request,
    refusals and a publish that failed, deliver for a delivered message and a dead letter,
    saasquatch_webhook for an accepted webhook, another tenant's, refusals and keys it cannot
    fetch, forward for each outcome."""
    ingest = make_ingest()
    ingest.post("/", json=identify(), headers={"Authorization": f"Bearer {TOKEN}"})
    ingest.post("/", json=identify(), headers={"Authorization": "Bearer wrong"})
    ingest.post("/", data="{", headers={"Authorization": f"Bearer {TOKEN}"})
    raw_events.down = True  # Pub/Sub refuses: a 503, Segment retries
    ingest.post("/", json=identify(), headers={"Authorization": f"Bearer {TOKEN}"})
    raw_events.down = False
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

    assert counted("segment_ingest_requests", "status", "outcome", "reason") == {
        (200, "accepted", None),
        (401, "refused", "wrong_token"),
        (400, "refused", "invalid_body"),
        (503, "retry", "publish_failed"),
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


def through_gcloud(api: Api, processes: Processes) -> Any:
    """The real gcloud, talking to the stand-in."""
    gcloud = installed_gcloud()

    def real(args: Any) -> Any:
        return processes.run([gcloud, *args], timeout=180, env=api.env)

    return real


ARGV = ["--project", PROJECT, "--notification-channels", *WATCHED.notification_channels]
for _attribute in NAMES:  # every name this deployment's own, none the registry's default
    ARGV += ["--" + _attribute.replace("_", "-"), getattr(WATCHED, _attribute)]


def run_monitoring(
    api: Api,
    processes: Processes,
    capsys: pytest.CaptureFixture[str],
    sleep: Any = None,
    *more: str,
) -> list[str]:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s")

    real = through_gcloud(api, processes)
    assert main([*ARGV, *more], gcloud=real, sleep=sleep or no_sleep) == 0, capsys.readouterr()
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


def test_two_deployments_in_one_project_each_make_and_find_their_own(
    api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Staging (`--deployment staging`), then live, in one project, through the real gcloud.
    Staging goes first: the stand-in refuses a policy on a metric it does not have, so each of
    staging's policies read staging's metrics. Live's run then makes all of its own and leaves
    staging's as they were; a second run of either changes nothing."""
    staged = run_monitoring(api, processes, capsys, None, "--deployment", "staging")
    assert staged and all(line.endswith(": created") for line in staged), staged
    assert set(api.metrics) == {f"{stem}_staging" for stem in STEMS}
    staging = json.loads(json.dumps([api.metrics, api.dashboards, api.policies]))
    lines = run_monitoring(api, processes, capsys)
    assert len(lines) == len(staged) and all(line.endswith(": created") for line in lines), lines
    for store, before in zip((api.metrics, api.dashboards, api.policies), staging, strict=True):
        assert {name: store[name] for name in before} == before
    assert set(api.metrics) == {*STEMS, *(f"{stem}_staging" for stem in STEMS)}
    assert set(api.dashboards) == {"segment-saasquatch", "segment-saasquatch-staging"}
    labels = sorted(p["userLabels"]["segment_saasquatch"] for p in api.policies.values())
    assert labels == sorted([*POLICIES, *(f"{name}-staging" for name in POLICIES)])
    again = run_monitoring(api, processes, capsys, None, "--deployment", "staging")
    again += run_monitoring(api, processes, capsys)
    assert all(line.endswith(": up to date") for line in again), again


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


def test_a_redeploy_without_channels_keeps_the_policies_channels_and_switches_them_on(
    api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's every-day redeploy names no `_NOTIFICATION_CHANNELS`: the update (which
    replaces a whole policy) must not silence the alerts someone set up; and a policy switched
    off in the console is switched on again, the files being the truth."""
    run_monitoring(api, processes, capsys)
    [policy] = [
        policy
        for policy in api.policies.values()
        if policy["userLabels"]["segment_saasquatch"] == "dead-letter-backlog"
    ]
    policy["enabled"] = False
    without = [arg for arg in ARGV if arg not in WATCHED.notification_channels]
    without.remove("--notification-channels")
    real = through_gcloud(api, processes)
    assert main(without, gcloud=real, sleep=lambda _: None) == 0, capsys.readouterr()
    warning, *lines = capsys.readouterr().out.splitlines()
    assert warning.endswith("policies that exist keep theirs; new ones notify no one")
    changed = [line for line in lines if not line.endswith("up to date")]
    assert changed == ["alert policy dead-letter-backlog: updated"]
    for each in api.policies.values():
        assert each["notificationChannels"] == list(WATCHED.notification_channels)
        assert each.get("enabled", True) is True


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


# --- alert policies wait for metrics Monitoring does not see yet ----------------------------------

POLICIES = sorted(path.stem for path in (FILES / "alerts").glob("*.json"))
# What gcloud says to Monitoring's 404 (as the real gcloud prints the stand-in's answer).
NOT_YET = (
    "ERROR: (gcloud.alpha.monitoring.policies.create) Projects instance [acme-growth] not found: "
    'Cannot find metric(s) that match type = "logging.googleapis.com/user/segment_ingest_requests"'
    ". If a metric was created recently, it could take up to 10 minutes to become available. "
    "Please try again soon.\n"
)


def test_a_policy_waits_for_a_metric_monitoring_does_not_see_yet(
    api: Api, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Monitoring refuses the first two policy writes on a log-based metric (404 "Cannot find
    metric(s)", as for metrics made moments ago); each is asked again after 30 s, then all is
    created."""
    api.unseen_for = 2
    slept: list[float] = []
    lines = run_monitoring(api, processes, capsys, sleep=slept.append)
    assert slept == [30, 30]
    waiting = [line for line in lines if "does not see its metric yet" in line]
    assert len(waiting) == 2 and all("trying again in 30 s" in line for line in waiting)
    assert [line for line in lines if line not in waiting] == [
        *(f"log metric {path.stem}: created" for path in sorted((FILES / "metrics").glob("*"))),
        f"dashboard {DASHBOARD_ID}: created",
        *(f"alert policy {name}: created" for name in POLICIES),
    ]
    assert sorted(p["userLabels"]["segment_saasquatch"] for p in api.policies.values()) == POLICIES
    posted = [r for r in api.requests if r[0] == "POST" and r[1].endswith("/alertPolicies")]
    assert len(posted) == len(POLICIES) + 2


def test_a_metric_monitoring_never_sees_ends_the_run_in_one_line_after_the_bound(
    api: Api,
    processes: Processes,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(monitoring, "WAITS", 3)  # the real bound is below, without gcloud
    api.unseen_for = 10**6
    slept: list[float] = []
    assert main(ARGV, gcloud=through_gcloud(api, processes), sleep=slept.append) == 1
    assert slept == [30, 30, 30]
    [line] = capsys.readouterr().err.strip().splitlines()
    # The first policy on a log-based metric; those before it (on Pub/Sub's and Cloud Run's
    # metrics) were created.
    on_log_metrics = [
        name for name in POLICIES if METRIC.search(" ".join(filters(by_kind("alert policy")[name])))
    ]
    assert line.startswith(
        f"monitoring: alert policy {on_log_metrics[0]}: Cloud Monitoring still cannot find its "
        "metric after 90 s of waiting (ERROR: (gcloud.alpha.monitoring.policies.create) "
    ), line
    assert 'Cannot find metric(s) that match type = "logging.googleapis.com/user/' in line
    assert line.endswith("run the build again later")
    created = {p["userLabels"]["segment_saasquatch"] for p in api.policies.values()}
    assert created == {name for name in POLICIES if name < on_log_metrics[0]}


class Scripted:
    """A gcloud that finds nothing, creates metrics and the dashboard, and answers each policy
    create with `refusal` (a gcloud error's stderr) until `refusals` run out."""

    def __init__(self, refusal: str, refusals: int) -> None:
        self.refusal, self.refusals = refusal, refusals
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        if "list" in args:
            return subprocess.CompletedProcess(args, 0, "[]", "")
        if "describe" in args:
            return subprocess.CompletedProcess(args, 1, "", "ERROR: NOT_FOUND\n")
        if "policies" in args and "create" in args and self.refusals > 0:
            self.refusals -= 1
            return subprocess.CompletedProcess(args, 1, "", self.refusal)
        return subprocess.CompletedProcess(args, 0, "{}", "")


def test_it_waits_ten_minutes_in_all_and_asks_nothing_else_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """20 waits of 30 s: the 10 minutes Monitoring names; shared by the run's policies (they
    wait on metrics made together). Any other refusal ends the run at once."""
    never = Scripted(NOT_YET, refusals=10**6)
    slept: list[float] = []
    assert main(ARGV, gcloud=never, sleep=slept.append) == 1
    assert slept == [30] * 20 and sum(slept) == 600
    creates = [call for call in never.calls if call[2:4] == ["policies", "create"]]
    assert len(creates) == 21 and len({call[5] for call in creates}) == 1  # one policy
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "after 600 s of waiting" in line

    shared = Scripted(NOT_YET, refusals=20)  # the budget spent on the first policy is gone
    slept.clear()
    assert main(ARGV, gcloud=shared, sleep=slept.append) == 0
    assert sum(slept) == 600

    fast = Scripted(NOT_YET, refusals=2)  # the build test's wait: --retry-seconds 0
    slept.clear()
    assert main([*ARGV, "--retry-seconds", "0"], gcloud=fast, sleep=slept.append) == 0
    assert slept == [0, 0]
    assert "trying again in 0 s" in capsys.readouterr().out

    denied = "ERROR: (gcloud.alpha.monitoring.policies.create) PERMISSION_DENIED: no\n"
    refused = Scripted(denied, refusals=1)
    slept.clear()
    assert main(ARGV, gcloud=refused, sleep=slept.append) == 1
    assert slept == []
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("monitoring: gcloud alpha monitoring policies create: ERROR")
    assert "PERMISSION_DENIED" in line


@pytest.mark.parametrize("seconds", ["61", "-1", "x", "1.5", "", "٣"])
def test_a_retry_wait_outside_0_to_60_whole_seconds_is_refused(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["--project", PROJECT, "--retry-seconds", seconds])
    assert exited.value.code == 2
    assert "--retry-seconds" in capsys.readouterr().err


# --- every alert has a runbook -------------------------------------------------------------------

RUNBOOK = re.compile(r"Runbook: `(docs/operations/[\w./-]+\.md)#([\w-]+)` in the repository")


def heading_anchors(document: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    titles = [line.lstrip("#").strip().lower() for line in document.read_text().splitlines()]
    return {
        re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        for title, line in zip(titles, document.read_text().splitlines(), strict=True)
        if line.startswith("#")
    }


def test_every_alert_ends_with_its_runbook_section_and_the_section_exists() -> None:
    root = FILES.parent
    for name, policy in by_kind("alert policy").items():
        documentation = policy["documentation"]
        assert documentation["mimeType"] == "text/markdown", name
        [(path, anchor)] = RUNBOOK.findall(documentation["content"])
        assert documentation["content"].rstrip().endswith("deployed from."), name
        assert anchor == name  # one section per alert, named after it
        assert anchor in heading_anchors(root / path), f"{name}: no #{anchor} in {path}"
    # Each runbook section is an alert's: none left behind for a removed one.
    watching = root / "docs" / "operations" / "watching.md"
    text = watching.read_text()
    sections = text.split("## When an alert fires", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^### ([\w-]+)$", sections, re.MULTILINE)) == set(POLICIES)


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
        "deployment",
    }
    assert (bare.deployment, options.deployment) == ("", "")
    retry = int(registry.default("MONITORING_RETRY_SECONDS"))
    assert options.retry_seconds == monitoring.WAIT_SECONDS == retry == 30


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
