"""The one table that says what a destination's answer means for a pushed message: retry (with
the destination's `Retry-After`) or dead letter, and why.

Each client describes a failed call in this table's terms (its HTTP status or none, whether the
body was the destination's own error format, why no answer came); `Destination.judge` reads the
table and names the reason in the destination's words (`saasquatch_rate_limited`,
`segment_rate_limited`). What a particular call's answer means *before* the table (a 409 on an
event is SaaSquatch saying "already have it") is the consumer's own (`subscription.execute`).

| the answer                                    | verdict           | the message          |
|-----------------------------------------------|-------------------|----------------------|
| none: no answer within the timeout            | timeout           | retry                |
| none: refused, reset, DNS, TLS                | unreachable       | retry                |
| none: the credential could not be read        | key_unavailable   | retry                |
| 429                                           | rate_limited      | retry, `Retry-After` |
| 408, or 500 and above                         | unavailable       | retry, `Retry-After` |
| any other not in the destination's own error  | unexpected_answer | dead letter          |
| format (an HTML page, a redirect)             |                   |                      |
| 401, 403                                      | unauthorized      | dead letter          |
| 404                                           | not_found         | dead letter          |
| any other status                              | rejected          | dead letter          |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from common.outcomes import Outcome, Reason

from .result import Result


class Verdict(StrEnum):
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    KEY_UNAVAILABLE = "key_unavailable"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    UNEXPECTED_ANSWER = "unexpected_answer"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"

    @property
    def outcome(self) -> Outcome:
        return Outcome.RETRY if self in RETRIED else Outcome.DEAD_LETTERED


RETRIED = frozenset(
    {
        Verdict.TIMEOUT,
        Verdict.UNREACHABLE,
        Verdict.KEY_UNAVAILABLE,
        Verdict.RATE_LIMITED,
        Verdict.UNAVAILABLE,
    }
)
# Why no answer came, as the clients say it (saasquatch.errors.NoAnswerKind's values).
SILENCES = frozenset({Verdict.TIMEOUT, Verdict.UNREACHABLE, Verdict.KEY_UNAVAILABLE})


def verdict(
    status: int | None, *, silence: str = "unreachable", own_format: bool = True
) -> Verdict:
    """The table above, row by row. `silence` says why no answer came (when `status` is None);
    `own_format` is False for an answer that is not the destination's own error body."""
    if status is None:
        found = Verdict(silence)
        if found not in SILENCES:
            raise ValueError(f"{silence!r} is not a reason for no answer")
        return found
    if status == 429:
        return Verdict.RATE_LIMITED
    if status == 408 or status >= 500:
        return Verdict.UNAVAILABLE
    if not own_format:
        return Verdict.UNEXPECTED_ANSWER
    if status in (401, 403):
        return Verdict.UNAUTHORIZED
    if status == 404:
        return Verdict.NOT_FOUND
    return Verdict.REJECTED


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a consumer sends: `name` prefixes its log fields (`saasquatch_status`,
    `segment_ms`), `reasons` names every verdict in the destination's words."""

    name: str
    reasons: Mapping[Verdict, Reason]

    def __post_init__(self) -> None:
        missing = set(Verdict) - set(self.reasons)
        if missing:
            raise ValueError(f"{self.name}: no reason for {sorted(missing)}")
        for found, reason in self.reasons.items():
            if reason.outcome is not found.outcome:
                raise ValueError(f"{self.name}: {reason} is not a {found.outcome} reason")

    def judge(
        self,
        status: int | None,
        detail: str,
        *,
        silence: str = "unreachable",
        own_format: bool = True,
        retry_after: float | None = None,
        codes: tuple[tuple[str, str], ...] = (),
        calls: int = 0,
        quoted: str | None = None,
    ) -> Result:
        """The `Result` of a failed call: the table's verdict, in this destination's reason, with
        the destination's `Retry-After` (the push answer passes it on only for a retry)."""
        found = verdict(status, silence=silence, own_format=own_format)
        reason = self.reasons[found]
        return Result(
            found.outcome, reason, detail, status, codes, retry_after, calls, quoted=quoted
        )
