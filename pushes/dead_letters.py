"""The dead-letter policy of both consumers: a message that cannot be delivered is published to
the consumer's dead-letter topic with the original data and attributes plus why; only once
Pub/Sub has confirmed that is the push acknowledged. If the publish fails, the message is
retried instead: never lost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime

from common.outcomes import Outcome, Reason
from common.settings import ServiceSettings
from common.text import cut_bytes
from publisher import OutgoingMessage, Publisher, PublishError, Topic

from .envelope import PushEnvelope
from .result import Result, code_attribute

# Pub/Sub's limits on attributes.
MAX_ATTRIBUTES = 100
MAX_VALUE_BYTES = 1024

# The destinations' error codes a dead letter may carry (`Result.codes`, as attributes).
CODE_ATTRIBUTES = ("apiErrorCode", "rsCode")
# The attributes a consumer adds (a replay removes them again). `orderingKey` keeps the original
# message's ordering key, which a dead-letter topic without ordering cannot carry itself.
ADDED_ATTRIBUTES = (
    "reason",
    "detail",
    "status",
    *CODE_ATTRIBUTES,
    "deadLetteredAt",
    "sourceMessageId",
    "sourceSubscription",
    "deliveryAttempt",
    "orderingKey",
)


def dead_letter_message(
    data: bytes,
    attributes: Mapping[str, str],
    *,
    reason: Reason,
    when: datetime,
    detail: str | None = None,
    status: int | None = None,
    codes: tuple[tuple[str, str], ...] = (),
    source_message_id: str = "",
    subscription: str = "",
    delivery_attempt: int | None = None,
    ordering_key: str = "",
) -> OutgoingMessage:
    """The original data and attributes, with the reason and the destination's answer added."""
    added = {
        "reason": reason,
        "detail": detail,
        "status": status,
        **{code_attribute(field): value for field, value in codes},
        "deadLetteredAt": when.isoformat(timespec="milliseconds"),
        "sourceMessageId": source_message_id,
        "sourceSubscription": subscription,
        "deliveryAttempt": delivery_attempt,
        "orderingKey": ordering_key,
    }
    ours = {
        name: cut_bytes(str(value), MAX_VALUE_BYTES)
        for name, value in added.items()
        if value is not None and value != ""
    }
    room = MAX_ATTRIBUTES - len(ours)
    kept = {name: value for name, value in attributes.items() if name not in ours}
    original = dict(list(kept.items())[:room])
    return OutgoingMessage(data, {**original, **ours})


def dead_letter_topic(settings: ServiceSettings, topic: str) -> Publisher:
    """The dead-letter topic's publisher (no ordering: a dead letter keeps its key as an
    attribute), timed like every publish of the service."""
    return Publisher(
        settings.GOOGLE_CLOUD_PROJECT,
        topic,
        ordering=False,
        timeout=settings.PUBLISH_TIMEOUT_SECONDS,
    )


def settle(envelope: PushEnvelope, result: Result, dead_letters: Topic) -> Result:
    """`result` itself, after publishing the dead letter when it is one; a retry when that
    publish was not confirmed (so Pub/Sub redelivers rather than the message being lost)."""
    if result.outcome is not Outcome.DEAD_LETTERED:
        return result
    pushed = envelope.message
    outgoing = dead_letter_message(
        pushed.data,
        pushed.attributes,
        reason=result.reason or Reason.UNKNOWN,
        when=datetime.now(UTC),
        detail=f"{result.detail}: {result.quoted}" if result.quoted else result.detail,
        status=result.status,
        codes=result.codes,
        source_message_id=pushed.message_id,
        subscription=envelope.subscription,
        delivery_attempt=envelope.delivery_attempt,
        ordering_key=pushed.ordering_key,
    )
    try:
        dead_letters.publish_all([outgoing])
    except PublishError as error:
        return dataclasses.replace(
            result,
            outcome=Outcome.RETRY,
            reason=Reason.DEAD_LETTER_PUBLISH_FAILED,
            detail=f"{result.reason}: {error}",
        )
    return result
