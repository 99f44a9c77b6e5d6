"""deliver: a pushed Segment message -> map -> the ledger -> SaaSquatch (the push core in
`pushes.consumer` verifies, decodes, dead-letters and answers)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from common import logs
from common.request_log import Handler
from mapper import Plan, map_message
from publisher import ORIGIN_ATTRIBUTE, Topic
from pushes.consumer import Consumed, consumer
from pushes.dead_letters import dead_letter_topic
from pushes.envelope import PushEnvelope
from saasquatch.client import SaaSquatchClient
from saasquatch.dry_run import DryRunClient

from .deliver_settings import DeliverSettings
from .execute import SAASQUATCH, Send
from .ledger import FirestoreLedger, Ledger, execute_once


def create_handler(
    settings: DeliverSettings,
    *,
    send: Send | None = None,
    ledger: Ledger | None = None,
    dead_letters: Topic | None = None,
) -> Handler:
    """The `deliver` request handler for these settings. Its ports (SaaSquatch's `send`, the
    ledger, the dead-letter topic) are built from the settings unless given; nothing is called
    until a request comes."""
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
    options = settings.mapping_options
    check_after = timedelta(hours=settings.LEDGER_CHECK_AFTER_HOURS)
    tenant = settings.SAASQUATCH_TENANT_ALIAS

    def handle(message: dict[str, Any], envelope: PushEnvelope) -> Consumed:
        now = datetime.now(UTC)
        plan = map_message(message, options, now=now)
        origin = envelope.message.attributes.get(ORIGIN_ATTRIBUTE, "")
        checked = execute_once(plan, send, ledger, tenant, origin, now, check_after)
        fields = plan_fields(plan, settings.dry_run)
        if checked.looked_up:
            fields["ledger_looked_up"] = True
        return Consumed(checked.result, fields)

    return consumer(
        "deliver",
        handle,
        destination=SAASQUATCH.name,
        dead_letters=dead_letters or dead_letter_topic(settings, settings.DEAD_LETTER_TOPIC),
        settings=settings,
        always={"dry_run": settings.dry_run},
    )


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
    }
    return {name: value for name, value in fields.items() if value is not None}


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
