"""What deliver publishes for a message it cannot deliver: the original, plus why."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from mapper.sanitize import cut_bytes

from .messages import OutgoingMessage

# Pub/Sub's limits on attributes.
MAX_ATTRIBUTES = 100
MAX_VALUE_BYTES = 1024

# The attributes deliver adds (a replay removes them again). `orderingKey` keeps the original
# message's ordering key, which a dead-letter topic without ordering cannot carry itself.
ADDED_ATTRIBUTES = (
    "reason",
    "detail",
    "status",
    "apiErrorCode",
    "rsCode",
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
    reason: str,
    when: datetime,
    detail: str | None = None,
    status: int | None = None,
    api_error_code: str | None = None,
    rs_code: str | None = None,
    source_message_id: str = "",
    subscription: str = "",
    delivery_attempt: int | None = None,
    ordering_key: str = "",
) -> OutgoingMessage:
    """The original data and attributes, with the reason and SaaSquatch's answer added."""
    added = {
        "reason": reason,
        "detail": detail,
        "status": status,
        "apiErrorCode": api_error_code,
        "rsCode": rs_code,
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
