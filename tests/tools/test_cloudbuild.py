"""`cloudbuild.yaml`: it parses, every script is valid bash, and running its steps in order with
a stand-in `gcloud` (recording its arguments) and the real provisioning CLI against the emulator
deploys, wires and watches what docs/deploy.md promises. Every gcloud call the steps make is then
replayed through the installed Cloud SDK's own argument parser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import pubsub_v1

from stream.forward_settings import ForwardSettings
from stream.receive_settings import WebhookSettings
from subscription.deliver_settings import DeliverSettings
from tools import monitoring
from tools.emulator import Emulator
from tools.processes import ROOT

from ..support.gcloud import StandInGcloud, parse_problems
from ..support.processes import Processes

BashSyntax = Callable[[str], subprocess.CompletedProcess[str]]
BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
STEPS = {step["id"]: step for step in BUILD["steps"]}
PROJECT_ID = "acme-growth"
PROJECT_NUMBER = "123456789012"
TENANT = "a1b2c3d4e5f6g"
DELIVER_URL = "https://segment-deliver-x7y8z9-uc.a.run.app"
FORWARD_URL = "https://segment-forward-q4r5s6-uc.a.run.app"
# Values a user may have in their shell while running the build; none may reach a command line.
SECRET_VALUES = {"SAASQUATCH_API_KEY": "sq-live-9f8e7d6c5b4a", "INGEST_TOKEN": "seg-tok-1a2b3c4d"}
PUSH_ACCOUNT = f"segment-push@{PROJECT_ID}.iam.gserviceaccount.com"
DEPLOYER = f"segment-deployer@{PROJECT_ID}.iam.gserviceaccount.com"

# How the stand-in answers what the steps ask: the repository exists, ingest is public, deliver
# is not, deliver has a URL, and no monitoring resource exists yet.
ANSWERS: list[dict[str, Any]] = [
    {"has": ["artifacts", "repositories", "describe"], "stdout": "cloud-run-source-deploy\n"},
    {"has": ["get-iam-policy", "segment-ingest"], "stdout": "allUsers\n"},
    {"has": ["get-iam-policy", "segment-deliver"], "stdout": f"serviceAccount:{PUSH_ACCOUNT}\n"},
    {"has": ["get-iam-policy", "saasquatch-webhook"], "stdout": "allUsers\n"},
    {"has": ["get-iam-policy", "segment-forward"], "stdout": f"serviceAccount:{PUSH_ACCOUNT}\n"},
    {"has": ["run", "services", "describe", "segment-forward"], "stdout": f"{FORWARD_URL}\n"},
    {"has": ["run", "services", "describe"], "stdout": f"{DELIVER_URL}\n"},
    {"has": ["describe", "--format", "json"], "rc": 1},
    {"has": ["policies", "list"], "stdout": "[]"},
]

# The project's interpreter, as `python` and `python3` (a wrapper, not a link: a venv is found
# from the path it runs as); pip installs nothing (the venv has it all).
STAND_IN_PYTHON = '#!/bin/sh\nexec "{python}" "$@"\n'
STAND_IN_PIP = "#!/bin/sh\nexit 0\n"


def test_it_parses_and_maps_substitutions_into_the_scripts() -> None:
    assert BUILD["options"]["automapSubstitutions"] is True
    assert BUILD["options"]["logging"] == "CLOUD_LOGGING_ONLY"  # needed with --service-account
    assert list(STEPS) == [
        "settings",
        "test",
        "source-repository",
        "deploy-ingest",
        "ingest-is-public",
        "deploy-deliver",
        "provision",
        "pubsub-access",
        "deploy-webhook",
        "deploy-forward",
        "provision-stream",
        "stream-access",
        "monitoring",
    ]
    for step in BUILD["steps"]:
        assert set(step) <= {"id", "name", "waitFor", "script"}, step["id"]


def test_every_substitution_a_script_uses_has_a_default() -> None:
    def used(step: dict[str, Any]) -> set[str]:
        return set(re.findall(r"\$\{?(_[A-Z0-9_]+)", step["script"] + step["name"]))

    defined = set(BUILD["substitutions"])
    for step in BUILD["steps"]:
        assert used(step) <= defined, (step["id"], used(step) - defined)
    unused = defined - {name for step in BUILD["steps"] for name in used(step)}
    assert not unused, f"substitutions nothing reads: {unused}"


@pytest.mark.parametrize("step_id", list(STEPS))
def test_each_script_is_valid_bash(step_id: str, bash_syntax: BashSyntax) -> None:
    result = bash_syntax(STEPS[step_id]["script"])
    assert result.returncode == 0, result.stderr
    assert STEPS[step_id]["script"].startswith("#!/usr/bin/env bash\nset -euo pipefail\n")


def test_settings_and_tests_come_first_and_the_deploys_one_after_the_other() -> None:
    waits = {step["id"]: step.get("waitFor") for step in BUILD["steps"]}
    assert waits["settings"] == waits["test"] == ["-"]  # both at once, from the start
    assert "make test" in STEPS["test"]["script"]
    assert waits["source-repository"] == ["settings", "test"]
    assert waits["deploy-ingest"] == ["source-repository"]
    # Not side by side: two source deploys race to create what they share.
    assert waits["deploy-deliver"] == ["deploy-ingest"]
    assert waits["ingest-is-public"] == ["deploy-ingest"]
    assert waits["provision"] == ["deploy-deliver"]
    assert set(waits["pubsub-access"]) == {"provision", "ingest-is-public"}
    assert waits["deploy-webhook"] == ["deploy-deliver"]
    assert waits["deploy-forward"] == ["deploy-webhook"]
    assert set(waits["provision-stream"]) == {"deploy-forward", "provision"}
    assert waits["stream-access"] == ["provision-stream"]


def test_every_image_is_pinned_and_the_tests_run_on_the_runtimes_python() -> None:
    substitutions = BUILD["substitutions"]
    for step in BUILD["steps"]:
        image = re.sub(r"\$\{(_\w+)\}", lambda m: substitutions[m.group(1)], step["name"])
        tag = image.rsplit(":", 1)[1]
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{step['id']}: {image} is not pinned"
    assert substitutions["_PYTHON_BASE_IMAGE"] == "python311"
    assert substitutions["_PYTHON_IMAGE"].startswith("python:3.11.")
    assert STEPS["test"]["name"] == "${_PYTHON_IMAGE}"
    version = substitutions["_GCLOUD_VERSION"]
    assert substitutions["_GCLOUD_IMAGE"].endswith(f":{version}-stable")


def run_steps(
    tmp_path: Path, answers: list[dict[str, Any]], emulator_host: str, **overrides: str
) -> dict[str, Any]:
    """Every step after `test`, in order, as Cloud Build would, with stand-ins on PATH; stops at
    the first that fails."""
    bin_dir = tmp_path / "bin"
    gcloud = StandInGcloud(bin_dir)
    gcloud.answer(answers)
    for name in ("python", "python3"):
        (bin_dir / name).write_text(STAND_IN_PYTHON.format(python=sys.executable))
    (bin_dir / "pip").write_text(STAND_IN_PIP)
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    workspace = tmp_path / "workspace"
    workspace.symlink_to(ROOT)  # the build runs in the source tree
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "PUBSUB_EMULATOR_HOST": emulator_host,
        "PROJECT_ID": PROJECT_ID,
        "PROJECT_NUMBER": PROJECT_NUMBER,
        **gcloud.env(),
        **SECRET_VALUES,
        **{name: str(value) for name, value in BUILD["substitutions"].items()},
        "_SAASQUATCH_TENANT_ALIAS": TENANT,
        **overrides,
    }
    outputs: dict[str, str] = {}
    failed = None
    for step in BUILD["steps"]:
        if step["id"] == "test":
            continue
        script = tmp_path / f"{step['id']}.sh"
        script.write_text(step["script"])
        result = subprocess.run(
            ["bash", str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        outputs[step["id"]] = result.stdout + result.stderr
        if result.returncode != 0:
            failed = step["id"]
            break
    (tmp_path / "deliver_url").unlink(missing_ok=True)
    (tmp_path / "forward_url").unlink(missing_ok=True)
    return {"calls": gcloud.calls(), "outputs": outputs, "failed": failed}


@pytest.fixture(scope="module")
def deployed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    emulator.reset()
    build = run_steps(tmp_path_factory.mktemp("build"), ANSWERS, emulator.host)
    assert build["failed"] is None, build["outputs"]
    return build


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def env_vars(call: list[str]) -> dict[str, str]:
    value = option(call, "--set-env-vars")
    assert value.startswith("^|^")
    return dict(pair.split("=", 1) for pair in value[3:].split("|"))


agent = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"


def sa(name: str) -> str:
    return f"serviceAccount:{name}@{PROJECT_ID}.iam.gserviceaccount.com"


def bindings(build: dict[str, Any]) -> set[tuple[str, str, str, str, str]]:
    """(service, kind, resource, member, role) of every IAM binding the build made."""
    return {
        (call[0], call[1], call[3], option(call, "--member"), option(call, "--role"))
        for call in build["calls"]
        if "add-iam-policy-binding" in call
    }


def provisioned(subscription: str) -> Any:
    """The subscription as the build left it on the emulator."""
    return pubsub_v1.SubscriberClient().get_subscription(
        subscription=f"projects/{PROJECT_ID}/subscriptions/{subscription}"
    )


def deploys(build: dict[str, Any]) -> dict[str, list[str]]:
    return {call[2]: call for call in build["calls"] if call[:2] == ["run", "deploy"]}


def test_both_services_are_deployed_from_source_with_their_targets(
    deployed: dict[str, Any],
) -> None:
    both = deploys(deployed)
    assert set(both) == {"segment-ingest", "segment-deliver"}
    ingest, deliver = both["segment-ingest"], both["segment-deliver"]
    for call, target in ((ingest, "ingest"), (deliver, "deliver")):
        assert option(call, "--source") == "."
        assert option(call, "--function") == target
        assert option(call, "--region") == "us-central1"
        assert option(call, "--base-image") == "python311"
        # The source build runs as the deployer, not as the Compute default account.
        assert option(call, "--build-service-account") == (
            f"projects/{PROJECT_ID}/serviceAccounts/{DEPLOYER}"
        )
        # As many requests per instance as it has threads: none waits inside for a thread.
        assert option(call, "--concurrency") == env_vars(call)["THREADS"] == "32"
    assert "--allow-unauthenticated" in ingest
    assert "--no-allow-unauthenticated" in deliver
    assert "--allow-unauthenticated" not in deliver
    assert option(ingest, "--service-account") == (
        f"segment-ingest@{PROJECT_ID}.iam.gserviceaccount.com"
    )
    assert option(deliver, "--service-account") == (
        f"segment-deliver@{PROJECT_ID}.iam.gserviceaccount.com"
    )
    assert env_vars(ingest) == {
        "GOOGLE_CLOUD_PROJECT": PROJECT_ID,
        "THREADS": "32",
        "PUBSUB_TOPIC": "segment-events",
        "PUBSUB_ORDERING": "false",
        "INGEST_TOKEN_SECRET": (
            f"projects/{PROJECT_ID}/secrets/segment-ingest-token/versions/latest"
        ),
        "MAX_BODY_BYTES": "8388608",
        "LOG_LEVEL": "INFO",
    }
    assert "--clear-secrets" in ingest  # no shared secret asked for
    # Sized from the body limit (every thread may hold a maximum body) and the push size.
    assert option(ingest, "--memory") == "3Gi"
    assert option(deliver, "--memory") == "1Gi"
    # Past these Cloud Run closes the connection; deliver's matches the ack deadline.
    assert option(ingest, "--timeout") == "30"
    assert option(deliver, "--timeout") == "60"
    deliver_env = env_vars(deliver)
    assert deliver_env["THREADS"] == "32"
    assert deliver_env["SAASQUATCH_TENANT_ALIAS"] == TENANT
    assert deliver_env["SAASQUATCH_API_KEY_SECRET"] == (
        f"projects/{PROJECT_ID}/secrets/saasquatch-api-key/versions/latest"
    )
    assert deliver_env["DRY_RUN"] == "false"
    assert deliver_env["DELIVERY_LEDGER"] == "true"
    assert deliver_env["EVENT_KEY_MAP"] == "{}"


def test_deliver_has_two_locks_on_one_fixed_audience(deployed: dict[str, Any]) -> None:
    """Cloud Run admits only the push account for the custom audience; deliver itself checks
    the account and the audience of the token Cloud Run passes on."""
    deliver = deploys(deployed)["segment-deliver"]
    assert option(deliver, "--set-custom-audiences") == "segment-saasquatch-deliver"
    deliver_env = env_vars(deliver)
    assert deliver_env["PUSH_AUDIENCE"] == "segment-saasquatch-deliver"
    assert deliver_env["PUSH_SERVICE_ACCOUNT"] == PUSH_ACCOUNT
    assert deliver_env["PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN"] == "true"
    subscription = provisioned("segment-events-deliver")
    assert subscription.push_config.push_endpoint == DELIVER_URL
    assert subscription.push_config.oidc_token.service_account_email == PUSH_ACCOUNT
    assert subscription.push_config.oidc_token.audience == "segment-saasquatch-deliver"


def test_the_push_subscription_has_the_dead_letter_topic_and_its_policies(
    deployed: dict[str, Any],
) -> None:
    subscription = provisioned("segment-events-deliver")
    assert subscription.topic == f"projects/{PROJECT_ID}/topics/segment-events"
    assert subscription.dead_letter_policy.dead_letter_topic == (
        f"projects/{PROJECT_ID}/topics/segment-events-dead-letter"
    )
    assert subscription.dead_letter_policy.max_delivery_attempts == 10
    assert subscription.retry_policy.minimum_backoff.seconds == 10
    assert subscription.ack_deadline_seconds == 60
    assert "created" in deployed["outputs"]["provision"]


def test_the_build_grants_only_what_changes_with_each_deploy(deployed: dict[str, Any]) -> None:
    """Secrets and service accounts are granted once, in the one-time setup: the deployer holds
    no admin role on either."""
    assert bindings(deployed) == {
        ("run", "services", "segment-deliver", sa("segment-push"), "roles/run.invoker"),
        ("pubsub", "topics", "segment-events-dead-letter", agent, "roles/pubsub.publisher"),
        ("pubsub", "subscriptions", "segment-events-deliver", agent, "roles/pubsub.subscriber"),
        ("pubsub", "topics", "segment-events", sa("segment-ingest"), "roles/pubsub.publisher"),
        (
            "pubsub",
            "topics",
            "segment-events-dead-letter",
            sa("segment-deliver"),
            "roles/pubsub.publisher",
        ),
    }
    assert not [call for call in deployed["calls"] if call[0] in {"secrets", "iam"}]


def test_the_monitoring_is_created_from_the_files(deployed: dict[str, Any]) -> None:
    created = [
        call
        for call in deployed["calls"]
        if "create" in call and ("metrics" in call or "dashboards" in call or "policies" in call)
    ]
    metrics = {call[3] for call in created if call[:2] == ["logging", "metrics"]}
    assert metrics == {path.stem for path in (ROOT / "monitoring" / "metrics").glob("*.json")}
    assert sum(1 for call in created if "dashboards" in call) == 1
    policies = [call for call in created if "policies" in call]
    assert len(policies) == len(list((ROOT / "monitoring" / "alerts").glob("*.json")))
    assert "no notification channels given" in deployed["outputs"]["monitoring"]
    # What was sent, from the stand-in's copies of the files: both directions' names.
    sent = {}
    for call in created:
        flag = "--policy-from-file" if "policies" in call else "--config-from-file"
        path = Path(option(call, flag))
        sent[path.stem.split("-", 1)[1]] = json.loads(path.read_text())
    assert '"saasquatch-webhook"' in sent["segment_webhook_requests"]["filter"]
    assert '"segment-forward"' in sent["segment_forward_outcomes"]["filter"]
    for policy, subscription in (
        ("forward-dead-letter-backlog", "saasquatch-webhooks-dead-letter-pull"),
        ("forward-push-backlog-age", "saasquatch-webhooks-forward"),
        ("dead-letter-backlog", "segment-events-dead-letter-pull"),
        ("push-backlog-age", "segment-events-deliver"),
    ):
        [condition] = sent[policy]["conditions"]
        assert f'subscription_id="{subscription}"' in condition["conditionThreshold"]["filter"]


def test_the_monitoring_step_passes_every_name_it_watches() -> None:
    """Each name `tools.monitoring` watches is the build's substitution of that name: in the
    gcloud image a subscription has no default, and any default would watch the services of a
    deployment with other names."""
    script = STEPS["monitoring"]["script"].replace("\\\n", " ")
    [command] = [line for line in script.splitlines() if "python3 -m tools.monitoring" in line]
    given = re.findall(r'(--[\w-]+) "\$\{(\w+)\}"', command)
    argv = [word for option, name in given for word in (option, f"<{name}>")]
    args = monitoring._parser().parse_args(argv)
    assert args.project == "<PROJECT_ID>"
    assert args.notification_channels == "<_NOTIFICATION_CHANNELS>"
    for attribute, name in monitoring.NAMES.items():
        assert getattr(args, attribute) == f"<_{name}>", attribute


def test_no_secret_value_is_on_any_command_line(deployed: dict[str, Any]) -> None:
    everything = json.dumps(deployed["calls"]) + json.dumps(deployed["outputs"])
    for value in SECRET_VALUES.values():
        assert value not in everything
    for call in deployed["calls"]:
        if "--set-env-vars" in call:
            assert not {"SAASQUATCH_API_KEY", "INGEST_TOKEN"} & set(env_vars(call))


def test_every_gcloud_call_of_the_build_parses_with_the_installed_sdk(
    deployed: dict[str, Any], processes: Processes
) -> None:
    assert len(deployed["calls"]) > 20
    assert parse_problems(deployed["calls"], cwd=ROOT) == []


# --- the build refuses what would deploy something broken ---------------------------------------


def steps_with(tmp_path: Path, emulator: Emulator, answers: list[dict[str, Any]], **subs: str):
    emulator.reset()
    return run_steps(tmp_path, answers, emulator.host, **subs)


def test_without_a_tenant_the_build_stops_before_anything_unless_dry_run_is_asked_for(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    stopped = steps_with(tmp_path / "a", emulator, ANSWERS, _SAASQUATCH_TENANT_ALIAS="")
    assert stopped["failed"] == "settings"
    [line] = stopped["outputs"]["settings"].strip().splitlines()
    assert "_SAASQUATCH_TENANT_ALIAS is empty" in line and "_DRY_RUN=true" in line
    assert stopped["calls"] == []
    dry = steps_with(
        tmp_path / "b", emulator, ANSWERS, _SAASQUATCH_TENANT_ALIAS="", _DRY_RUN="true"
    )
    assert dry["failed"] is None
    deliver_env = env_vars(deploys(dry)["segment-deliver"])
    assert deliver_env["DRY_RUN"] == "true"
    assert "SAASQUATCH_API_KEY_SECRET" not in deliver_env


DOCS_EXPRESSIONS = {
    "_IDENTIFY_SEGMENTS_TRANSFORMER": '[traits.trait2, "hardcoded"]',
    "_TRACK_UPSERT_STRATEGY": 'event = "Order Completed" ? "ALWAYS" : "MISSING_USER"',
    "_TRACK_UPSERT_TRANSFORMER": '{ "customFields": { "plan": properties.plan } }',
}


def test_jsonata_expressions_reach_deliver_as_written(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    """Quotes, `$`, `?` and braces pass through the script and gcloud's `^|^` list untouched."""
    build = steps_with(
        tmp_path,
        emulator,
        ANSWERS,
        **DOCS_EXPRESSIONS,
        _INVALID_SEGMENTS_STRATEGY="sanitize",
        _TRANSFORMER_TIMEOUT_MS="500",
    )
    assert build["failed"] is None, build["outputs"]
    deliver_env = env_vars(deploys(build)["segment-deliver"])
    for name, expression in DOCS_EXPRESSIONS.items():
        assert deliver_env[name.removeprefix("_")] == expression
    assert deliver_env["INVALID_SEGMENTS_STRATEGY"] == "sanitize"
    assert deliver_env["TRANSFORMER_TIMEOUT_MS"] == "500"
    assert DeliverSettings.from_env(deliver_env).mapping_options.identify_segments_transformer


def test_an_expression_with_the_separator_stops_the_build_with_one_line(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    stopped = steps_with(tmp_path, emulator, ANSWERS, _TRACK_UPSERT_TRANSFORMER='$ ~> |$|{"a": 1}|')
    assert stopped["failed"] == "settings"
    [line] = stopped["outputs"]["settings"].strip().splitlines()
    assert line.startswith("_TRACK_UPSERT_TRANSFORMER holds a '|'")
    assert stopped["calls"] == []


def test_a_shared_secret_is_passed_by_reference(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    build = steps_with(tmp_path, emulator, ANSWERS, _SEGMENT_SHARED_SECRET="segment-shared-secret")
    ingest = deploys(build)["segment-ingest"]
    assert option(ingest, "--set-secrets") == "SEGMENT_SHARED_SECRET=segment-shared-secret:latest"
    assert "--clear-secrets" not in ingest


@pytest.mark.parametrize(
    ("answer", "failed", "says"),
    [
        (
            {"has": ["artifacts", "repositories", "describe"], "rc": 1},
            "source-repository",
            "create it once",
        ),
        (
            {"has": ["get-iam-policy", "segment-ingest"], "stdout": "user:owner@acme.example\n"},
            "ingest-is-public",
            "Segment would get 403 on every request",
        ),
        (
            {"has": ["get-iam-policy", "segment-deliver"], "stdout": "allUsers\n"},
            "deploy-deliver",
            "must be reachable by the push account only",
        ),
    ],
    ids=["no repository", "ingest not public", "deliver public"],
)
def test_a_deploy_that_would_not_work_fails_the_build_with_one_line(
    tmp_path: Path,
    emulator: Emulator,
    processes: Processes,
    answer: dict[str, Any],
    failed: str,
    says: str,
) -> None:
    build = steps_with(tmp_path, emulator, [answer, *ANSWERS])
    assert build["failed"] == failed
    assert says in build["outputs"][failed].strip().splitlines()[-1]
    assert os.path.exists(tmp_path / "bin" / "gcloud")


# --- the reverse direction (_STREAM=true) ----------------------------------------------------


@pytest.fixture(scope="module")
def streamed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    emulator.reset()
    build = run_steps(tmp_path_factory.mktemp("stream"), ANSWERS, emulator.host, _STREAM="true")
    assert build["failed"] is None, build["outputs"]
    return build


def test_without_stream_the_reverse_direction_is_not_deployed(deployed: dict[str, Any]) -> None:
    assert not [
        call for call in deployed["calls"] if {"saasquatch-webhook", "segment-forward"} & set(call)
    ]
    for step in ("deploy-webhook", "deploy-forward", "provision-stream", "stream-access"):
        assert "the reverse direction is not deployed" in deployed["outputs"][step]


def test_the_webhook_receiver_is_public_and_forward_private_on_its_own_audience(
    streamed: dict[str, Any],
) -> None:
    services = deploys(streamed)
    assert set(services) == {
        "segment-ingest",
        "segment-deliver",
        "saasquatch-webhook",
        "segment-forward",
    }
    webhook, forward = services["saasquatch-webhook"], services["segment-forward"]
    assert (option(webhook, "--function"), option(forward, "--function")) == (
        "saasquatch_webhook",
        "forward",
    )
    assert "--allow-unauthenticated" in webhook
    assert "--no-allow-unauthenticated" in forward and "--allow-unauthenticated" not in forward
    accounts = {name: option(call, "--service-account") for name, call in services.items()}
    assert accounts["saasquatch-webhook"] == sa("saasquatch-webhook").removeprefix(
        "serviceAccount:"
    )
    assert accounts["segment-forward"] == sa("segment-forward").removeprefix("serviceAccount:")
    assert env_vars(webhook) == {
        "GOOGLE_CLOUD_PROJECT": PROJECT_ID,
        "THREADS": "32",
        "WEBHOOK_TOPIC": "saasquatch-webhooks",
        "WEBHOOK_JWKS_URL": "https://app.referralsaasquatch.com/.well-known/jwks.json",
        "WEBHOOK_TENANT_ALIASES": TENANT,  # deliver's tenant, unless others are named
        "WEBHOOK_LIVE": "any",
        "WEBHOOK_MAX_AGE_HOURS": "74",
        "LOG_LEVEL": "INFO",
    }
    WebhookSettings.from_env(env_vars(webhook))  # the receiver would start with exactly these
    assert option(forward, "--set-custom-audiences") == "segment-saasquatch-forward"
    assert env_vars(forward) == {
        "GOOGLE_CLOUD_PROJECT": PROJECT_ID,
        "THREADS": "32",
        "FORWARD_DEAD_LETTER_TOPIC": "saasquatch-webhooks-dead-letter",
        "SEGMENT_WRITE_KEY_SECRET": (
            f"projects/{PROJECT_ID}/secrets/segment-write-key/versions/latest"
        ),
        "SEGMENT_API_BASE_URL": "https://api.segment.io",
        "FORWARD_WEBHOOK_TYPES": "",
        "FORWARD_EVENT_NAMES": "{}",
        "PUSH_AUDIENCE": "segment-saasquatch-forward",
        "PUSH_SERVICE_ACCOUNT": PUSH_ACCOUNT,
        "PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN": "true",
        "LOG_LEVEL": "INFO",
    }
    ForwardSettings.from_env(env_vars(forward))  # forward would start with exactly these


def test_the_webhook_subscription_pushes_to_forward_with_its_dead_letters(
    streamed: dict[str, Any],
) -> None:
    subscription = provisioned("saasquatch-webhooks-forward")
    assert subscription.topic == f"projects/{PROJECT_ID}/topics/saasquatch-webhooks"
    assert subscription.push_config.push_endpoint == FORWARD_URL
    assert subscription.push_config.oidc_token.service_account_email == PUSH_ACCOUNT
    assert subscription.push_config.oidc_token.audience == "segment-saasquatch-forward"
    assert subscription.dead_letter_policy.dead_letter_topic == (
        f"projects/{PROJECT_ID}/topics/saasquatch-webhooks-dead-letter"
    )
    provisioned("saasquatch-webhooks-dead-letter-pull")


def test_the_reverse_direction_is_granted_per_role_and_resource(streamed: dict[str, Any]) -> None:
    stream = "saasquatch-webhooks"
    assert {
        ("run", "services", "segment-forward", sa("segment-push"), "roles/run.invoker"),
        ("pubsub", "topics", f"{stream}-dead-letter", agent, "roles/pubsub.publisher"),
        ("pubsub", "subscriptions", f"{stream}-forward", agent, "roles/pubsub.subscriber"),
        ("pubsub", "topics", stream, sa("saasquatch-webhook"), "roles/pubsub.publisher"),
        (
            "pubsub",
            "topics",
            f"{stream}-dead-letter",
            sa("segment-forward"),
            "roles/pubsub.publisher",
        ),
    } == {
        binding
        for binding in bindings(streamed)
        if stream in binding[2] or binding[2] == "segment-forward"
    }
    assert not [call for call in streamed["calls"] if call[0] in {"secrets", "iam"}]


def test_every_gcloud_call_of_the_stream_build_parses_with_the_installed_sdk(
    streamed: dict[str, Any], processes: Processes
) -> None:
    stream_calls = [
        call
        for call in streamed["calls"]
        if {"saasquatch-webhook", "segment-forward", "saasquatch-webhooks"} & set(call)
        or any("saasquatch-webhooks" in word for word in call)
    ]
    assert len(stream_calls) >= 9
    assert parse_problems(stream_calls, cwd=ROOT) == []


def test_a_public_forward_fails_the_build(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    answer = {"has": ["get-iam-policy", "segment-forward"], "stdout": "allUsers\n"}
    build = steps_with(tmp_path, emulator, [answer, *ANSWERS], _STREAM="true")
    assert build["failed"] == "deploy-forward"
    assert (
        "forward must be reachable by the push account only" in build["outputs"]["deploy-forward"]
    )


def test_a_stream_without_a_tenant_stops_the_build_and_names_are_passed_as_given(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    stopped = steps_with(
        tmp_path / "a",
        emulator,
        ANSWERS,
        _STREAM="true",
        _SAASQUATCH_TENANT_ALIAS="",
        _DRY_RUN="true",
    )
    assert stopped["failed"] == "settings"
    [line] = stopped["outputs"]["settings"].strip().splitlines()
    assert line.startswith("_WEBHOOK_TENANT_ALIASES and _SAASQUATCH_TENANT_ALIAS are both empty")
    assert stopped["calls"] == []
    named = steps_with(
        tmp_path / "b", emulator, ANSWERS, _STREAM="true", _WEBHOOK_TENANT_ALIASES="acme,acme_test"
    )
    assert named["failed"] is None
    webhook_env = env_vars(deploys(named)["saasquatch-webhook"])
    assert webhook_env["WEBHOOK_TENANT_ALIASES"] == "acme,acme_test"
    assert WebhookSettings.from_env(webhook_env).admission.tenants == {"acme", "acme_test"}


def test_a_stream_value_other_than_true_or_false_stops_the_build(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    stopped = steps_with(tmp_path, emulator, ANSWERS, _STREAM="yes")
    assert stopped["failed"] == "settings"
    assert stopped["outputs"]["settings"].strip() == "_STREAM must be true or false, not 'yes'"
