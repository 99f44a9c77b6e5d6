"""What an operator does about each dead-letter reason: the one table `dead-letters replay` reads
before it sends anything back, and the "what to do" column of `docs/operations/reasons.md` (a
test keeps the two in step).

A replay sends a message again as it is. That helps only when the cause was outside the message (a
setting, a key, our code): a message dead-lettered for its own data fails the same way every
time, so it is exported, corrected and sent with `backfill`, or discarded.
"""

from __future__ import annotations

from enum import StrEnum

from common.outcomes import Reason


class Remedy(StrEnum):
    REPLAY = "replay"  # a setting, a key or our code: fix it, then replay
    CORRECT = "correct"  # the data: export, correct the file, backfill it, discard the originals
    DISCARD = "discard"  # the data, and nothing here to correct (a webhook as SaaSquatch sent it)
    EITHER = "either"  # the detail says which: a setting (then replay) or the data (then correct)

    @property
    def replayable(self) -> bool:
        """Whether a replay can ever end differently from the first delivery."""
        return self in (Remedy.REPLAY, Remedy.EITHER)


REMEDIES: dict[Reason, Remedy] = {
    Reason.MALFORMED_MESSAGE: Remedy.CORRECT,
    Reason.INVALID_MESSAGE: Remedy.CORRECT,
    Reason.UNKNOWN_TYPE: Remedy.CORRECT,
    Reason.MISSING_EVENT_NAME: Remedy.CORRECT,
    Reason.INVALID_EVENT_KEY: Remedy.EITHER,  # EVENT_KEY_MAP can name a key for the event
    Reason.INVALID_EVENT_DATA: Remedy.EITHER,  # INVALID_DATA_STRATEGY can keep the event
    Reason.DOT_SEGMENT_ID: Remedy.CORRECT,
    Reason.IDEMPOTENCY_KEY_REUSED: Remedy.CORRECT,
    Reason.TIMESTAMP_OUT_OF_WINDOW: Remedy.CORRECT,
    Reason.MAPPING_ERROR: Remedy.REPLAY,  # a bug: fixed and deployed, the message maps
    Reason.TRANSFORMER_FAILED: Remedy.REPLAY,
    Reason.TRANSFORMER_INVALID_RESULT: Remedy.REPLAY,
    Reason.INVALID_WEBHOOK: Remedy.DISCARD,
    Reason.SEGMENT_MESSAGE_TOO_LARGE: Remedy.DISCARD,
    Reason.UNSENDABLE_BODY: Remedy.EITHER,  # most often a transformer's output
    Reason.SAASQUATCH_UNAUTHORIZED: Remedy.REPLAY,
    Reason.SAASQUATCH_REJECTED: Remedy.EITHER,  # a program's rule, or a value it refuses
    Reason.SAASQUATCH_NOT_FOUND: Remedy.REPLAY,
    Reason.USER_NOT_FOUND: Remedy.REPLAY,
    Reason.SAASQUATCH_UNEXPECTED_ANSWER: Remedy.REPLAY,
    Reason.SEGMENT_UNAUTHORIZED: Remedy.REPLAY,
    Reason.SEGMENT_REJECTED: Remedy.REPLAY,  # our call (a mapping bug) or a wrong URL
    Reason.DELIVERY_ATTEMPTS_EXHAUSTED: Remedy.REPLAY,  # failed transiently until Pub/Sub gave up
    Reason.UNKNOWN: Remedy.EITHER,
}


def remedy_of(reason: str) -> Remedy:
    """The remedy of a dead letter's `reason` attribute; one we cannot read is `unknown`'s."""
    try:
        return REMEDIES[Reason(reason)]
    except (ValueError, KeyError):
        return REMEDIES[Reason.UNKNOWN]
