"""deliver: a pushed Segment message -> map (with the accounts remembered) -> the ledger ->
SaaSquatch -> remember the account (the push core in `pushes.consumer` verifies, decodes,
dead-letters and answers)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from common import logs
from common.outcomes import Outcome, Reason
from common.request_log import Handler
from mapper import Plan
from mapper.accounts import AccountMemory, map_remembering, settle_memory
from publisher import ORIGIN_ATTRIBUTE, Topic
from pushes.consumer import Consumed, consumer
from pushes.dead_letters import dead_letter_topic
from pushes.envelope import PushEnvelope
from pushes.result import Result
from saasquatch.client import SaaSquatchClient
from saasquatch.dry_run import DryRunClient

from .accounts import AccountMemoryUnavailable, FirestoreAccounts
from .deliver_settings import DeliverSettings
from .execute import SAASQUATCH, Send
from .ledger import FirestoreLedger, Ledger, execute_once


def create_handler(
    settings: DeliverSettings,
    *,
    send: Send | None = None,
    ledger: Ledger | None = None,
    accounts: AccountMemory | None = None,
    dead_letters: Topic | None = None,
) -> Handler:
    """The `deliver` request handler for these settings. Its ports (SaaSquatch's `send`, the
    ledger, the memory of accounts, the dead-letter topic) are built from the settings unless
    given; nothing is called until a request comes."""
    logger = logs.setup(settings.LOG_LEVEL)
    send = send or saasquatch_sender(settings, logger)
    if not settings.uses_ledger:  # switched off, or a dry run: nothing recorded or skipped
        ledger = None
    elif ledger is None:
        ledger = FirestoreLedger(
            settings.GOOGLE_CLOUD_PROJECT,
            settings.LEDGER_DATABASE,
            settings.LEDGER_COLLECTION,
            settings.LEDGER_TIMEOUT_SECONDS,
        )
    if not settings.remembers_accounts:  # the hosted rule: no account, the user id
        accounts = None
    elif accounts is None:
        accounts = FirestoreAccounts(
            settings.GOOGLE_CLOUD_PROJECT,
            settings.LEDGER_DATABASE,
            settings.ACCOUNTS_COLLECTION,
            settings.LEDGER_TIMEOUT_SECONDS,
        )
    options = settings.mapping_options
    check_after = timedelta(hours=settings.LEDGER_CHECK_AFTER_HOURS)
    tenant = settings.SAASQUATCH_TENANT_ALIAS

    def handle(message: dict[str, Any], envelope: PushEnvelope) -> Consumed:
        now = datetime.now(UTC)
        try:
            plan = map_remembering(message, options, now, accounts, tenant)
        except AccountMemoryUnavailable as error:
            return Consumed(_memory_failed(str(error)), {"dry_run": settings.dry_run})
        origin = envelope.message.attributes.get(ORIGIN_ATTRIBUTE, "")
        checked = execute_once(plan, send, ledger, tenant, origin, now, check_after)
        fields = plan_fields(plan, settings.dry_run)
        if checked.looked_up:
            fields["ledger_looked_up"] = True
        result = checked.result
        if result.outcome in SETTLED:
            try:
                settle_memory(plan, message, accounts, tenant, now)
            except AccountMemoryUnavailable as error:
                # SaaSquatch has it; the redelivery is answered as a repeat and remembered then.
                result = replace(
                    result,
                    outcome=Outcome.RETRY,
                    reason=Reason.ACCOUNT_MEMORY_UNAVAILABLE,
                    detail=f"{result.outcome}, but the memory of accounts not updated: {error}",
                )
        return Consumed(result, fields)

    return consumer(
        "deliver",
        handle,
        destination=SAASQUATCH.name,
        dead_letters=dead_letters or dead_letter_topic(settings, settings.DEAD_LETTER_TOPIC),
        settings=settings,
        always={"dry_run": settings.dry_run},
    )


# What ends a message for good, for the memory of accounts: a delivered one that named its account
# is remembered; a delete, delivered or ignored by design, forgets its user.
SETTLED = (Outcome.DELIVERED, Outcome.IGNORED)

SEGMENT_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias", "delete", None})


def plan_fields(plan: Plan, dry_run: bool) -> dict[str, Any]:
    """What deliver's log line says of the message: names and ids, never values."""
    fields: dict[str, Any] = {
        # The type is the sender's text unless it is one Segment defines.
        "message_type": plan.message_type if plan.message_type in SEGMENT_TYPES else "other",
        "event_key": plan.event_key,
        "idempotency_key": plan.idempotency_key,
        "dry_run": dry_run,
        "notes": list(plan.note_counts) if plan.note_counts else None,
        "account_from": str(plan.account.source) if plan.account is not None else None,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _memory_failed(detail: str) -> Result:
    return Result(Outcome.RETRY, Reason.ACCOUNT_MEMORY_UNAVAILABLE, detail)


def saasquatch_sender(settings: DeliverSettings, logger: logging.Logger) -> Send:
    """The client's `send`: the real one, or in dry run one that logs each call instead."""
    if settings.dry_run:
        dry = DryRunClient(settings.SAASQUATCH_BASE_URL, settings.SAASQUATCH_TENANT_ALIAS, logger)
        return dry.send
    api_key = settings.required_secret(
        settings.SAASQUATCH_API_KEY, settings.SAASQUATCH_API_KEY_SECRET
    )
    client = SaaSquatchClient(
        settings.SAASQUATCH_BASE_URL,
        settings.SAASQUATCH_TENANT_ALIAS,
        api_key,
        timeout=settings.SAASQUATCH_TIMEOUT_SECONDS,
    )
    return client.send
