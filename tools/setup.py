"""The one-time setup of a project, as one command that can be run again at any time.

    python -m tools setup --project P --region R [--builder user:you@example.com] [--stream]

What the build needs before its first run and never changes: the APIs, one service account per
job, Pub/Sub's service agent, the secrets (a random ingest token; the SaaSquatch API key, typed,
not echoed), the ledger's Firestore database and the TTL policies (the ledger's and that of the
accounts deliver remembers), the image repository, the build's source bucket, and the grants
docs/deploy.md lists. Each is looked up first and created
or granted only when missing; one line per resource says which (`created`, `already there`,
`granted`, `already granted`). Secret values go to gcloud on its standard input only: never on a
command line, never printed.

IAM is eventually consistent: an account created a second ago may be refused as "does not
exist" by the next grant (IAM asks for up to 60 s and more), and a service agent exists only
once something creates it. So the agent is created (`services identity create`) before anything
is granted to it, and a grant refused that way is tried again with a bounded backoff (`Patience`:
2, 4, 8, 16, then 30 s, two minutes in all) before the command gives up with one line; a second
run then carries on where the first stopped.

Standard library only, like tools/monitoring.py: gcloud does the calls, so it runs wherever
gcloud does.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

APIS = (
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "pubsub.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "storage.googleapis.com",
    "firestore.googleapis.com",
)
# The deployer's roles on the project (docs/deploy.md says why, one row each).
DEPLOYER_ROLES = (
    "roles/run.admin",
    "roles/run.sourceDeveloper",
    "roles/run.builder",
    "roles/serviceusage.serviceUsageConsumer",
    "roles/pubsub.admin",
    "roles/logging.configWriter",
    "roles/monitoring.editor",
    "roles/logging.logWriter",
)
# What IAM says about an account it does not know yet (just created, or a service agent still
# being made); anything else it refuses is not worth waiting for.
NOT_YET = re.compile(
    r"service account \S+ does not exist|gaia id not found|unknown service account", re.IGNORECASE
)
ALREADY_EXISTS = re.compile(r"already exists|ALREADY_EXISTS", re.IGNORECASE)


class SetupError(Exception):
    """What stopped the setup, in one line."""


class Gcloud(Protocol):
    def __call__(
        self, args: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def run_gcloud(args: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`gcloud ARGS`, with `stdin` as its input (nothing to read otherwise: it never prompts)."""
    feed: dict[str, Any] = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
    try:
        return subprocess.run(
            ["gcloud", *args], capture_output=True, text=True, check=False, **feed
        )
    except FileNotFoundError:
        raise SetupError(
            "gcloud is not on PATH: install the Cloud SDK and sign in (gcloud auth login)"
        ) from None


def ask_hidden(prompt: str) -> str:
    """A value typed at the terminal, not echoed; "" without a terminal (nothing is read from a
    pipe, where getpass would echo)."""
    if not sys.stdin.isatty():
        return ""
    return getpass.getpass(prompt).strip()


@dataclass(frozen=True)
class Patience:
    """How long a grant waits for IAM to know an account: doubling delays, bounded in all."""

    first: float = 2.0
    longest: float = 30.0
    total: float = 120.0

    def delays(self) -> Iterator[float]:
        waited, delay = 0.0, self.first
        while waited + delay <= self.total:
            yield delay
            waited += delay
            delay = min(delay * 2, self.longest)


@dataclass(frozen=True)
class Names:
    """What the setup makes, named as the build's substitutions name them by default (a second
    deployment beside the first passes its own)."""

    ingest_sa: str = "segment-ingest"
    deliver_sa: str = "segment-deliver"
    push_sa: str = "segment-push"
    deployer_sa: str = "segment-deployer"
    webhook_sa: str = "saasquatch-webhook"
    forward_sa: str = "segment-forward"
    ingest_token_secret: str = "segment-ingest-token"
    api_key_secret: str = "saasquatch-api-key"
    write_key_secret: str = "segment-write-key"
    source_repository: str = "cloud-run-source-deploy"
    ledger_database: str = "(default)"
    ledger_collection: str = "segment_saasquatch_deliveries"
    accounts_collection: str = "segment_saasquatch_accounts"


# Names -> the cloudbuild.yaml substitution whose default each one is (the tests hold them).
BUILD_SUBSTITUTIONS = {
    "ingest_sa": "_INGEST_SA",
    "deliver_sa": "_DELIVER_SA",
    "push_sa": "_PUSH_SA",
    "deployer_sa": "_DEPLOYER_SA",
    "webhook_sa": "_WEBHOOK_SA",
    "forward_sa": "_FORWARD_SA",
    "ingest_token_secret": "_INGEST_TOKEN_SECRET",
    "api_key_secret": "_SAASQUATCH_API_KEY_SECRET",
    "write_key_secret": "_SEGMENT_WRITE_KEY_SECRET",
    "source_repository": "_SOURCE_REPOSITORY",
}
# ... and the deliver settings the ledger's names are (tools.registry's defaults).
LEDGER_SETTINGS = {
    "ledger_database": "LEDGER_DATABASE",
    "ledger_collection": "LEDGER_COLLECTION",
    "accounts_collection": "ACCOUNTS_COLLECTION",
}


@dataclass(frozen=True)
class Project:
    id: str
    region: str
    builder: str  # the member who may run builds as the deployer
    stream: bool = False
    names: Names = field(default_factory=Names)

    def email(self, account: str) -> str:
        return f"{account}@{self.id}.iam.gserviceaccount.com"

    def member(self, account: str) -> str:
        return f"serviceAccount:{self.email(account)}"

    @property
    def bucket(self) -> str:
        return f"gs://{self.id}_cloudbuild"

    def accounts(self) -> list[str]:
        """One identity per job: ingest, deliver, the account Pub/Sub signs push tokens as, the
        build; with the reverse direction its receiver and forward."""
        n = self.names
        found = [n.ingest_sa, n.deliver_sa, n.push_sa, n.deployer_sa]
        return [*found, n.webhook_sa, n.forward_sa] if self.stream else found


@dataclass(frozen=True)
class Target:
    """Something with an IAM policy: how to read it, how to add to it."""

    label: str
    read: tuple[str, ...]
    add: tuple[str, ...]

    @staticmethod
    def project(project_id: str) -> Target:
        return Target(
            "the project",
            ("projects", "get-iam-policy", project_id),
            ("projects", "add-iam-policy-binding", project_id, "--condition=None"),
        )

    @staticmethod
    def account(email: str) -> Target:
        words = ("iam", "service-accounts")
        return Target(
            f"service account {email.split('@')[0]}",
            (*words, "get-iam-policy", email),
            (*words, "add-iam-policy-binding", email),
        )

    @staticmethod
    def secret(name: str) -> Target:
        return Target(
            f"secret {name}",
            ("secrets", "get-iam-policy", name),
            ("secrets", "add-iam-policy-binding", name),
        )

    @staticmethod
    def bucket(url: str) -> Target:
        return Target(
            f"bucket {url}",
            ("storage", "buckets", "get-iam-policy", url),
            ("storage", "buckets", "add-iam-policy-binding", url),
        )


def unconditional(policy: Any) -> set[tuple[str, str]]:
    """The (role, member) pairs a policy grants without a condition."""
    bindings = policy.get("bindings", []) if isinstance(policy, dict) else []
    return {
        (binding.get("role", ""), member.lower())
        for binding in bindings
        if not binding.get("condition")
        for member in binding.get("members", [])
    }


def member_of(account: str) -> str:
    """An IAM member for a gcloud account: a service account's email, or a user's."""
    kind = "serviceAccount" if account.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{account}"


class Setup:
    """Runs the steps in order, saying what each one found or did."""

    def __init__(
        self,
        project: Project,
        gcloud: Gcloud = run_gcloud,
        sleep: Callable[[float], None] = time.sleep,
        ask: Callable[[str], str] = ask_hidden,
        say: Callable[[str], None] = print,
        patience: Patience = Patience(),
    ) -> None:
        self._project = project
        self._gcloud = gcloud
        self._sleep = sleep
        self._ask = ask
        self._say = say
        self._patience = patience
        self._policies: dict[Target, set[tuple[str, str]]] = {}
        self.changed = 0
        self.unchanged = 0

    # --- gcloud --------------------------------------------------------------------------------

    def _call(
        self, args: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self._gcloud([*args, "--project", self._project.id, "--quiet"], stdin)

    def _patient(self, args: Sequence[str]) -> tuple[subprocess.CompletedProcess[str], float]:
        """The call, again after each delay while IAM does not know an account yet; the last
        answer and the seconds waited."""
        done = self._call(args)
        waited = 0.0
        for delay in self._patience.delays():
            if done.returncode == 0 or not NOT_YET.search(done.stderr):
                break
            self._sleep(delay)
            waited += delay
            done = self._call(args)
        return done, waited

    @staticmethod
    def _refused(args: Sequence[str], done: subprocess.CompletedProcess[str]) -> SetupError:
        lines = done.stderr.strip().splitlines() or done.stdout.strip().splitlines()
        return SetupError(f"gcloud {' '.join(args[:3])}: {lines[-1] if lines else '(no output)'}")

    def _given_up(
        self, args: Sequence[str], done: subprocess.CompletedProcess[str], waited: float
    ) -> SetupError:
        error = self._refused(args, done)
        if NOT_YET.search(done.stderr):
            return SetupError(f"{error} (IAM still did not know it after {waited:.0f} s)")
        return error

    def _must(self, args: Sequence[str]) -> str:
        done = self._call(args)
        if done.returncode != 0:
            raise self._refused(args, done)
        return done.stdout

    def _report(self, what: str, outcome: str, changed: bool) -> None:
        if changed:
            self.changed += 1
        else:
            self.unchanged += 1
        self._say(f"{what}: {outcome}")

    # --- resources -----------------------------------------------------------------------------

    def _ensure(
        self,
        what: str,
        describe: Sequence[str],
        create: Sequence[str],
        value: Callable[[], str] | None = None,
        check: Callable[[str], None] | None = None,
    ) -> bool:
        """Create it unless `describe` finds it (`check` may refuse what it found). With `value`,
        the resource is a secret whose value goes to gcloud's standard input; an empty value
        skips it (False)."""
        found = self._call(describe)
        if found.returncode == 0:
            if check is not None:
                check(found.stdout.strip())
            self._report(what, "already there", changed=False)
            return True
        stdin = value() if value is not None else None
        if stdin == "":
            self._say(f"{what}: skipped, nothing typed (run setup again to add it)")
            return False
        done = self._call(create, stdin)
        if done.returncode == 0:
            self._report(what, "created", changed=True)
        elif ALREADY_EXISTS.search(done.stderr):
            self._report(what, "already there", changed=False)
        else:
            raise self._refused(create, done)
        return True

    def _grant(self, role: str, member: str, target: Target) -> None:
        what = f"{role} on {target.label} for {member}"
        if (role, member.lower()) in self._policy(target):
            self._report(what, "already granted", changed=False)
            return
        args = [*target.add, "--member", member, "--role", role, "--format", "none"]
        done, waited = self._patient(args)
        if done.returncode != 0:
            raise self._given_up(args, done, waited)
        self._policies[target].add((role, member.lower()))
        after = f" (after {waited:.0f} s: IAM did not know the account yet)" if waited else ""
        self._report(what, f"granted{after}", changed=True)

    def _policy(self, target: Target) -> set[tuple[str, str]]:
        if target not in self._policies:
            args = [*target.read, "--format", "json"]
            done, waited = self._patient(args)
            if done.returncode != 0:
                raise self._given_up(args, done, waited)
            text = done.stdout.strip()
            self._policies[target] = unconditional(json.loads(text) if text else {})
        return self._policies[target]

    # --- the steps -----------------------------------------------------------------------------

    def run(self) -> None:
        project = self._project
        number = self._must(["projects", "describe", project.id, "--format=value(projectNumber)"])
        agent = f"serviceAccount:service-{number.strip()}@gcp-sa-pubsub.iam.gserviceaccount.com"
        self._apis()
        # The agent exists only once something makes it, and the build grants to it too.
        self._must(["beta", "services", "identity", "create", "--service=pubsub.googleapis.com"])
        self._say(f"service agent {agent.split(':', 1)[1]}: ready")
        for account in project.accounts():
            name = f"--display-name=segment-saasquatch {account}"
            self._ensure(
                f"service account {account}",
                ["iam", "service-accounts", "describe", project.email(account)],
                ["iam", "service-accounts", "create", account, name],
            )
        readers = self._readers()
        made = [secret for secret, ask in self._secrets().items() if self._secret(secret, ask)]
        self._ledger()
        repository, region = project.names.source_repository, f"--location={project.region}"
        self._ensure(
            f"repository {repository}",
            ["artifacts", "repositories", "describe", repository, region],
            [
                "artifacts",
                "repositories",
                "create",
                repository,
                region,
                "--repository-format=docker",
            ],
        )
        self._ensure(
            f"bucket {project.bucket}",
            ["storage", "buckets", "describe", project.bucket],
            [
                "storage",
                "buckets",
                "create",
                project.bucket,
                region,
                "--uniform-bucket-level-access",
            ],
        )
        for secret in made:  # each secret readable by the one service that uses it
            accessor = project.member(readers[secret])
            self._grant("roles/secretmanager.secretAccessor", accessor, Target.secret(secret))
        self._grants(agent)

    def _readers(self) -> dict[str, str]:
        """Each secret -> the one account that reads it."""
        names = self._project.names
        found = {names.ingest_token_secret: names.ingest_sa, names.api_key_secret: names.deliver_sa}
        if self._project.stream:
            found[names.write_key_secret] = names.forward_sa
        return found

    def _secrets(self) -> dict[str, Callable[[], str]]:
        """Each secret -> where its first value comes from: made here, or typed."""
        names = self._project.names
        found: dict[str, Callable[[], str]] = {
            names.ingest_token_secret: lambda: secrets.token_hex(32),
            names.api_key_secret: lambda: self._ask(
                "SaaSquatch API key (Admin Portal, Settings > General; not shown, Enter skips): "
            ),
        }
        if self._project.stream:
            found[names.write_key_secret] = lambda: self._ask(
                "Segment write key of the HTTP API source (not shown, Enter skips): "
            )
        return found

    def _secret(self, name: str, value: Callable[[], str]) -> bool:
        """A secret with an enabled version. `secrets create --data-file` is two calls (the
        secret, then its version): one cut short leaves a secret with no value, which ingest
        or deliver could not read, so a secret is there only once it has a version."""
        what = f"secret {name}"
        enabled = ["--filter", "state:ENABLED", "--limit", "1", "--format", "value(name)"]
        listed = self._call(["secrets", "versions", "list", name, *enabled])
        if listed.returncode == 0 and listed.stdout.strip():
            self._report(what, "already there", changed=False)
            return True
        if listed.returncode != 0:  # no such secret (or unreadable: create says which)
            create = ["secrets", "create", name, "--data-file=-"]
            return self._ensure(what, ["secrets", "describe", name], create, value)
        stdin = value()
        if stdin == "":
            self._say(f"{what}: has no value; skipped, nothing typed (run setup again to add it)")
            return False
        add = ["secrets", "versions", "add", name, "--data-file=-"]
        done = self._call(add, stdin)
        if done.returncode != 0:
            raise self._refused(add, done)
        self._report(what, "value added", changed=True)
        return True

    def _apis(self) -> None:
        listed = self._must(["services", "list", "--enabled", "--format", "value(config.name)"])
        enabled = set(listed.split())
        missing = [api for api in APIS if api not in enabled]
        if missing:
            self._must(["services", "enable", *missing])
        for api in APIS:
            self._report(
                f"api {api}", "enabled" if api in missing else "already enabled", api in missing
            )

    def _ledger(self) -> None:
        """The delivery ledger's database (its location is for good) and the TTL policies that
        delete entries at their `expireAt`: the ledger's and, beside it, deliver's memory of
        accounts'."""
        names = self._project.names
        where = ["--database", names.ledger_database]
        located = [f"--location={self._project.region}"]

        def native(kind: str) -> None:
            if kind not in ("", "FIRESTORE_NATIVE"):
                raise SetupError(
                    f"Firestore database {names.ledger_database} is {kind}: the ledger needs "
                    "native mode (name another database with --ledger-database, and give the "
                    "build the same name as _LEDGER_DATABASE)"
                )

        self._ensure(
            f"Firestore database {names.ledger_database}",
            ["firestore", "databases", "describe", *where, "--format", "value(type)"],
            ["firestore", "databases", "create", *where, *located, "--type=firestore-native"],
            check=native,
        )
        for collection in (names.ledger_collection, names.accounts_collection):
            self._ttl(collection, where)

    def _ttl(self, collection: str, where: list[str]) -> None:
        group = ["--collection-group", collection, *where]
        field_of = ["firestore", "indexes", "fields", "describe", "expireAt", *group]
        state = self._call([*field_of, "--format=value(ttlConfig.state)"])
        what = f"TTL on {collection}.expireAt"
        if state.returncode == 0 and state.stdout.strip() in ("ACTIVE", "CREATING"):
            self._report(what, "already there", changed=False)
            return
        ttl = ["firestore", "fields", "ttls", "update", "expireAt", *group]
        self._must([*ttl, "--enable-ttl", "--async"])
        self._report(what, "created (Firestore turns it on within minutes)", changed=True)

    def _grants(self, agent: str) -> None:
        project, names = self._project, self._project.names
        deployer = project.member(names.deployer_sa)
        # Pub/Sub signs push tokens as segment-push (needed where the agent predates April 2021).
        push = Target.account(project.email(names.push_sa))
        self._grant("roles/iam.serviceAccountTokenCreator", agent, push)
        on_project = Target.project(project.id)
        self._grant("roles/datastore.user", project.member(names.deliver_sa), on_project)
        for role in DEPLOYER_ROLES:
            self._grant(role, deployer, on_project)
        for account in project.accounts():
            self._grant("roles/iam.serviceAccountUser", deployer, self._account(account))
        self._grant("roles/storage.objectViewer", deployer, Target.bucket(project.bucket))
        self._grant(
            "roles/iam.serviceAccountUser", project.builder, self._account(names.deployer_sa)
        )

    def _account(self, name: str) -> Target:
        return Target.account(self._project.email(name))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools setup",
        description="The one-time setup of a project for segment-saasquatch; safe to run again.",
    )
    parser.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", ""))
    parser.add_argument(
        "--region", required=True, help="Cloud Run's region, and the ledger's (for good)"
    )
    parser.add_argument(
        "--builder",
        default="",
        help="who may run builds as the deployer (default: your gcloud account, as user:EMAIL)",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="also the reverse direction's accounts and the Segment write key's secret",
    )
    defaults = Names()
    for name in fields(Names):
        parser.add_argument(
            "--" + name.name.replace("_", "-"),
            default=getattr(defaults, name.name),
            help="default: %(default)s",
        )
    return parser


def main(
    argv: Sequence[str] | None = None,
    gcloud: Gcloud = run_gcloud,
    sleep: Callable[[float], None] = time.sleep,
    ask: Callable[[str], str] = ask_hidden,
) -> int:
    args = _parser().parse_args(argv)
    if not args.project:
        print("setup: --project (or GOOGLE_CLOUD_PROJECT) is required", file=sys.stderr)
        return 2
    builder = args.builder
    if not builder:
        account = gcloud(["config", "get-value", "account"]).stdout.strip()
        if not account:
            print(
                "setup: no gcloud account is signed in: pass --builder user:EMAIL", file=sys.stderr
            )
            return 2
        builder = member_of(account)
    names = Names(**{name.name: getattr(args, name.name) for name in fields(Names)})
    project = Project(args.project, args.region, builder, args.stream, names)
    setup = Setup(project, gcloud, sleep, ask)
    try:
        setup.run()
    except SetupError as error:
        print(f"setup: {error}", file=sys.stderr)
        print("setup: what is done stays done; run it again to carry on", file=sys.stderr)
        return 1
    print(f"setup: {setup.changed} created or granted, {setup.unchanged} already there")
    if setup.changed:
        print(
            "setup: IAM applies new grants within about 2 minutes, sometimes 7 or more: wait "
            "that long before the first build (one that fails on a permission then works when "
            "run again)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
