"""The public receivers' last step: every message confirmed by Pub/Sub, or a 503 to retry."""

from __future__ import annotations

from collections.abc import Sequence

from common.http import RetryLater
from common.outcomes import Reason
from publisher import OutgoingMessage, PublishError, Topic


def publish_or_retry(topic: Topic, messages: Sequence[OutgoingMessage]) -> None:
    """Returns once Pub/Sub confirmed every message; otherwise a 503, so the sender (Segment,
    SaaSquatch) sends the request again rather than the messages being lost."""
    try:
        topic.publish_all(messages)
    except PublishError as error:
        raise RetryLater(
            Reason.PUBLISH_FAILED,
            "could not publish to Pub/Sub in time, retry later",
            detail=str(error),
        ) from None
