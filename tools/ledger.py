"""What `backfill` and `dead-letters replay` ask the delivery ledger before they send events
again: which of them SaaSquatch has already accepted. Those are not sent (deliver would skip
them anyway, since the tools mark what they publish), and the run says how many there were.

The ledger files events per tenant, so the tools need the tenant deliver sends to
(`--tenant`, default `SAASQUATCH_TENANT_ALIAS`); without one the ledger is not consulted and
deliver alone guards against doubles. Locally (`make run`, on the emulator) without a tenant,
deliver runs dry and keeps no ledger, so there is nothing to consult and nothing to say.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from subscription.ledger import FirestoreLedger, ledger_key
from tools import env_flag, setting


@dataclass(frozen=True)
class LedgerCheck:
    ledger: FirestoreLedger
    tenant: str

    def recorded(self, messages: Sequence[Mapping[str, Any]]) -> list[bool]:
        """For each message, whether the ledger has it (one batched read for all of them).
        `LedgerUnavailable` when Firestore cannot be read."""
        now = datetime.now(UTC)
        keys = [ledger_key(message, now) for message in messages]
        found = self.ledger.recorded(self.tenant, [key for key in keys if key is not None])
        return [key is not None and key in found for key in keys]


def add_ledger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tenant",
        default=os.environ.get("SAASQUATCH_TENANT_ALIAS", ""),
        help="the SaaSquatch tenant deliver sends to (default SAASQUATCH_TENANT_ALIAS); the "
        "delivery ledger is consulted only with one",
    )
    parser.add_argument(
        "--ledger",
        action=argparse.BooleanOptionalAction,
        default=env_flag(os.environ.get("DELIVERY_LEDGER", "true")),
        help="skip events the delivery ledger has (default DELIVERY_LEDGER, on)",
    )
    parser.add_argument("--ledger-database", default=setting("LEDGER_DATABASE"))
    parser.add_argument("--ledger-collection", default=setting("LEDGER_COLLECTION"))


def ledger_check(args: argparse.Namespace) -> tuple[LedgerCheck | None, str]:
    """The check the arguments ask for, and when there is none, the line that says why."""
    if not args.ledger:
        return None, "the delivery ledger is not consulted (--no-ledger)"
    if not args.tenant:
        if os.environ.get("PUBSUB_EMULATOR_HOST"):
            return None, ""  # the local dry deliver: no ledger to miss
        return None, (
            "the delivery ledger is not consulted: give --tenant (or SAASQUATCH_TENANT_ALIAS); "
            "deliver still skips what it has"
        )
    ledger = FirestoreLedger(args.project, args.ledger_database, args.ledger_collection, 10.0)
    return LedgerCheck(ledger, args.tenant), ""
