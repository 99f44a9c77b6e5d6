"""`python -m tools setup`, as gcloud sees it: against the stand-in gcloud (which records each
call and answers by rules: IAM not knowing a new account yet, refusals), with every recorded call
replayed through the installed SDK's parser; a second run over what the first made changes
nothing. The fast tests drive the same rules in-process."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import registry
from tools.processes import ROOT
from tools.setup import (
    BUILD_SUBSTITUTIONS,
    DEPLOYER_ROLES,
    LEDGER_SETTINGS,
    NOT_YET,
    Names,
    Patience,
    main,
)

from ..support.gcloud import StandInGcloud, parse_problems
from ..support.processes import Processes

PROJECT = "acme-growth"
NUMBER = "123456789012"
AGENT = f"serviceAccount:service-{NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
OWNER = "user:owner@example.com"
TYPED_KEY = "sq-api-key-typed-at-the-prompt"
ARGV = ["--project", PROJECT, "--region", "europe-west1", "--builder", OWNER]
ACCOUNTS = ["segment-ingest", "segment-deliver", "segment-push", "segment-deployer"]
# What IAM answers a grant to an account created a moment ago.
UNKNOWN_YET = (
    "ERROR: (gcloud.secrets.add-iam-policy-binding) INVALID_ARGUMENT: Service account "
    f"segment-ingest@{PROJECT}.iam.gserviceaccount.com does not exist.\n"
)
# A project where nothing of ours exists yet.
FRESH = [
    {"has": ["projects", "describe"], "stdout": f"{NUMBER}\n"},
    {"has": ["secrets", "versions", "list"], "rc": 1, "stderr": "ERROR: NOT_FOUND: no secret\n"},
    {"has": ["describe"], "rc": 1, "stderr": "ERROR: NOT_FOUND: not found\n"},
]
SETTLED = ("already there", "already enabled", "already granted")


def email(account: str) -> str:
    return f"{account}@{PROJECT}.iam.gserviceaccount.com"


def sa(account: str) -> str:
    return f"serviceAccount:{email(account)}"


def value_of(call: Sequence[str], flag: str) -> str:
    return call[call.index(flag) + 1]


def granted(calls: Sequence[Sequence[str]]) -> set[tuple[str, str, str, str]]:
    """(kind, resource, member, role) of every grant made."""
    found = set()
    for call in calls:
        if "add-iam-policy-binding" in call:
            at = call.index("add-iam-policy-binding")
            member, role = value_of(call, "--member"), value_of(call, "--role")
            found.add((call[at - 1], call[at + 1], member, role))
    return found


def deployer_project_roles() -> set[str]:
    """The roles docs/deploy.md's "What the deployer may do" table gives on the project."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## What the deployer may do", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return {re.sub(r"`", "", role).strip() for role, on, *_ in rows if on.strip() == "the project"}


def expected_grants(api_key: bool = True) -> set[tuple[str, str, str, str]]:
    """What the README's copy-paste setup granted, before it became this command."""
    deployer = sa("segment-deployer")
    accessor = "roles/secretmanager.secretAccessor"
    grants = {
        ("secrets", "segment-ingest-token", sa("segment-ingest"), accessor),
        ("service-accounts", email("segment-push"), AGENT, "roles/iam.serviceAccountTokenCreator"),
        ("projects", PROJECT, sa("segment-deliver"), "roles/datastore.user"),
        ("buckets", f"gs://{PROJECT}_cloudbuild", deployer, "roles/storage.objectViewer"),
        ("service-accounts", email("segment-deployer"), OWNER, "roles/iam.serviceAccountUser"),
    }
    grants |= {("projects", PROJECT, deployer, role) for role in deployer_project_roles()}
    grants |= {
        ("service-accounts", email(account), deployer, "roles/iam.serviceAccountUser")
        for account in ACCOUNTS
    }
    if api_key:
        grants.add(("secrets", "saasquatch-api-key", sa("segment-deliver"), accessor))
    return grants


def made_by(calls: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Rules answering as the project stands once `calls` ran: what was looked up exists, the
    APIs enabled are on, the TTL policy is active, each IAM policy holds what was granted."""
    policies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        if "add-iam-policy-binding" in call:
            at = call.index("add-iam-policy-binding")
            reader = [*call[:at], "get-iam-policy", call[at + 1]]
            binding = {"role": value_of(call, "--role"), "members": [value_of(call, "--member")]}
            policies[json.dumps(reader)].append(binding)
    [enable] = [call for call in calls if call[:2] == ["services", "enable"]]
    apis = [word for word in enable if word.endswith(".googleapis.com")]
    return [
        *(
            {"has": json.loads(reader), "stdout": json.dumps({"bindings": bindings})}
            for reader, bindings in policies.items()
        ),
        {"has": ["projects", "describe"], "stdout": f"{NUMBER}\n"},
        {"has": ["services", "list"], "stdout": "\n".join(apis) + "\n"},
        {"has": ["firestore", "databases", "describe"], "stdout": "FIRESTORE_NATIVE\n"},
        {"has": ["firestore", "indexes", "fields", "describe"], "stdout": "ACTIVE\n"},
        {"has": ["secrets", "versions", "list"], "stdout": "1\n"},
    ]


class StandInRun:
    """`main` with the stand-in gcloud (a process per call), a recorded sleep and a typed key."""

    def __init__(self, tmp_path: Path, processes: Processes) -> None:
        self.bin = tmp_path / "bin"
        self.gcloud = StandInGcloud(self.bin)
        self.processes = processes
        self.sleeps: list[float] = []
        self.asked: list[str] = []

    def __call__(
        self, argv: Sequence[str], capsys: pytest.CaptureFixture[str], typed: str = TYPED_KEY
    ) -> tuple[int, str, str]:
        env = {"PATH": os.environ["PATH"], **self.gcloud.env()}

        def gcloud(args: Sequence[str], stdin: str | None = None) -> Any:
            given = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
            return self.processes.run([str(self.bin / "gcloud"), *args], env=env, **given)

        def ask(prompt: str) -> str:
            self.asked.append(prompt)
            return typed

        code = main(list(argv), gcloud=gcloud, sleep=self.sleeps.append, ask=ask)
        said = capsys.readouterr()
        return code, said.out, said.err


class Answers:
    """The stand-in's rules, in-process, for the fast tests."""

    def __init__(self, rules: Sequence[Mapping[str, Any]]) -> None:
        self.rules = list(rules)
        self.calls: list[list[str]] = []
        self.inputs: dict[str, str] = {}
        self._used: Counter[int] = Counter()

    def __call__(self, args: Sequence[str], stdin: str | None = None) -> Any:
        self.calls.append(list(args))
        if stdin is not None:
            self.inputs[args[2]] = stdin
        for number, rule in enumerate(self.rules):
            if all(word in args for word in rule["has"]):
                if "times" in rule:
                    if self._used[number] >= rule["times"]:
                        continue
                    self._used[number] += 1
                code, out, err = rule.get("rc", 0), rule.get("stdout", ""), rule.get("stderr", "")
                return subprocess.CompletedProcess(list(args), code, out, err)
        return subprocess.CompletedProcess(list(args), 0, "", "")


def run_in_process(
    rules: Sequence[Mapping[str, Any]], argv: Sequence[str] = ARGV, typed: str = ""
) -> tuple[int, Answers, list[float]]:
    gcloud, sleeps = Answers(rules), []
    code = main(list(argv), gcloud=gcloud, sleep=sleeps.append, ask=lambda _prompt: typed)
    return code, gcloud, sleeps


# --- against the stand-in gcloud, replayed through the installed SDK ------------------------------


def test_a_first_run_makes_everything_and_waits_out_an_account_iam_does_not_know_yet(
    tmp_path: Path, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    run = StandInRun(tmp_path, processes)
    run.gcloud.answer(
        [{"has": ["add-iam-policy-binding"], "rc": 1, "stderr": UNKNOWN_YET, "times": 2}, *FRESH]
    )
    code, out, err = run(ARGV, capsys)
    assert code == 0, err
    calls = run.gcloud.calls()
    lines = out.splitlines()

    # The first grant was refused twice while IAM caught up with the new account, then made.
    adds = [call for call in calls if "add-iam-policy-binding" in call]
    assert adds[0] == adds[1] == adds[2] != adds[3]
    assert run.sleeps == [2.0, 4.0]
    first = "roles/secretmanager.secretAccessor on secret segment-ingest-token"
    waited = "granted (after 6 s: IAM did not know the account yet)"
    assert f"{first} for {sa('segment-ingest')}: {waited}" in lines
    assert granted(calls) == expected_grants()
    assert all(f"service account {account}: created" in lines for account in ACCOUNTS)
    for made in ("secret segment-ingest-token", "secret saasquatch-api-key", "bucket gs://"):
        assert any(line.startswith(made) and line.endswith(": created") for line in lines), made

    # Pub/Sub's agent is made before anything is granted to it; every account before any grant.
    identity = ["beta", "services", "identity", "create", "--service=pubsub.googleapis.com"]
    agent_made = calls.index([*identity, "--project", PROJECT, "--quiet"])
    assert agent_made < min(n for n, call in enumerate(calls) if AGENT in call)
    accounts_made = [
        n for n, call in enumerate(calls) if call[:3] == ["iam", "service-accounts", "create"]
    ]
    assert len(accounts_made) == len(ACCOUNTS)
    assert max(accounts_made) < calls.index(adds[0])

    # The secrets' values went to gcloud's standard input only: never an argument, never said.
    values = {call[2]: text for call, text in run.gcloud.inputs()}
    assert re.fullmatch(r"[0-9a-f]{64}", values["segment-ingest-token"])
    assert values["saasquatch-api-key"] == TYPED_KEY
    assert len(run.asked) == 1
    for secret in values.values():
        assert secret not in out + err
        assert secret not in json.dumps(calls)

    assert parse_problems(calls, cwd=ROOT) == []


def test_a_second_run_finds_everything_there_and_changes_nothing(
    tmp_path: Path, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    run = StandInRun(tmp_path, processes)
    run.gcloud.answer(FRESH)
    code, first_out, err = run(ARGV, capsys)
    assert code == 0, err
    first = run.gcloud.calls()
    run.gcloud.log.unlink()
    run.asked.clear()

    run.gcloud.answer(made_by(first))
    code, out, err = run(ARGV, capsys)
    assert code == 0, err
    again = run.gcloud.calls()
    agent = ["beta", "services", "identity", "create"]  # answers with the agent made or not
    changing = [
        call
        for call in again
        if call[:4] != agent
        and {"create", "enable", "update", "add-iam-policy-binding"} & set(call)
    ]
    assert changing == []
    assert run.asked == []  # nothing to type: the secret is there
    resources = [
        line for line in out.splitlines() if not line.startswith(("setup:", "service agent"))
    ]
    firsts = [
        line for line in first_out.splitlines() if not line.startswith(("setup:", "service agent"))
    ]
    assert [line.rsplit(": ", 1)[0] for line in resources] == [
        line.rsplit(": ", 1)[0] for line in firsts
    ]
    assert all(line.endswith(SETTLED) for line in resources), resources
    assert f"setup: 0 created or granted, {len(resources)} already there" in out.splitlines()
    assert "IAM applies new grants" not in out
    assert parse_problems(again, cwd=ROOT) == []


# --- in-process ---------------------------------------------------------------------------------


def test_a_grant_iam_keeps_refusing_stops_after_a_bounded_wait_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = [{"has": ["add-iam-policy-binding"], "rc": 1, "stderr": UNKNOWN_YET}, *FRESH]
    code, gcloud, sleeps = run_in_process(rules)
    assert code == 1
    patience = Patience()
    assert sleeps == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert sum(sleeps) == patience.total and max(sleeps) == patience.longest
    said = capsys.readouterr().err.splitlines()
    assert "does not exist" in said[0] and "after 120 s" in said[0]
    assert said[1] == "setup: what is done stays done; run it again to carry on"
    # It stopped at that grant.
    tried = {json.dumps(call) for call in gcloud.calls if "add-iam-policy-binding" in call}
    assert len(tried) == 1


def test_a_refusal_that_is_not_propagation_stops_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    denied = "ERROR: (gcloud.projects.add-iam-policy-binding) PERMISSION_DENIED: no setIamPolicy\n"
    rules = [{"has": ["projects", "add-iam-policy-binding"], "rc": 1, "stderr": denied}, *FRESH]
    code, _gcloud, sleeps = run_in_process(rules, typed=TYPED_KEY)
    assert code == 1
    assert sleeps == []
    said = capsys.readouterr().err.splitlines()
    assert said[0] == (
        "setup: gcloud projects add-iam-policy-binding acme-growth: "
        "ERROR: (gcloud.projects.add-iam-policy-binding) PERMISSION_DENIED: no setIamPolicy"
    )


@pytest.mark.parametrize(
    ("said", "waits"),
    [
        (UNKNOWN_YET, True),
        (
            "ERROR: (gcloud.iam.service-accounts.describe) NOT_FOUND: Unknown service account",
            True,
        ),
        (
            "ERROR: NOT_FOUND: Not found; Gaia id not found for email x@p.iam.gserviceaccount.com",
            True,
        ),
        ("ERROR: HTTPError 400: Service account x@p.iam.gserviceaccount.com does not exist.", True),
        ("ERROR: INVALID_ARGUMENT: User you@example.com does not exist.", False),
        ("ERROR: PERMISSION_DENIED: Permission iam.serviceAccounts.setIamPolicy denied", False),
        ("ERROR: NOT_FOUND: Secret [projects/1/secrets/x] not found", False),
    ],
)
def test_only_an_account_iam_does_not_know_yet_is_waited_for(said: str, waits: bool) -> None:
    assert bool(NOT_YET.search(said)) is waits


def test_without_a_typed_key_the_api_key_is_skipped_and_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, gcloud, _sleeps = run_in_process(FRESH, typed="")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "secret saasquatch-api-key: skipped, nothing typed (run setup again to add it)" in lines
    assert ["secrets", "create", "saasquatch-api-key"] not in [call[:3] for call in gcloud.calls]
    assert granted(gcloud.calls) == expected_grants(api_key=False)


def test_with_the_stream_it_makes_the_reverse_direction_s_accounts_and_write_key() -> None:
    code, gcloud, _sleeps = run_in_process(FRESH, [*ARGV, "--stream"], typed="typed")
    assert code == 0
    deployer = sa("segment-deployer")
    assert granted(gcloud.calls) - expected_grants() == {
        (
            "secrets",
            "segment-write-key",
            sa("segment-forward"),
            "roles/secretmanager.secretAccessor",
        ),
        ("service-accounts", email("saasquatch-webhook"), deployer, "roles/iam.serviceAccountUser"),
        ("service-accounts", email("segment-forward"), deployer, "roles/iam.serviceAccountUser"),
    }
    assert set(gcloud.inputs) == {"segment-ingest-token", "saasquatch-api-key", "segment-write-key"}


@pytest.mark.parametrize(
    ("account", "member"),
    [
        ("owner@example.com", "user:owner@example.com"),
        (
            "ci@acme-growth.iam.gserviceaccount.com",
            "serviceAccount:ci@acme-growth.iam.gserviceaccount.com",
        ),
    ],
)
def test_builds_are_run_as_the_deployer_by_the_signed_in_account(account: str, member: str) -> None:
    rules = [{"has": ["config", "get-value", "account"], "stdout": f"{account}\n"}, *FRESH]
    code, gcloud, _sleeps = run_in_process(rules, ARGV[:4])
    assert code == 0
    deployer = email("segment-deployer")
    assert ("service-accounts", deployer, member, "roles/iam.serviceAccountUser") in granted(
        gcloud.calls
    )


def test_with_nobody_signed_in_it_asks_for_the_builder(capsys: pytest.CaptureFixture[str]) -> None:
    code, gcloud, _sleeps = run_in_process(FRESH, ARGV[:4])
    assert code == 2
    assert "pass --builder" in capsys.readouterr().err
    assert gcloud.calls == [["config", "get-value", "account"]]


def test_a_default_database_in_datastore_mode_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = [{"has": ["firestore", "databases", "describe"], "stdout": "DATASTORE_MODE\n"}, *FRESH]
    code, gcloud, _sleeps = run_in_process(rules)
    assert code == 1
    assert "needs native mode" in capsys.readouterr().err
    assert not any(call[:3] == ["firestore", "fields", "ttls"] for call in gcloud.calls)


def test_the_ledger_and_the_remembered_accounts_each_get_a_ttl_policy_on_expire_at() -> None:
    code, gcloud, _sleeps = run_in_process(FRESH, [*ARGV, "--accounts-collection", "acc_staging"])
    assert code == 0
    ttls = [call for call in gcloud.calls if call[:3] == ["firestore", "fields", "ttls"]]
    assert [(value_of(call, "--collection-group"), call[4]) for call in ttls] == [
        ("segment_saasquatch_deliveries", "expireAt"),
        ("acc_staging", "expireAt"),
    ]
    assert all("--enable-ttl" in call and value_of(call, "--database") for call in ttls)


def test_the_names_are_the_build_s_defaults_and_the_ledger_s() -> None:
    substitutions = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["substitutions"]
    names = Names()
    for attribute, substitution in BUILD_SUBSTITUTIONS.items():
        assert getattr(names, attribute) == substitutions[substitution], attribute
    for attribute, setting in LEDGER_SETTINGS.items():
        assert getattr(names, attribute) == registry.default(setting), attribute
    assert set(BUILD_SUBSTITUTIONS) | set(LEDGER_SETTINGS) == {name.name for name in fields(Names)}


def test_the_deployer_gets_the_project_roles_docs_deploy_lists() -> None:
    assert set(DEPLOYER_ROLES) == deployer_project_roles()


def test_a_secret_left_without_a_value_gets_one_on_the_next_run(
    tmp_path: Path, processes: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """`secrets create --data-file=-` is two API calls; an error or Ctrl-C between them leaves
    a secret with no version, which ingest could not read: the next run adds the value."""
    run = StandInRun(tmp_path, processes)
    run.gcloud.answer(FRESH)
    assert run(ARGV, capsys)[0] == 0
    first = run.gcloud.calls()
    run.gcloud.log.unlink()
    Path(f"{run.gcloud.log}.stdin").unlink()
    token = "segment-ingest-token"
    empty = {"has": ["secrets", "versions", "list", token], "stdout": ""}
    run.gcloud.answer([empty, *made_by(first)])
    code, out, err = run(ARGV, capsys)
    assert code == 0, err
    assert f"secret {token}: value added" in out.splitlines()
    [(args, value)] = run.gcloud.inputs()
    assert args[:4] == ["secrets", "versions", "add", token]
    assert len(value) == 64 and value not in out + err
    assert parse_problems(run.gcloud.calls(), cwd=tmp_path) == []


def test_without_gcloud_it_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    processes: Processes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no gcloud anywhere
    assert main(ARGV) == 1
    first, *_ = capsys.readouterr().err.splitlines()
    assert (
        first
        == "setup: gcloud is not on PATH: install the Cloud SDK and sign in (gcloud auth login)"
    )
