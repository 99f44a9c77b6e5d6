"""The one table that says what a destination's answer means, and each destination's words for
its verdicts; the status of every answer following from its reason."""

from __future__ import annotations

import pytest

from common.http import Refusal, RetryLater
from common.outcomes import Outcome, Reason, reasons_for
from pushes.result import Result, code_attribute
from pushes.verdicts import Destination, Verdict, verdict
from stream.forward import SEGMENT
from subscription.execute import SAASQUATCH


@pytest.mark.parametrize(
    ("status", "own_format", "expected"),
    [
        (429, True, Verdict.RATE_LIMITED),
        (429, False, Verdict.RATE_LIMITED),  # a proxy's 429 page still means slow down
        (408, True, Verdict.UNAVAILABLE),
        (500, True, Verdict.UNAVAILABLE),
        (503, False, Verdict.UNAVAILABLE),
        (599, True, Verdict.UNAVAILABLE),
        (200, False, Verdict.UNEXPECTED_ANSWER),  # an HTML page with a 200
        (302, False, Verdict.UNEXPECTED_ANSWER),
        (404, False, Verdict.UNEXPECTED_ANSWER),
        (401, True, Verdict.UNAUTHORIZED),
        (403, True, Verdict.UNAUTHORIZED),
        (404, True, Verdict.NOT_FOUND),
        (400, True, Verdict.REJECTED),
        (409, True, Verdict.REJECTED),
        (422, True, Verdict.REJECTED),
    ],
)
def test_every_row_of_the_table(status: int, own_format: bool, expected: Verdict) -> None:
    assert verdict(status, own_format=own_format) is expected


@pytest.mark.parametrize("silence", ["timeout", "unreachable", "key_unavailable"])
def test_no_answer_is_always_a_retry(silence: str) -> None:
    found = verdict(None, silence=silence)
    assert (found, found.outcome) == (Verdict(silence), Outcome.RETRY)


def test_a_silence_that_is_not_one_is_a_bug() -> None:
    with pytest.raises(ValueError):
        verdict(None, silence="rejected")


@pytest.mark.parametrize("destination", [SAASQUATCH, SEGMENT], ids=lambda d: d.name)
def test_each_destination_names_every_verdict_with_a_reason_of_its_outcome(
    destination: Destination,
) -> None:
    assert set(destination.reasons) == set(Verdict)
    for found, reason in destination.reasons.items():
        assert reason.outcome is found.outcome


def test_a_destination_missing_a_verdict_does_not_start() -> None:
    with pytest.raises(ValueError, match="no reason for"):
        Destination("partial", {Verdict.TIMEOUT: Reason.SAASQUATCH_TIMEOUT})
    wrong = {found: Reason.SAASQUATCH_REJECTED for found in Verdict}
    with pytest.raises(ValueError, match="is not a retry reason"):
        Destination("wrong", wrong)


def test_judge_keeps_the_destinations_retry_after() -> None:
    limited = SAASQUATCH.judge(429, "slow down", retry_after=2.5, calls=1)
    assert limited == Result(
        Outcome.RETRY, Reason.SAASQUATCH_RATE_LIMITED, "slow down", 429, (), 2.5, 1
    )
    rejected = SEGMENT.judge(400, "no", retry_after=9.0, calls=1)
    assert (rejected.outcome, rejected.reason, rejected.retry_after) == (
        Outcome.DEAD_LETTERED,
        Reason.SEGMENT_REJECTED,
        9.0,
    )


def test_codes_become_camel_case_attributes() -> None:
    assert code_attribute("api_error_code") == "apiErrorCode"
    assert code_attribute("rs_code") == "rsCode"


def test_the_status_of_an_answer_follows_from_its_reason() -> None:
    for reason in reasons_for(Outcome.REFUSED):
        assert 400 <= reason.status < 500, reason
    for reason in (Reason.SAASQUATCH_RATE_LIMITED, Reason.SEGMENT_RATE_LIMITED):
        assert reason.status == 429
    assert Reason.INTERNAL_ERROR.status == 500
    others = set(reasons_for(Outcome.RETRY)) - {
        Reason.SAASQUATCH_RATE_LIMITED,
        Reason.SEGMENT_RATE_LIMITED,
        Reason.INTERNAL_ERROR,
    }
    assert {reason.status for reason in others} == {503}
    for outcome in (Outcome.DELIVERED, Outcome.IGNORED, Outcome.DEAD_LETTERED):
        assert {reason.status for reason in reasons_for(outcome)} == {200}


def test_a_refusal_takes_only_a_refused_reason_and_a_retry_only_a_retry_reason() -> None:
    assert Refusal(Reason.WRONG_TOKEN, "wrong token").status == 401
    assert RetryLater(Reason.PUBLISH_FAILED, "later").status == 503
    with pytest.raises(ValueError):
        Refusal(Reason.PUBLISH_FAILED, "a 503 is not a refusal")
    with pytest.raises(ValueError):
        RetryLater(Reason.WRONG_TOKEN, "a 401 is not a retry")
