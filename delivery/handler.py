"""deliver: verify the push -> decode -> map -> execute -> dead-letter if permanent -> answer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import flask

from common import logs
from common.deadlines import BodyDeadlines
from common.outcomes import Outcome, Reason
from common.request_log import Handled, Handler, logged
from mapper import Plan, map_message
from publisher import ORIGIN_ATTRIBUTE
from saasquatch.client import SaaSquatchClient
from saasquatch.dry_run import DryRunClient

from . import dead_letters
from .answer import LEVELS, log_fields, push_answer
from .envelope import MalformedMessage, decode_json_object
from .execute import Result, Send
from .ledger import FirestoreLedger, execute_once
from .push_auth import push_verifier, read_push
from .settings import DeliverSettings


def create_handler(settings: DeliverSettings) -> Handler:
    """The `deliver` request handler for these settings. Builds clients but makes no call."""
    logger = logs.setup(settings.LOG_LEVEL)
    send = saasquatch_sender(settings, logger)
    verifier = push_verifier(settings)
    dead_letter_topic = dead_letters.dead_letter_topic(settings, settings.DEAD_LETTER_TOPIC)
    options = settings.mapping_options
    deadlines = BodyDeadlines(settings.BODY_TIMEOUT_SECONDS)
    ledger = (
        FirestoreLedger(
            settings.GOOGLE_CLOUD_PROJECT,
            settings.LEDGER_DATABASE,
            settings.LEDGER_COLLECTION,
            settings.LEDGER_TIMEOUT_SECONDS,
        )
        if settings.uses_ledger
        else None
    )
    check_after = timedelta(hours=settings.LEDGER_CHECK_AFTER_HOURS)
    tenant = settings.SAASQUATCH_TENANT_ALIAS

    def push(request: flask.Request) -> Handled:
        envelope = read_push(request, verifier, deadlines)
        plan: Plan | None = None
        looked_up = False
        try:
            message = decode_json_object(envelope.message.data)
        except MalformedMessage as error:
            result = Result(Outcome.DEAD_LETTERED, Reason.MALFORMED_MESSAGE, str(error))
        else:
            now = datetime.now(UTC)
            plan = map_message(message, options, now=now)
            origin = envelope.message.attributes.get(ORIGIN_ATTRIBUTE, "")
            checked = execute_once(plan, send, ledger, tenant, origin, now, check_after)
            result, looked_up = checked.result, checked.looked_up
        result = dead_letters.settle(envelope, result, dead_letter_topic)
        fields = log_fields(envelope, plan, result, settings.dry_run)
        if looked_up:
            fields["ledger_looked_up"] = True
        return Handled(push_answer(result), fields, LEVELS[result.outcome])

    return logged("deliver", push, logger, settings.GOOGLE_CLOUD_PROJECT)


def saasquatch_sender(settings: DeliverSettings, logger: logging.Logger) -> Send:
    """The client's `send`: the real one, or in dry run one that logs each call instead."""
    if settings.dry_run:
        dry = DryRunClient(settings.SAASQUATCH_BASE_URL, settings.SAASQUATCH_TENANT_ALIAS, logger)
        return dry.send
    api_key = settings.secret(settings.SAASQUATCH_API_KEY, settings.SAASQUATCH_API_KEY_SECRET)
    client = SaaSquatchClient(
        settings.SAASQUATCH_BASE_URL,
        settings.SAASQUATCH_TENANT_ALIAS,
        api_key,
        timeout=settings.SAASQUATCH_TIMEOUT_SECONDS,
    )
    return client.send
