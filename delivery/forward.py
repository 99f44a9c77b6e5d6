"""forward: verify the push -> decode the webhook -> map -> send to Segment -> dead-letter if
permanent -> answer. The same push, retry and dead-letter rules as deliver.
"""

from __future__ import annotations

import flask

from common import logs
from common.deadlines import BodyDeadlines
from common.logs import redact
from common.outcomes import Outcome, Reason
from common.request_log import Handled, Handler, logged
from segment_api.client import KeyUnavailable, MessageTooLarge, SegmentClient, SegmentError
from stream import Forwarding, map_webhook

from . import dead_letters
from .answer import DETAIL_CHARS, LEVELS, push_answer
from .envelope import MalformedMessage, decode_json_object
from .execute import Result
from .forward_settings import ForwardSettings
from .push_auth import push_verifier, read_push


def classify(error: SegmentError) -> Result:
    """What Segment's refusal means for the webhook: retried, or a dead letter with why."""
    status = error.status
    if isinstance(error, MessageTooLarge):
        return Result(Outcome.DEAD_LETTERED, Reason.SEGMENT_MESSAGE_TOO_LARGE, str(error))
    if isinstance(error, KeyUnavailable):
        return Result(Outcome.RETRY, Reason.WRITE_KEY_UNAVAILABLE, str(error))
    if status is None:
        return Result(Outcome.RETRY, Reason.SEGMENT_UNREACHABLE, str(error), calls=1)
    if status == 429:
        reason, outcome = Reason.SEGMENT_RATE_LIMITED, Outcome.RETRY
    elif status >= 500 or status == 408:
        reason, outcome = Reason.SEGMENT_UNAVAILABLE, Outcome.RETRY
    elif status in (401, 403):
        reason, outcome = Reason.SEGMENT_UNAUTHORIZED, Outcome.DEAD_LETTERED
    else:
        reason, outcome = Reason.SEGMENT_REJECTED, Outcome.DEAD_LETTERED
    return Result(outcome, reason, str(error), status, retry_after=error.retry_after, calls=1)


def send(forwarding: Forwarding, client: SegmentClient) -> Result:
    if forwarding.outcome is not Outcome.DELIVERED:
        return Result(forwarding.outcome, forwarding.reason, forwarding.detail)
    try:
        status = client.send_batch(forwarding.calls)
    except SegmentError as error:
        return classify(error)
    return Result(Outcome.DELIVERED, status=status, calls=1)


def create_handler(settings: ForwardSettings) -> Handler:
    """The `forward` request handler for these settings. Builds clients but makes no call."""
    logger = logs.setup(settings.LOG_LEVEL)
    write_key = settings.secret(settings.SEGMENT_WRITE_KEY, settings.SEGMENT_WRITE_KEY_SECRET)
    client = SegmentClient(
        settings.SEGMENT_API_BASE_URL, write_key, timeout=settings.SEGMENT_TIMEOUT_SECONDS
    )
    verifier = push_verifier(settings)
    dead_letter_topic = dead_letters.dead_letter_topic(settings, settings.FORWARD_DEAD_LETTER_TOPIC)
    options = settings.stream_options
    deadlines = BodyDeadlines(settings.BODY_TIMEOUT_SECONDS)

    def push(request: flask.Request) -> Handled:
        envelope = read_push(request, verifier, deadlines)
        forwarding: Forwarding | None = None
        try:
            webhook = decode_json_object(envelope.message.data)
        except MalformedMessage as error:
            result = Result(Outcome.DEAD_LETTERED, Reason.MALFORMED_MESSAGE, str(error))
        else:
            forwarding = map_webhook(webhook, options)
            result = send(forwarding, client)
        result = dead_letters.settle(envelope, result, dead_letter_topic)
        fields = {
            "outcome": result.outcome,
            "reason": result.reason,
            "detail": redact(result.detail[:DETAIL_CHARS]) if result.detail else None,
            "webhook_type": forwarding.webhook_type[:64]
            if forwarding and forwarding.webhook_type
            else None,
            "segment_status": result.status,
            "retry_after": result.retry_after,
            "calls": result.calls,
            "pubsub_message_id": envelope.message.message_id,
            "delivery_attempt": envelope.delivery_attempt,
        }
        present = {name: value for name, value in fields.items() if value is not None}
        return Handled(push_answer(result), present, LEVELS[result.outcome])

    return logged("forward", push, logger, settings.GOOGLE_CLOUD_PROJECT)
