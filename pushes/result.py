"""How one pushed message ended: the neutral `Result` both consumers return, whatever their
destination (SaaSquatch for deliver, Segment for forward)."""

from __future__ import annotations

from dataclasses import dataclass

from common.outcomes import Outcome, Reason


@dataclass(frozen=True, slots=True)
class Result:
    """How one message ended, with what the destination last said when it said anything.

    `codes` are the destination's own error codes as (log field, value) pairs, such as
    SaaSquatch's `("api_error_code", "USER_NOT_FOUND")`: the log line carries them under that
    name and a dead letter as an attribute of the same name in camelCase (`apiErrorCode`).
    """

    outcome: Outcome
    reason: Reason | None = None
    detail: str | None = None
    status: int | None = None  # the destination's last HTTP status
    codes: tuple[tuple[str, str], ...] = ()
    retry_after: float | None = None
    calls: int = 0
    destination_ms: float | None = None  # time spent waiting for the destination, all calls
    # The destination's own words (an error message that may quote what it was sent): kept
    # with the dead letter for the operator, never written to a log line.
    quoted: str | None = None


def code_attribute(field: str) -> str:
    """A code's log field name as a dead-letter attribute: `api_error_code` -> `apiErrorCode`."""
    first, *rest = field.split("_")
    return first + "".join(part.capitalize() for part in rest)
