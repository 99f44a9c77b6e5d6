"""`cloudbuild.yaml`: it parses, every script is valid bash, and running its steps in order with
a stand-in `gcloud` (recording its arguments) and the real provisioning CLI against the emulator
deploys, wires and watches what docs/deploy.md promises. Every gcloud call the steps make is then
replayed through the installed Cloud SDK's own argument parser."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import pubsub_v1

from stream.forward_settings import ForwardSettings
from stream.receive_settings import WebhookSettings
from subscription.deliver_settings import DeliverSettings
from subscription.ingest_settings import IngestSettings
from tools import monitoring, setup
from tools.emulator import Emulator
from tools.processes import ROOT

from ..support.cloudbuild_standin import submitted_build
from ..support.gcloud import StandInGcloud, parse_problems
from ..support.processes import Processes

BashSyntax = Callable[[str], subprocess.CompletedProcess[str]]
BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
STEPS = {step["id"]: step for step in BUILD["steps"]}
PROJECT_ID = "acme-growth"
PROJECT_NUMBER = "123456789012"
TENANT = "a1b2c3d4e5f6g"
INGEST_URL = "https://segment-ingest-a1b2c3-uc.a.run.app"
DELIVER_URL = "https://segment-deliver-x7y8z9-uc.a.run.app"
WEBHOOK_URL = "https://saasquatch-webhook-k1l2m3-uc.a.run.app"
FORWARD_URL = "https://segment-forward-q4r5s6-uc.a.run.app"
# Values a user may have in their shell while running the build; none may reach a command line.
SECRET_VALUES = {"SAASQUATCH_API_KEY": "sq-live-9f8e7d6c5b4a", "INGEST_TOKEN": "seg-tok-1a2b3c4d"}
PUSH_ACCOUNT = f"segment-push@{PROJECT_ID}.iam.gserviceaccount.com"
DEPLOYER = f"segment-deployer@{PROJECT_ID}.iam.gserviceaccount.com"


def described(service: str, url: str, *, public: bool, **annotations: str) -> dict[str, Any]:
    """How the stand-in answers `run services describe` for a service as the build deploys it
    (or, given `unchecked` or `ingress`, as something else left it): the invoker IAM check's
    annotation as gcloud writes it, the ingress annotation and the URL, in the build's format."""
    unchecked = annotations.get("unchecked", "True" if public else "False")
    ingress = annotations.get("ingress", "all" if public else "internal")
    return {
        "has": ["run", "services", "describe", service],
        "stdout": f"{unchecked},{ingress},{url}\n",
    }


# How the stand-in answers what the steps ask: the repository exists, the receivers are public
# (no invoker IAM check, ingress all), the push consumers private (the check on, ingress
# internal, only the push account bound), each has a URL, and no monitoring resource exists yet.
ANSWERS: list[dict[str, Any]] = [
    {"has": ["artifacts", "repositories", "describe"], "stdout": "cloud-run-source-deploy\n"},
    {"has": ["get-iam-policy", "segment-deliver"], "stdout": f"serviceAccount:{PUSH_ACCOUNT}\n"},
    {"has": ["get-iam-policy", "segment-forward"], "stdout": f"serviceAccount:{PUSH_ACCOUNT}\n"},
    described("segment-ingest", INGEST_URL, public=True),
    described("segment-deliver", DELIVER_URL, public=False),
    described("saasquatch-webhook", WEBHOOK_URL, public=True),
    described("segment-forward", FORWARD_URL, public=False),
    {"has": ["describe", "--format", "json"], "rc": 1},
    {"has": ["policies", "list"], "stdout": "[]"},
]

# The project's interpreter, as `python` and `python3` (a wrapper, not a link: a venv is found
# from the path it runs as); pip installs nothing (the venv has it all).
STAND_IN_PYTHON = '#!/bin/sh\nexec "{python}" "$@"\n'
STAND_IN_PIP = "#!/bin/sh\nexit 0\n"
# gcloud's bundled Python: the one the installed Cloud SDK bundles when it has it (the same
# Debian package the gcloud image copies), else the project's interpreter without its packages
# (-S: the standard library only, as in the image).
STAND_IN_BUNDLED_PYTHON = '#!/bin/sh\nexec {python} "$@"\n'
BUNDLED_PYTHON = "/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3"


@dataclass(frozen=True)
class Image:
    """What a step's image has to run: the programs on its PATH, and interpreters found only at
    a path of their own."""

    on_path: tuple[str, ...]
    at: tuple[str, ...] = ()


# Every image a step names, and what it really has (Cloud Build's workers are x86-64):
# - the gcloud image, cloud-sdk-docker's stable/Dockerfile: debian:trixie-slim with the Cloud
#   SDK's Debian package copied in (/usr/lib/google-cloud-sdk, its bin on PATH) and python3
#   installed on ARM only. On x86-64 its one Python is the SDK's bundled one, which gcloud's own
#   launcher runs on (bin/gcloud: bundledpythonunix/bin/python3 when the machine is x86_64).
# - the Python image, python:3.11.x-slim-bookworm: python, python3 and pip; no gcloud.
IMAGES = {
    "${_GCLOUD_IMAGE}": Image(on_path=("gcloud",), at=(BUNDLED_PYTHON,)),
    "${_PYTHON_IMAGE}": Image(on_path=("python", "python3", "pip")),
}
# Programs of this machine no image above has on its PATH: a step that runs one fails.
NOT_ON_ANY_PATH = re.compile(r"^(python|pip|gcloud|gsutil|bq|docker-credential-gcloud)")
# A word of a script that runs Python: `python3`, `python`, `/a/path/to/python3`.
PYTHON_WORD = re.compile(r"(?<![\w./$-])((?:/[\w.-]+)*/)?(python[0-9.]*)(?![\w.-])")


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


def bundled_python() -> str:
    """What the stand-in of gcloud's bundled Python runs (STAND_IN_BUNDLED_PYTHON)."""
    gcloud = shutil.which("gcloud")
    if gcloud is not None:
        sdk = Path(gcloud).resolve().parent.parent
        bundled = sdk / BUNDLED_PYTHON.split("google-cloud-sdk/", 1)[1]
        if os.access(bundled, os.X_OK):
            return f'"{bundled}"'
    return f'"{sys.executable}" -S'


def images(tmp_path: Path, gcloud: Path) -> dict[str, dict[str, str]]:
    """Each image of IMAGES, as a PATH and a root its interpreters' paths are moved under: only
    what the image has is there, beside this machine's tools (bash, grep, ...) but for those
    of NOT_ON_ANY_PATH."""
    tools = tmp_path / "machine-tools"
    tools.mkdir()
    for directory in (Path("/usr/bin"), Path("/bin")):
        for program in directory.iterdir():
            if not NOT_ON_ANY_PATH.match(program.name) and not (tools / program.name).exists():
                (tools / program.name).symlink_to(program)
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    for name in ("python", "python3"):
        (stand_ins / name).write_text(STAND_IN_PYTHON.format(python=sys.executable))
    (stand_ins / "pip").write_text(STAND_IN_PIP)
    bundled = STAND_IN_BUNDLED_PYTHON.format(python=bundled_python())
    (stand_ins / "bundled-python").write_text(bundled)
    for program in stand_ins.iterdir():
        program.chmod(0o755)
    (stand_ins / "gcloud").symlink_to(gcloud)
    made = {}
    for number, (name, image) in enumerate(IMAGES.items()):
        home = tmp_path / f"image-{number}"
        (home / "bin").mkdir(parents=True)
        for program in image.on_path:
            (home / "bin" / program).symlink_to(stand_ins / program)
        for path in image.at:
            (home / "root" / path.lstrip("/")).parent.mkdir(parents=True)
            (home / "root" / path.lstrip("/")).symlink_to(stand_ins / "bundled-python")
        made[name] = {"PATH": f"{home / 'bin'}:{tools}", "root": str(home / "root")}
    return made


def in_image(script: str, root: str) -> str:
    """`script` with every interpreter path of any image moved under `root`: there only if this
    image has it."""
    for path in {path for image in IMAGES.values() for path in image.at}:
        script = script.replace(path, f"{root}{path}")
    return script


def run_steps(
    tmp_path: Path,
    answers: list[dict[str, Any]],
    emulator_host: str,
    steps: list[dict[str, Any]] | None = None,
    **overrides: str,
) -> dict[str, Any]:
    """Every step after `test` (or of `steps`), in order, as Cloud Build would, each with only
    what its image has (IMAGES) and the stand-ins for it; stops at the first that fails."""
    gcloud = StandInGcloud(tmp_path / "bin")
    gcloud.answer(answers)
    made = images(tmp_path, tmp_path / "bin" / "gcloud")  # the stand-in StandInGcloud wrote
    workspace = tmp_path / "workspace"
    workspace.symlink_to(ROOT)  # the build runs in the source tree
    env = {
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
    for step in BUILD["steps"] if steps is None else steps:
        if step["id"] == "test":
            continue
        image = made[step["name"]]
        script = tmp_path / f"{step['id']}.sh"
        script.write_text(in_image(step["script"], image["root"]))
        result = subprocess.run(
            ["bash", str(script)],
            cwd=tmp_path,
            env={**env, "PATH": image["PATH"]},
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
    # ingest is public without allUsers (which domain-restricted sharing refuses): Cloud Run's
    # invoker IAM check is off. deliver's is pinned on, and only internal traffic (Pub/Sub's push
    # from this project) reaches it: a deploy keeps whatever was set before, clicks included.
    assert {"--no-invoker-iam-check", "--ingress"} <= set(ingest)
    assert option(ingest, "--ingress") == "all"
    assert not {"--allow-unauthenticated", "--invoker-iam-check"} & set(ingest)
    assert {"--no-allow-unauthenticated", "--invoker-iam-check"} <= set(deliver)
    assert option(deliver, "--ingress") == "internal"
    assert not {"--allow-unauthenticated", "--no-invoker-iam-check"} & set(deliver)
    # The flood's cost ceiling: memory x instances (docs/deploy.md#the-floods-ceiling).
    assert option(ingest, "--max-instances") == "10"
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
    assert deliver_env["LEDGER_COLLECTION"] == "segment_saasquatch_deliveries"
    assert deliver_env["LEDGER_DATABASE"] == "(default)"
    assert deliver_env["REMEMBER_ACCOUNTS"] == "", "unset: as DELIVERY_LEDGER"
    assert deliver_env["ACCOUNTS_COLLECTION"] == "segment_saasquatch_accounts"
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
    # Neither subscription expires: an expiration policy with no TTL (Pub/Sub's default deletes
    # one after 31 idle days, and the dead-letter pull subscription is idle by design).
    for each in (subscription, provisioned("segment-events-dead-letter-pull")):
        assert "expiration_policy" in each and "ttl" not in each.expiration_policy, each.name


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
    # No channel given: one line says the alerts notify no one, and the step still succeeds.
    [warning] = [
        line for line in deployed["outputs"]["monitoring"].splitlines() if "notification" in line
    ]
    assert "warning: no notification channels" in warning and "notify no one" in warning
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
    [command] = [line for line in script.splitlines() if "-m tools.monitoring" in line]
    given = dict(re.findall(r'(--[\w-]+) "\$\{(\w+)\}"', command))
    # Checked values, passed as the build's defaults (which are the tool's own).
    checked = {"--deployment": "_DEPLOYMENT", "--retry-seconds": "_MONITORING_RETRY_SECONDS"}
    assert {option: given.pop(option) for option in checked} == checked
    argv = [word for option, name in given.items() for word in (option, f"<{name}>")]
    args = monitoring._parser().parse_args(argv)
    assert args.project == "<PROJECT_ID>"
    assert args.notification_channels == "<_NOTIFICATION_CHANNELS>"
    for attribute, name in monitoring.NAMES.items():
        assert getattr(args, attribute) == f"<_{name}>", attribute
    defaults = monitoring._parser().parse_args(["--project", PROJECT_ID])
    assert defaults.deployment == BUILD["substitutions"]["_DEPLOYMENT"] == ""
    assert defaults.retry_seconds == int(BUILD["substitutions"]["_MONITORING_RETRY_SECONDS"])


# What gcloud prints for Cloud Monitoring's 404 on a policy whose log-based metric it does not see
# yet (a metric made minutes ago).
METRIC_NOT_YET = (
    "ERROR: (gcloud.alpha.monitoring.policies.create) Projects instance [acme-growth] not found: "
    'Cannot find metric(s) that match type = "logging.googleapis.com/user/segment_ingest_requests"'
    ". If a metric was created recently, it could take up to 10 minutes to become available. "
    "Please try again soon.\n"
)


def test_the_whole_build_gets_through_metrics_monitoring_does_not_see_yet(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    """A first build: Monitoring refuses the first two alert policies with its 404 "Cannot find
    metric(s)"; the monitoring step asks again (after _MONITORING_RETRY_SECONDS, 0 here, 30 in a
    real build) and the build succeeds with every policy created."""
    refusing = {"has": ["policies", "create"], "times": 2, "rc": 1, "stderr": METRIC_NOT_YET}
    build = steps_with(tmp_path, emulator, [refusing, *ANSWERS], _MONITORING_RETRY_SECONDS="0")
    assert build["failed"] is None, build["outputs"]
    said = build["outputs"]["monitoring"].splitlines()
    waited = [line for line in said if "does not see its metric yet" in line]
    assert len(waited) == 2 and all(line.endswith("trying again in 0 s") for line in waited)
    creates = [
        call for call in build["calls"] if call[:4] == ["alpha", "monitoring", "policies", "create"]
    ]
    files = sorted(path.stem for path in (ROOT / "monitoring" / "alerts").glob("*.json"))
    assert len(creates) == len(files) + 2
    created = [line for line in said if line.startswith("alert policy ") and "created" in line]
    assert created == [f"alert policy {name}: created" for name in files]


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
            # An organisation policy refused to switch the check off (or it was switched back).
            described("segment-ingest", INGEST_URL, public=True, unchecked=""),
            "ingest-is-public",
            "Segment would get 403 on every request",
        ),
        (
            described("segment-ingest", INGEST_URL, public=True, ingress="internal"),
            "ingest-is-public",
            "Segment would get 403 on every request",
        ),
        (
            {"has": ["get-iam-policy", "segment-deliver"], "stdout": "allUsers\n"},
            "deploy-deliver",
            "must be reachable by the push account only",
        ),
        (
            described("segment-deliver", DELIVER_URL, public=False, unchecked="true"),
            "deploy-deliver",
            "must be reachable by the push account only",
        ),
        (
            described("segment-deliver", DELIVER_URL, public=False, ingress="all"),
            "deploy-deliver",
            "must be reachable by the push account only",
        ),
    ],
    ids=[
        "no repository",
        "ingest checks IAM",
        "ingest internal",
        "deliver public",
        "deliver skips the IAM check",
        "deliver open to all traffic",
    ],
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
    # Like ingest and deliver: public without allUsers, private with the check pinned on.
    assert "--no-invoker-iam-check" in webhook and option(webhook, "--ingress") == "all"
    assert not {"--allow-unauthenticated", "--invoker-iam-check"} & set(webhook)
    assert option(webhook, "--max-instances") == "3"
    assert {"--no-allow-unauthenticated", "--invoker-iam-check"} <= set(forward)
    assert option(forward, "--ingress") == "internal"
    assert not {"--allow-unauthenticated", "--no-invoker-iam-check"} & set(forward)
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


@pytest.mark.parametrize(
    ("answer", "failed", "says"),
    [
        (
            {"has": ["get-iam-policy", "segment-forward"], "stdout": "allUsers\n"},
            "deploy-forward",
            "forward must be reachable by the push account only",
        ),
        (
            described("segment-forward", FORWARD_URL, public=False, unchecked="True"),
            "deploy-forward",
            "forward must be reachable by the push account only",
        ),
        (
            described("segment-forward", FORWARD_URL, public=False, ingress="all"),
            "deploy-forward",
            "forward must be reachable by the push account only",
        ),
        (
            described("saasquatch-webhook", WEBHOOK_URL, public=True, unchecked="False"),
            "deploy-webhook",
            "SaaSquatch would be refused",
        ),
        (
            described("saasquatch-webhook", WEBHOOK_URL, public=True, ingress="internal"),
            "deploy-webhook",
            "SaaSquatch would be refused",
        ),
    ],
    ids=[
        "forward public",
        "forward skips the IAM check",
        "forward open to all traffic",
        "webhook checks IAM",
        "webhook internal",
    ],
)
def test_a_stream_deploy_that_is_not_what_it_should_be_fails_the_build_with_one_line(
    tmp_path: Path,
    emulator: Emulator,
    processes: Processes,
    answer: dict[str, Any],
    failed: str,
    says: str,
) -> None:
    build = steps_with(tmp_path, emulator, [answer, *ANSWERS], _STREAM="true")
    assert build["failed"] == failed
    assert says in build["outputs"][failed].strip().splitlines()[-1]


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


# --- ingest's token versions: a rotation is a build run ----------------------------------------


@pytest.mark.parametrize("versions", ["3 latest", "3,latest", " 3 , latest "])
def test_ingest_accepts_every_token_version_the_build_names(
    tmp_path: Path, emulator: Emulator, processes: Processes, versions: str
) -> None:
    build = steps_with(tmp_path, emulator, ANSWERS, _INGEST_TOKEN_VERSIONS=versions)
    assert build["failed"] is None, build["outputs"]
    ingest_env = env_vars(deploys(build)["segment-ingest"])
    secret = f"projects/{PROJECT_ID}/secrets/segment-ingest-token/versions"
    assert IngestSettings.from_env(ingest_env).ingest_token_secrets == [
        f"{secret}/3",
        f"{secret}/latest",
    ]


@pytest.mark.parametrize("versions", ["", " , ", "../../saasquatch-api-key/versions/1", "3|x"])
def test_token_versions_that_are_not_versions_stop_the_build_before_any_deploy(
    tmp_path: Path, emulator: Emulator, processes: Processes, versions: str
) -> None:
    stopped = steps_with(tmp_path, emulator, ANSWERS, _INGEST_TOKEN_VERSIONS=versions)
    assert stopped["failed"] == "deploy-ingest"
    [line] = stopped["outputs"]["deploy-ingest"].strip().splitlines()
    assert line.startswith("_INGEST_TOKEN_VERSIONS ")
    assert not deploys(stopped)


DOCS_PRELUDE = f"""PROJECT_ID={PROJECT_ID}
REGION=europe-west1
sa() {{ echo "$1@$PROJECT_ID.iam.gserviceaccount.com"; }}
"""


def documented(document: str, marker: str) -> str:
    """The one shell block of `document` that holds `marker`."""
    blocks = re.findall(r"^```sh\n(.*?)^```", (ROOT / document).read_text(), re.M | re.S)
    [block] = [block for block in blocks if marker in block]
    return block


def submitted(script: str, tmp_path: Path, processes: Processes) -> dict[str, str]:
    """The substitutions Cloud Build receives when `script` (a documented `gcloud beta builds
    submit`) runs through the real gcloud, against a stand-in Cloud Build."""
    build = submitted_build(DOCS_PRELUDE + script, tmp_path, processes, PROJECT_ID)
    return dict(build["substitutions"])


def test_the_documented_rotation_is_a_build_run_that_accepts_both_tokens(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    """docs/operations/rotation.md's first build, as Cloud Build receives it and runs it:
    ingest accepts the current version and `latest` (the new token, once added) together, so
    the deploy itself cannot drop the token Segment still sends."""
    substitutions = submitted(
        documented("docs/operations/rotation.md", "_INGEST_TOKEN_VERSIONS="), tmp_path, processes
    )
    assert substitutions["_INGEST_TOKEN_VERSIONS"] == "3 latest"
    build = steps_with(tmp_path / "build", emulator, ANSWERS, **substitutions)
    assert build["failed"] is None, build["outputs"]
    ingest_env = env_vars(deploys(build)["segment-ingest"])
    secret = f"projects/{PROJECT_ID}/secrets/segment-ingest-token/versions"
    assert IngestSettings.from_env(ingest_env).ingest_token_secrets == [
        f"{secret}/3",
        f"{secret}/latest",
    ]


# --- staging beside live -------------------------------------------------------------------------


def deployment_names(build: dict[str, Any]) -> dict[str, set[str]]:
    """Every name a build gave a resource of its own, by kind (from its gcloud calls)."""
    services = deploys(build)
    envs = [env_vars(call) for call in services.values()]
    secrets = {
        found
        for env in envs
        for value in env.values()
        for found in re.findall(r"/secrets/([^/,|]+)/versions/", value)
    } | {
        option(call, "--set-secrets").split("=", 1)[1].split(":")[0]
        for call in services.values()
        if "--set-secrets" in call
    }
    return {
        "service": set(services),
        "audience": {
            option(call, "--set-custom-audiences")
            for call in services.values()
            if "--set-custom-audiences" in call
        },
        "secret": secrets,
        "ledger collection": {
            env["LEDGER_COLLECTION"] for env in envs if "LEDGER_COLLECTION" in env
        },
        "accounts collection": {
            env["ACCOUNTS_COLLECTION"] for env in envs if "ACCOUNTS_COLLECTION" in env
        },
        "topic": {env[name] for env in envs for name in env if name.endswith("TOPIC")},
        "granted on": {binding[2] for binding in bindings(build)},
        **monitoring_names(build),
    }


def monitoring_names(build: dict[str, Any]) -> dict[str, set[str]]:
    """The names of the monitoring a build made (from its gcloud calls and the files they sent):
    log-based metrics, dashboard ids, the policies' identifying label values, and the display
    names of the dashboard and the policies."""

    def sent(call: list[str]) -> dict[str, Any]:
        flag = "--policy-from-file" if "policies" in call else "--config-from-file"
        return json.loads(Path(option(call, flag)).read_text())

    made = [call for call in build["calls"] if "create" in call or "update" in call]
    dashboards = [sent(call) for call in made if call[:2] == ["monitoring", "dashboards"]]
    policies = [sent(call) for call in made if call[:3] == ["alpha", "monitoring", "policies"]]
    return {
        "log metric": {call[3] for call in made if call[:2] == ["logging", "metrics"]},
        "dashboard": {body["name"].rsplit("/", 1)[1] for body in dashboards},
        "alert policy label": {body["userLabels"][monitoring.POLICY_LABEL] for body in policies},
        "monitoring title": {body["displayName"] for body in [*dashboards, *policies]},
    }


def pubsub_names() -> tuple[set[str], set[str]]:
    """The emulator's topics and subscriptions in the project."""
    project = f"projects/{PROJECT_ID}"
    topics = {topic.name for topic in pubsub_v1.PublisherClient().list_topics(project=project)}
    subscriptions = {
        subscription.name
        for subscription in pubsub_v1.SubscriberClient().list_subscriptions(project=project)
    }
    return topics, subscriptions


def test_a_second_deployment_that_keeps_one_of_live_s_names_stops_the_build(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    """With `_DEPLOYMENT` set, a name left at live's (here every one, and then deliver's alone)
    would redeploy live's service with staging's settings: the `settings` step says which."""
    stopped = steps_with(tmp_path / "a", emulator, ANSWERS, _DEPLOYMENT="staging")
    assert stopped["failed"] == "settings" and stopped["calls"] == []
    [line] = stopped["outputs"]["settings"].strip().splitlines()
    assert line.startswith("_INGEST_SERVICE is 'segment-ingest', which does not name the deploy")
    names = dict(
        line.split("=", 1)
        for line in documented("docs/deploy.md", "STAGING=$(paste").splitlines()
        if line.startswith("_")
    )
    names["_DELIVER_SERVICE"] = "segment-deliver"
    one = steps_with(tmp_path / "b", emulator, ANSWERS, **names)
    assert one["failed"] == "settings"
    assert one["outputs"]["settings"].strip().startswith("_DELIVER_SERVICE is 'segment-deliver'")


def test_staging_beside_live_shares_no_name_with_it(
    tmp_path: Path, emulator: Emulator, processes: Processes
) -> None:
    """docs/deploy.md's staging build, as Cloud Build receives it, run after a live build in the
    same project: every service, topic, subscription, secret, audience and ledger collection is
    its own, and so are its log-based metrics, dashboard and alert policies (by id, label and
    title), and live's subscriptions still push to live's deliver and forward."""
    staging = submitted(documented("docs/deploy.md", "STAGING=$(paste"), tmp_path, processes)
    urls = {
        name: f"https://{staging[name]}-s7t8u9-uc.a.run.app"
        for name in ("_INGEST_SERVICE", "_DELIVER_SERVICE", "_WEBHOOK_SERVICE", "_FORWARD_SERVICE")
    }
    staging_answers = [
        described(staging["_INGEST_SERVICE"], urls["_INGEST_SERVICE"], public=True),
        described(staging["_DELIVER_SERVICE"], urls["_DELIVER_SERVICE"], public=False),
        described(staging["_WEBHOOK_SERVICE"], urls["_WEBHOOK_SERVICE"], public=True),
        described(staging["_FORWARD_SERVICE"], urls["_FORWARD_SERVICE"], public=False),
    ]
    emulator.reset()
    live = run_steps(tmp_path / "live", ANSWERS, emulator.host, _STREAM="true")
    assert live["failed"] is None, live["outputs"]
    live_topics, live_subscriptions = pubsub_names()
    second = run_steps(
        tmp_path / "staging",
        [*staging_answers, *ANSWERS],
        emulator.host,
        **{**staging, "_STREAM": "true"},
    )
    assert second["failed"] is None, second["outputs"]
    topics, subscriptions = pubsub_names()
    assert len(topics - live_topics) == len(live_topics) == 4
    assert len(subscriptions - live_subscriptions) == len(live_subscriptions) == 4
    ours, theirs = deployment_names(live), deployment_names(second)
    for kind, names in ours.items():
        assert names and theirs[kind], kind
        assert not names & theirs[kind], (kind, names & theirs[kind])
    # Staging's dashboard and policies read staging's metrics only.
    watching = [
        Path(call[call.index(flag) + 1]).read_text()
        for call in second["calls"]
        for flag in ("--policy-from-file", "--config-from-file")
        if flag in call and call[:2] != ["logging", "metrics"]
    ]
    read = {
        name
        for text in watching
        for name in re.findall(r"logging\.googleapis\.com/user/([\w-]+)", text)
    }
    assert read == theirs["log metric"]
    # Live's pushes still go to live's consumers, for live's audiences.
    for subscription, url, audience in (
        ("segment-events-deliver", DELIVER_URL, "segment-saasquatch-deliver"),
        ("saasquatch-webhooks-forward", FORWARD_URL, "segment-saasquatch-forward"),
    ):
        push = provisioned(subscription).push_config
        assert (push.push_endpoint, push.oidc_token.audience) == (url, audience)
    assert (
        provisioned(staging["_SUBSCRIPTION"]).push_config.push_endpoint
        == (urls["_DELIVER_SERVICE"])
    )
    deliver_env = env_vars(deploys(second)[staging["_DELIVER_SERVICE"]])
    assert deliver_env["SAASQUATCH_TENANT_ALIAS"] == staging["_SAASQUATCH_TENANT_ALIAS"]


# --- each step on what its image has (IMAGES) ------------------------------------------------

NO_EMULATOR = "localhost:9"  # for steps that make no Pub/Sub call


def test_every_step_runs_python_only_where_its_image_has_it() -> None:
    """Read from the scripts: each Python a step runs is on its image's PATH, or at a path its
    image has. The gcloud image has none on PATH: the monitoring step runs the bundled one."""
    assert {step["name"] for step in BUILD["steps"]} <= set(IMAGES), "an image IMAGES lacks"
    assert not [name for name in IMAGES["${_GCLOUD_IMAGE}"].on_path if "python" in name]
    found = [("x", d, n) for d, n in PYTHON_WORD.findall('python3 -m x; /usr/bin/python3 "$p"')]
    assert found == [("x", "", "python3"), ("x", "/usr/bin/", "python3")]
    assert not PYTHON_WORD.findall('bundled_python=x; "${bundled_python}" -m tools.monitoring')
    runs: dict[str, set[str]] = {}
    for step in BUILD["steps"]:
        image = IMAGES[step["name"]]
        for directory, name in PYTHON_WORD.findall(step["script"]):
            has = f"{directory}{name}" in image.at if directory else name in image.on_path
            assert has, f"{step['id']} runs {directory}{name}, which {step['name']} lacks"
            runs.setdefault(step["id"], set()).add(f"{directory}{name}")
    assert runs["monitoring"] == {BUNDLED_PYTHON}


def test_a_step_that_runs_python_its_image_lacks_fails_the_build(
    tmp_path: Path, processes: Processes
) -> None:
    """Run, not read: the monitoring step as it was (`python3` in the gcloud image) fails, the
    step as it is succeeds, and the same step in the Python image (no bundled Python) fails."""
    step = STEPS["monitoring"]
    as_before = {**step, "script": step["script"].replace('"${bundled_python}" -m', "python3 -m")}
    assert as_before["script"] != step["script"]
    before = run_steps(tmp_path / "before", ANSWERS, NO_EMULATOR, steps=[as_before])
    assert before["failed"] == "monitoring"
    assert "python3: command not found" in before["outputs"]["monitoring"]
    now = run_steps(tmp_path / "now", ANSWERS, NO_EMULATOR, steps=[step])
    assert now["failed"] is None, now["outputs"]
    assert any(call[:3] == ["logging", "metrics", "create"] for call in now["calls"])
    elsewhere = {**step, "name": "${_PYTHON_IMAGE}"}
    moved = run_steps(tmp_path / "moved", ANSWERS, NO_EMULATOR, steps=[elsewhere])
    assert moved["failed"] == "monitoring"
    [line] = moved["outputs"]["monitoring"].strip().splitlines()
    assert "bundledpythonunix/bin/python3 (gcloud's bundled Python" in line
    assert moved["calls"] == []


def test_given_notification_channels_every_policy_notifies_them_without_a_warning(
    tmp_path: Path, processes: Processes
) -> None:
    channels = [f"projects/{PROJECT_ID}/notificationChannels/{n}" for n in (17, 42)]
    build = run_steps(
        tmp_path,
        ANSWERS,
        NO_EMULATOR,
        steps=[STEPS["monitoring"]],
        _NOTIFICATION_CHANNELS=",".join(channels),
    )
    assert build["failed"] is None, build["outputs"]
    assert "notification" not in build["outputs"]["monitoring"]
    policies = [
        json.loads(Path(option(call, "--policy-from-file")).read_text())
        for call in build["calls"]
        if call[:4] == ["alpha", "monitoring", "policies", "create"]
    ]
    assert len(policies) == len(list((ROOT / "monitoring" / "alerts").glob("*.json")))
    assert all(policy["notificationChannels"] == channels for policy in policies)


# --- _TESTS: which tests run before the deploy -------------------------------------------------


def run_test_step(tmp_path: Path, tests: str) -> tuple[str, list[str]]:
    """The `test` step with `_TESTS=tests`: its output, and each program it ran with its
    arguments (apt-get, make, curl, tar, gcloud and mkdir are stand-ins that only record)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    ran = tmp_path / "ran"
    for program in ("apt-get", "make", "curl", "tar", "gcloud", "mkdir"):
        (bin_dir / program).write_text(f'#!/bin/sh\necho "{program} $*" >> "{ran}"\n')
        (bin_dir / program).chmod(0o755)
    script = tmp_path / "test.sh"
    script.write_text(STEPS["test"]["script"])
    substitutions = {name: str(value) for name, value in BUILD["substitutions"].items()}
    result = subprocess.run(
        ["bash", str(script)],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", **substitutions, "_TESTS": tests},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == (1 if tests not in {"fast", "full", "none"} else 0), result
    return result.stdout + result.stderr, ran.read_text().splitlines() if ran.exists() else []


def test_the_fast_tier_runs_by_default_the_whole_suite_on_request(
    tmp_path: Path, processes: Processes
) -> None:
    assert BUILD["substitutions"]["_TESTS"] == "fast"
    _output, fast = run_test_step(tmp_path / "fast", "fast")
    assert fast[-1] == "make check"
    assert [line for line in fast if line.startswith("apt-get install")] == [
        "apt-get install -y -qq --no-install-recommends make"
    ]
    assert not [line for line in fast if line.split()[0] in {"curl", "gcloud"}]  # no emulator
    _output, full = run_test_step(tmp_path / "full", "full")
    assert full[-1] == "make test"
    assert "openjdk-17-jre-headless" in " ".join(full)
    [components] = [line for line in full if line.startswith("gcloud components install")]
    assert {"pubsub-emulator", "cloud-firestore-emulator"} <= set(components.split())
    output, none = run_test_step(tmp_path / "none", "none")
    assert none == []
    assert output.strip() == "_TESTS=none: no test runs before this deploy"
    output, bad = run_test_step(tmp_path / "bad", "quick")
    assert bad == [] and output.strip() == "_TESTS must be fast, full or none, not 'quick'"


@pytest.mark.parametrize(
    ("substitution", "option", "values"),
    [
        (
            "_DEPLOYMENT",
            "--deployment",
            ["", "staging", "eu_test-2", "s" * 24, "s" * 25, "Staging", "1st", "-x", "a.b", "a b"],
        ),
        (
            "_MONITORING_RETRY_SECONDS",
            "--retry-seconds",
            ["0", "30", "60", "08", "61", "100", "-1", "x", "", "1.5", " 5"],
        ),
    ],
)
def test_the_settings_step_and_the_monitoring_tool_accept_the_same_values(
    tmp_path: Path, processes: Processes, substitution: str, option: str, values: list[str]
) -> None:
    """What the build refuses before anything runs is what `tools.monitoring` would refuse at the
    end, after the deploys; each refusal is one line naming the substitution."""
    staging = [
        line.split("=", 1)[0]
        for line in documented("docs/deploy.md", "STAGING=$(paste").splitlines()
        if line.startswith("_") and not line.startswith("_DEPLOYMENT=")
    ]
    for number, value in enumerate(values):
        # A deployment's own names, as the settings step asks of one (any value, valid or not).
        own = (
            {name: f"{BUILD['substitutions'][name]}-{value}" for name in staging}
            if substitution == "_DEPLOYMENT"
            else {}
        )
        build = run_steps(
            tmp_path / str(number),
            ANSWERS,
            NO_EMULATOR,
            steps=[STEPS["settings"]],
            **own,
            **{substitution: value},
        )
        try:
            monitoring._parser().parse_args(["--project", PROJECT_ID, option, value])
        except SystemExit:
            tool_accepts = False
        else:
            tool_accepts = True
        assert (build["failed"] is None) == tool_accepts, (value, build["outputs"])
        if not tool_accepts:
            [line] = build["outputs"]["settings"].strip().splitlines()
            assert line.startswith(f"{substitution} must be ") and f"'{value}'" in line


def test_a_tests_value_other_than_fast_full_or_none_stops_the_build(
    tmp_path: Path, processes: Processes
) -> None:
    stopped = run_steps(tmp_path, ANSWERS, NO_EMULATOR, steps=[STEPS["settings"]], _TESTS="all")
    assert stopped["failed"] == "settings"
    assert stopped["outputs"]["settings"].strip() == "_TESTS must be fast, full or none, not 'all'"
    assert stopped["calls"] == []


def test_the_staging_setup_makes_what_the_staging_build_names() -> None:
    """docs/deploy.md's one-time setup for staging, as `tools setup` parses it, names the very
    secrets and ledger collection its `$STAGING` build reads."""
    names = dict(
        line.split("=", 1)
        for line in documented("docs/deploy.md", "STAGING=$(paste").splitlines()
        if line.startswith("_")
    )
    command = documented(
        "docs/deploy.md", "--ingest-token-secret segment-ingest-token-staging"
    ).replace("\\\n", " ")
    words = shlex.split(command)
    args = setup._parser().parse_args(words[words.index("setup") + 1 :])
    assert (
        args.ingest_token_secret,
        args.api_key_secret,
        args.ledger_collection,
        args.accounts_collection,
    ) == (
        names["_INGEST_TOKEN_SECRET"],
        names["_SAASQUATCH_API_KEY_SECRET"],
        names["_LEDGER_COLLECTION"],
        names["_ACCOUNTS_COLLECTION"],
    )
    # Every name of the staging set differs from the build's default for it.
    defaults = BUILD["substitutions"]
    assert names and all(value != defaults[name] for name, value in names.items())
