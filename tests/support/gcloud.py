"""gcloud, twice over: a stand-in that records every call a script makes (and answers as told),
and the installed Cloud SDK, through which each recorded call is replayed to prove it parses.

The replay runs the real `gcloud` with an empty configuration, a placeholder project and no
account: a call whose flags parse stops at "You do not currently have an active account
selected" (or, for the few commands that need no account, gets as far as doing their job); one
that does not stops earlier, at the argument parser, and that is the failure reported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# Flags whose value is a file gcloud reads while parsing: the stand-in keeps a copy, since the
# script that wrote it may delete it before the replay.
FILE_FLAGS = ("--config-from-file", "--policy-from-file")

_RECORDER = """#!{python}
import json, os, shutil, sys
from pathlib import Path
args = sys.argv[1:]
keep = Path(os.environ["GCLOUD_LOG"]).parent / "files"
for index, arg in enumerate(args[:-1]):
    if arg in {file_flags!r} and Path(args[index + 1]).is_file():
        keep.mkdir(exist_ok=True)
        copy = keep / f"{{len(list(keep.iterdir()))}}-{{Path(args[index + 1]).name}}"
        shutil.copyfile(args[index + 1], copy)
        args[index + 1] = str(copy)
with open(os.environ["GCLOUD_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if "--data-file=-" in args or any(a == "--data-file" and b == "-" for a, b in zip(args, args[1:])):
    with open(os.environ["GCLOUD_LOG"] + ".stdin", "a") as log:
        log.write(json.dumps([args, sys.stdin.read()]) + "\\n")
answers = Path(os.environ["GCLOUD_ANSWERS"])
counts = answers.with_name(answers.stem + "-counts.json")
for number, rule in enumerate(json.loads(answers.read_text())):
    if all(word in args for word in rule["has"]):
        if "times" in rule:
            used = json.loads(counts.read_text()) if counts.exists() else {{}}
            if used.get(str(number), 0) >= rule["times"]:
                continue
            used[str(number)] = used.get(str(number), 0) + 1
            counts.write_text(json.dumps(used))
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("rc", 0))
"""


class StandInGcloud:
    """A `gcloud` on `bin_dir` that logs its arguments and answers by rules: the first rule
    whose words all appear among the arguments gives the output and exit status."""

    def __init__(self, bin_dir: Path) -> None:
        bin_dir.mkdir(parents=True, exist_ok=True)
        self.log = bin_dir.parent / "gcloud.log"
        self.answers_file = bin_dir.parent / "gcloud-answers.json"
        self.answers_file.write_text("[]")
        program = bin_dir / "gcloud"
        program.write_text(_RECORDER.format(python=sys.executable, file_flags=FILE_FLAGS))
        program.chmod(0o755)

    def answer(self, rules: Sequence[Mapping[str, Any]]) -> None:
        """Rules: `{"has": [words...], "stdout": "...", "stderr": "...", "rc": 0}`; a rule with
        `"times": N` answers only its first N matching calls (then the next rule that matches
        does: "fail twice, then succeed"). Unmatched calls print nothing and succeed. New rules
        start their counts afresh."""
        self.answers_file.write_text(json.dumps(list(rules)))
        self.answers_file.with_name(self.answers_file.stem + "-counts.json").unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        return {"GCLOUD_LOG": str(self.log), "GCLOUD_ANSWERS": str(self.answers_file)}

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def inputs(self) -> list[tuple[list[str], str]]:
        """What each call reading `--data-file=-` got on its standard input, with its args."""
        stdin_log = Path(f"{self.log}.stdin")
        if not stdin_log.exists():
            return []
        pairs = (json.loads(line) for line in stdin_log.read_text().splitlines())
        return [(args, text) for args, text in pairs]


NOT_SIGNED_IN = "You do not currently have an active account selected"
# What a command that needs no account says once its arguments parsed: a sign-in asking for its
# browser code, the component manager of a packaged SDK (Debian's, Homebrew's) refusing.
PARSED_ANYWAY = (
    NOT_SIGNED_IN,
    "Go to the following link in your browser",
    "component manager",
)
PLACEHOLDER_PROJECT = "placeholder-project"


def installed_gcloud() -> str:
    found = shutil.which("gcloud")
    if found is None:
        raise RuntimeError("the Google Cloud SDK is not installed (gcloud is not on PATH)")
    return found


def empty_config_env(config_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a gcloud that has never been set up: no account, no project."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    return {
        **inherited,
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        **extra,
    }


def parse_problem(args: Sequence[str], config_dir: Path, cwd: Path | None = None) -> str | None:
    """None when the installed SDK parses `gcloud ARGS` (it then stops at the missing account),
    else what it said instead."""
    done = subprocess.run(
        [installed_gcloud(), *args],
        env=empty_config_env(config_dir, CLOUDSDK_CORE_PROJECT=PLACEHOLDER_PROJECT),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode == 0 or any(said in done.stderr for said in PARSED_ANYWAY):
        return None
    said = (done.stderr.strip() or done.stdout.strip() or "(nothing)").splitlines()
    return f"gcloud {' '.join(args)}\n  exit {done.returncode}: {' / '.join(said[:3])}"


def parse_problems(calls: Iterable[Sequence[str]], cwd: Path | None = None) -> list[str]:
    """Every distinct call replayed through the installed SDK, a few at a time (each with a
    configuration directory of its own: gcloud keeps state there)."""
    distinct = list({json.dumps(list(call)): list(call) for call in calls}.values())
    with tempfile.TemporaryDirectory(prefix="gcloud-config-") as root:

        def replay(numbered: tuple[int, list[str]]) -> str | None:
            config = Path(root) / str(numbered[0])
            config.mkdir()
            return parse_problem(numbered[1], config, cwd)

        with ThreadPoolExecutor(max_workers=4) as pool:
            return [problem for problem in pool.map(replay, enumerate(distinct)) if problem]


# What checks a body against the API's own message types, inside the SDK's Python (gcloud sends
# what it is given, unknown fields and all: its messages keep them as "unrecognized").
_CHECK_MESSAGES = """
import json, sys
root = sys.argv[1]
sys.path[:0] = [root + "/lib", root + "/lib/third_party"]
from apitools.base.py import encoding
from googlecloudsdk.generated_clients.apis.logging.v2 import logging_v2_messages as logging
from googlecloudsdk.generated_clients.apis.monitoring.v1 import monitoring_v1_messages as v1
from googlecloudsdk.generated_clients.apis.monitoring.v3 import monitoring_v3_messages as v3
TYPES = {"log metric": logging.LogMetric, "dashboard": v1.Dashboard, "alert policy": v3.AlertPolicy}

def unknown(message, path):
    found = [f"{path}.{name}" for name in message.all_unrecognized_fields()]
    for field in message.all_fields():
        value = message.get_assigned_value(field.name)
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "all_unrecognized_fields"):
                found += unknown(item, f"{path}.{field.name}")
    return found

problems = []
for kind, name, body in json.load(sys.stdin):
    problems += unknown(encoding.JsonToMessage(TYPES[kind], json.dumps(body)), f"{kind} {name}")
print(json.dumps(problems))
"""


def message_problems(bodies: Sequence[tuple[str, str, Any]]) -> list[str]:
    """The fields of each `(kind, name, body)` that the installed SDK's API messages do not
    know (misspelt fields, unknown enum values)."""
    info = subprocess.run(
        [installed_gcloud(), "info", "--format=value(installation.sdk_root,basic.python_location)"],
        capture_output=True,
        text=True,
        check=True,
    )
    root, python = info.stdout.split()
    done = subprocess.run(
        [python, "-c", _CHECK_MESSAGES, root],
        input=json.dumps(list(bodies)),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)
