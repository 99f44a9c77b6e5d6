"""`cloudbuild.yaml`: it parses, every script is valid bash, and running the deploy steps with a
stand-in `gcloud` (recording its arguments) and the real provisioning CLI against the emulator
deploys and wires what docs/deploy.md promises."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import pubsub_v1

from tools.emulator import Emulator
from tools.processes import ROOT

from ..support.processes import Processes

BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
STEPS = {step["id"]: step for step in BUILD["steps"]}
PROJECT_ID = "acme-growth"
PROJECT_NUMBER = "123456789012"
# Values a user may have in their shell while running the build; none may reach a command line.
SECRET_VALUES = {"SAASQUATCH_API_KEY": "sq-live-9f8e7d6c5b4a", "INGEST_TOKEN": "seg-tok-1a2b3c4d"}

STAND_IN_GCLOUD = """#!{python}
import json, os, sys
with open(os.environ["GCLOUD_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:4] == ["run", "services", "describe"]:
    print(f"https://{{sys.argv[4]}}-x7y8z9-uc.a.run.app")
"""
STAND_IN_PIP = "#!/bin/sh\nexit 0\n"
# The project's interpreter (a wrapper, not a link: a venv is found from the path it runs as).
STAND_IN_PYTHON = '#!/bin/sh\nexec "{python}" "$@"\n'


def test_it_parses_and_maps_substitutions_into_the_scripts() -> None:
    assert BUILD["options"]["automapSubstitutions"] is True
    assert list(STEPS) == [
        "test",
        "secret-access",
        "deploy-ingest",
        "deploy-deliver",
        "provision",
        "pubsub-access",
    ]
    for step in BUILD["steps"]:
        assert set(step) <= {"id", "name", "waitFor", "script"}, step["id"]


def test_every_substitution_a_script_uses_has_a_default() -> None:
    defined = set(BUILD["substitutions"])
    for step in BUILD["steps"]:
        used = set(re.findall(r"\$\{?(_[A-Z0-9_]+)", step["script"] + step["name"]))
        assert used <= defined, (step["id"], used - defined)
    unused = defined - {
        name
        for step in BUILD["steps"]
        for name in re.findall(r"\$\{?(_[A-Z0-9_]+)", step["script"] + step["name"])
    }
    assert not unused, f"substitutions nothing reads: {unused}"


@pytest.mark.parametrize("step_id", list(STEPS))
def test_each_script_is_valid_bash(step_id: str, tmp_path: Path, processes: Processes) -> None:
    script = tmp_path / "step.sh"
    script.write_text(STEPS[step_id]["script"])
    result = processes.run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr
    assert STEPS[step_id]["script"].startswith("#!/usr/bin/env bash\nset -euo pipefail\n")


def test_the_tests_run_first_and_everything_else_waits_for_them() -> None:
    assert "make test" in STEPS["test"]["script"]
    assert STEPS["secret-access"]["waitFor"] == ["test"]
    assert {"deploy-ingest", "deploy-deliver"} <= {
        step["id"] for step in BUILD["steps"] if step.get("waitFor") == ["secret-access"]
    }


@pytest.fixture(scope="module")
def deployed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every step after `test` in order, as Cloud Build would, with stand-ins on PATH."""
    emulator.reset()
    tmp_path = tmp_path_factory.mktemp("build")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(STAND_IN_GCLOUD.format(python=sys.executable))
    (bin_dir / "pip").write_text(STAND_IN_PIP)
    (bin_dir / "python").write_text(STAND_IN_PYTHON.format(python=sys.executable))
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    log = tmp_path / "gcloud.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GCLOUD_LOG": str(log),
        "PYTHONPATH": str(ROOT),
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "PROJECT_ID": PROJECT_ID,
        "PROJECT_NUMBER": PROJECT_NUMBER,
        **SECRET_VALUES,
        **{name: str(value) for name, value in BUILD["substitutions"].items()},
        "_SAASQUATCH_TENANT_ALIAS": "a1b2c3d4e5f6g",
    }
    outputs = {}
    for step in BUILD["steps"][1:]:
        script = tmp_path / f"{step['id']}.sh"
        script.write_text(step["script"])
        result = subprocess.run(
            ["bash", str(script)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (step["id"], result.stdout, result.stderr)
        outputs[step["id"]] = result.stdout + result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return {"calls": calls, "outputs": outputs}


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def env_vars(call: list[str]) -> dict[str, str]:
    value = option(call, "--set-env-vars")
    assert value.startswith("^|^")
    return dict(pair.split("=", 1) for pair in value[3:].split("|"))


def test_both_services_are_deployed_from_source_with_their_targets(
    deployed: dict[str, Any],
) -> None:
    deploys = {call[2]: call for call in deployed["calls"] if call[:2] == ["run", "deploy"]}
    assert set(deploys) == {"segment-ingest", "segment-deliver"}
    ingest, deliver = deploys["segment-ingest"], deploys["segment-deliver"]
    for call, target in ((ingest, "ingest"), (deliver, "deliver")):
        assert option(call, "--source") == "."
        assert option(call, "--function") == target
        assert option(call, "--region") == "us-central1"
        assert option(call, "--base-image") == "python311"
    assert "--allow-unauthenticated" in ingest
    assert "--no-allow-unauthenticated" in deliver
    assert "--allow-unauthenticated" not in deliver
    assert (
        option(ingest, "--service-account")
        == f"segment-ingest@{PROJECT_ID}.iam.gserviceaccount.com"
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
    # Sized together with MAX_BODY_BYTES: every thread may hold a maximum body.
    assert option(ingest, "--memory") == "3Gi"
    # As many requests per instance as it has threads: none waits inside for a thread.
    for call in (ingest, deliver):
        assert option(call, "--concurrency") == env_vars(call)["THREADS"] == "32"
    # Past these Cloud Run closes the connection; deliver's matches the ack deadline.
    assert option(ingest, "--timeout") == "30"
    assert option(deliver, "--timeout") == "60"
    assert "--memory" not in deliver
    deliver_env = env_vars(deliver)
    assert deliver_env["THREADS"] == "32"
    assert deliver_env["SAASQUATCH_TENANT_ALIAS"] == "a1b2c3d4e5f6g"
    assert deliver_env["SAASQUATCH_API_KEY_SECRET"] == (
        f"projects/{PROJECT_ID}/secrets/saasquatch-api-key/versions/latest"
    )
    assert deliver_env["EVENT_KEY_MAP"] == "{}"
    assert "DRY_RUN" not in deliver_env


def test_the_push_subscription_has_the_dead_letter_topic_and_the_oidc_account(
    deployed: dict[str, Any],
) -> None:
    url = "https://segment-deliver-x7y8z9-uc.a.run.app"
    subscription = pubsub_v1.SubscriberClient().get_subscription(
        subscription=f"projects/{PROJECT_ID}/subscriptions/segment-events-deliver"
    )
    assert subscription.topic == f"projects/{PROJECT_ID}/topics/segment-events"
    assert subscription.push_config.push_endpoint == url
    assert subscription.push_config.oidc_token.service_account_email == (
        f"segment-push@{PROJECT_ID}.iam.gserviceaccount.com"
    )
    assert subscription.push_config.oidc_token.audience == url
    assert subscription.dead_letter_policy.dead_letter_topic == (
        f"projects/{PROJECT_ID}/topics/segment-events-dead-letter"
    )
    assert subscription.dead_letter_policy.max_delivery_attempts == 10
    assert subscription.retry_policy.minimum_backoff.seconds == 10
    assert subscription.ack_deadline_seconds == 60


def test_the_iam_bindings_the_pipeline_needs_and_no_more(deployed: dict[str, Any]) -> None:
    agent = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"

    def sa(name: str) -> str:
        return f"serviceAccount:{name}@{PROJECT_ID}.iam.gserviceaccount.com"

    bindings = {
        (call[0], call[1], call[3], option(call, "--member"), option(call, "--role"))
        for call in deployed["calls"]
        if "add-iam-policy-binding" in call
    }
    assert bindings == {
        (
            "secrets",
            "add-iam-policy-binding",
            "--project",
            sa("segment-ingest"),
            "roles/secretmanager.secretAccessor",
        ),
        (
            "secrets",
            "add-iam-policy-binding",
            "--project",
            sa("segment-deliver"),
            "roles/secretmanager.secretAccessor",
        ),
        ("run", "services", "segment-deliver", sa("segment-push"), "roles/run.invoker"),
        (
            "iam",
            "service-accounts",
            "segment-push@acme-growth.iam.gserviceaccount.com",
            agent,
            "roles/iam.serviceAccountTokenCreator",
        ),
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
    secret_grants = {
        call[2]: option(call, "--member") for call in deployed["calls"] if call[0] == "secrets"
    }
    assert secret_grants == {
        "segment-ingest-token": sa("segment-ingest"),
        "saasquatch-api-key": sa("segment-deliver"),
    }, "each runtime account reads only its own secret"


def test_no_secret_value_is_on_any_command_line(deployed: dict[str, Any]) -> None:
    everything = json.dumps(deployed["calls"]) + json.dumps(deployed["outputs"])
    for value in SECRET_VALUES.values():
        assert value not in everything
    for call in deployed["calls"]:
        if "--set-env-vars" in call:
            assert not {"SAASQUATCH_API_KEY", "INGEST_TOKEN"} & set(env_vars(call))


def test_without_a_tenant_deliver_is_deployed_dry(tmp_path: Path, processes: Processes) -> None:
    script = tmp_path / "deliver.sh"
    script.write_text(STEPS["deploy-deliver"]["script"])
    log = tmp_path / "gcloud.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(STAND_IN_GCLOUD.format(python=sys.executable))
    (bin_dir / "gcloud").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GCLOUD_LOG": str(log),
        "PROJECT_ID": PROJECT_ID,
        **{name: str(value) for name, value in BUILD["substitutions"].items()},
    }
    result = processes.run(["bash", str(script)], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "dry-run mode" in result.stdout
    [deploy] = [json.loads(line) for line in log.read_text().splitlines() if '"deploy"' in line]
    deliver_env = env_vars(deploy)
    assert deliver_env["DRY_RUN"] == "true"
    assert "SAASQUATCH_API_KEY_SECRET" not in deliver_env
    assert os.path.exists(tmp_path / "deliver_url")
