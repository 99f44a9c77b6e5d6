"""Every gcloud command the README and the docs show runs as written: each document's shell blocks
run in order under bash (with a stand-in gcloud that records, and a stand-in curl), and every
recorded call, plus each `gcloud ...` quoted in the prose, is replayed through the installed Cloud
SDK's argument parser. The README's deploy command is also sent, by the real gcloud, to a
stand-in Cloud Build, to show what the build receives."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.processes import ROOT

from ..support.cloudbuild_standin import submitted_build
from ..support.gcloud import StandInGcloud, parse_problems
from ..support.processes import Processes

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# The documents whose commands are the point of them: each must still show some.
WITH_COMMANDS = {
    "README.md",
    "docs/deploy.md",
    "docs/stream.md",
    "docs/operations/dead-letters.md",
    "docs/operations/rotation.md",
    "docs/operations/watching.md",
}
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(gcloud [^`]+)`")
PROJECT_ID = "acme-growth"

ANSWERS: list[dict[str, Any]] = [
    {"has": ["projects", "describe"], "stdout": "123456789012\n"},
    {"has": ["config", "get-value", "account"], "stdout": "you@example.com\n"},
    {
        "has": ["run", "services", "describe"],
        "stdout": "https://segment-ingest-x7y8z9-ew.a.run.app\n",
    },
    {"has": ["secrets", "versions", "access"], "stdout": "seg-token-from-secret-manager"},
    # Nothing exists yet, so the "create it if missing" branches run too.
    {"has": ["secrets", "versions", "list"], "rc": 1},  # no secret yet: setup creates it
    {"has": ["describe"], "rc": 1},
]
# What the README's first lines set, and the other documents assume.
PRELUDE = f"""PROJECT_ID={PROJECT_ID}
REGION=europe-west1
sa() {{ echo "$1@$PROJECT_ID.iam.gserviceaccount.com"; }}
"""
STAND_IN_CURL = "#!/bin/sh\necho '{\"accepted\": 2}'\n"


def shell_blocks(document: Path) -> list[str]:
    return BLOCK.findall(document.read_text())


def quoted_commands(document: Path) -> list[list[str]]:
    """`gcloud ...` spans in the prose (outside the shell blocks), as argument lists."""
    prose = BLOCK.sub("", document.read_text())
    return [shlex.split(span)[1:] for span in INLINE.findall(prose)]


def run_blocks(document: Path, tmp_path: Path) -> list[list[str]]:
    """The document's shell blocks that call gcloud, in order, as one script; the calls made."""
    blocks = [block for block in shell_blocks(document) if "gcloud " in block]
    if not blocks:
        return []
    bin_dir = tmp_path / "bin"
    gcloud = StandInGcloud(bin_dir)
    gcloud.answer(ANSWERS)
    (bin_dir / "curl").write_text(STAND_IN_CURL)
    (bin_dir / "curl").chmod(0o755)
    script = tmp_path / f"{document.stem}.sh"
    script.write_text("set -euo pipefail\n" + PRELUDE + "\n".join(blocks))
    done = subprocess.run(
        ["bash", str(script)],
        cwd=ROOT,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), **gcloud.env()},
        input="sq-typed-api-key\nshared-typed-secret\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (document.name, done.stdout, done.stderr)
    return gcloud.calls()


def test_the_readme_shows_setup_deploy_connect_and_verify(
    tmp_path: Path, processes: Processes
) -> None:
    calls = run_blocks(ROOT / "README.md", tmp_path)
    commands = {" ".join(call[:3]) for call in calls}
    for expected in (
        # `python -m tools setup`, run by the README against the stand-in gcloud
        "beta services identity",
        "iam service-accounts create",
        "secrets create segment-ingest-token",
        "secrets add-iam-policy-binding",
        "projects add-iam-policy-binding",
        "artifacts repositories create",
        "beta builds submit",
        "run services describe",
        "secrets versions access",
        'logging read resource.type="cloud_run_revision"',
    ):
        assert any(command.startswith(expected) for command in commands), expected
    # Nothing the build would need is granted on the Compute default account.
    assert "compute@developer" not in json.dumps(calls)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_gcloud_command_of_a_document_parses_with_the_installed_sdk(
    document: Path, tmp_path: Path, processes: Processes
) -> None:
    calls = run_blocks(document, tmp_path) + quoted_commands(document)
    name = str(document.relative_to(ROOT))
    if name in WITH_COMMANDS:
        assert calls, f"{name} shows no gcloud command any more"
    assert parse_problems(calls, cwd=ROOT) == []


def deploy_command_with(marker: str) -> str:
    [block] = [block for block in shell_blocks(ROOT / "README.md") if marker in block]
    return block


def test_the_readme_deploy_command_sends_the_build_as_written(
    tmp_path: Path, processes: Processes
) -> None:
    """Through the real gcloud: the `^;^` separator keeps the commas of `_EVENT_KEY_MAP`, the
    build runs as the deployer, and Cloud Build gets this repository's steps."""
    script = PRELUDE + deploy_command_with("_EVENT_KEY_MAP")
    build = submitted_build(script, tmp_path, processes, PROJECT_ID)
    assert build["substitutions"]["_EVENT_KEY_MAP"] == (
        '{"Plan Upgraded":"upgrade","Trial Started":"trial"}'
    )
    assert build["substitutions"]["_REGION"] == "europe-west1"
    assert build["substitutions"]["_SAASQUATCH_TENANT_ALIAS"] == "a1b2c3d4e5f6g"
    assert build["serviceAccount"] == (
        f"projects/{PROJECT_ID}/serviceAccounts/segment-deployer@{PROJECT_ID}.iam.gserviceaccount.com"
    )
    assert build["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    steps = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"]
    assert [step["id"] for step in build["steps"]] == [step["id"] for step in steps]
