"""Running plans against the SaaSquatch stand-in, and how each ending is classified."""

from __future__ import annotations

from typing import Any

import pytest

from delivery import Result, Status, execute
from saasquatch import FixedApiKey, SaaSquatchClient
from tools.processes import free_port

from .conftest import plan_for
from .saasquatch_standin import API_KEY, TENANT, SaaSquatchStandIn, is_events, is_upsert

USER = "u-1001"


def run(stand_in: SaaSquatchStandIn, message: dict[str, Any], **options: Any) -> Result:
    client = SaaSquatchClient(stand_in.base_url, TENANT, FixedApiKey(API_KEY), timeout=0.5)
    return execute(plan_for(message, **options), client.send)


def track(message_id: str = "m-track-0001", **changes: Any) -> dict[str, Any]:
    message = {
        "type": "track",
        "userId": USER,
        "event": "Signed Up",
        "messageId": message_id,
        "timestamp": "2026-11-28T10:00:00Z",
        "properties": {"plan": "pro"},
    }
    return {**message, **changes}


def identify() -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": USER,
        "messageId": "m-ident-0001",
        "traits": {"email": "peter@initech.com", "name": "Peter Gibbons"},
    }


def summary(stand_in: SaaSquatchStandIn) -> list[tuple[str, int]]:
    return [(request.method, request.status) for request in stand_in.requests]


def test_ignored_and_dead_letter_plans_send_nothing(stand_in: SaaSquatchStandIn) -> None:
    ignored = run(stand_in, {"type": "page", "userId": USER})
    assert (ignored.outcome, ignored.reason) == (Status.IGNORED, "unsupported_type")
    dead = run(stand_in, {"type": "teleport", "userId": USER})
    assert (dead.outcome, dead.reason) == (Status.DEAD_LETTERED, "unknown_type")
    assert stand_in.requests == []


def test_identify_is_one_upsert(stand_in: SaaSquatchStandIn) -> None:
    result = run(stand_in, identify())
    assert (result.outcome, result.status, result.calls) == (Status.DELIVERED, 200, 1)
    assert summary(stand_in) == [("PUT", 200)]


def test_event_for_an_existing_user_is_one_call(stand_in: SaaSquatchStandIn) -> None:
    stand_in.add_user(USER, USER)
    result = run(stand_in, track())
    assert (result.outcome, result.reason, result.calls) == (Status.DELIVERED, None, 1)
    assert summary(stand_in) == [("POST", 200)]


def test_event_for_a_missing_user_upserts_then_sends_again(stand_in: SaaSquatchStandIn) -> None:
    result = run(stand_in, track())
    assert (result.outcome, result.reason) == (Status.DELIVERED, "user_created")
    assert summary(stand_in) == [("POST", 404), ("PUT", 200), ("POST", 200)]
    assert stand_in.delivered_events == {"m-track-0001": 1}


def test_strategy_never_dead_letters_a_missing_user(stand_in: SaaSquatchStandIn) -> None:
    result = run(stand_in, track(), track_upsert_strategy="never")
    assert result.outcome is Status.DEAD_LETTERED
    assert (result.reason, result.status) == ("user_not_found", 404)
    assert (result.api_error_code, result.rs_code) == ("USER_NOT_FOUND", "RS014")
    assert summary(stand_in) == [("POST", 404)]


def test_strategy_always_upserts_before_the_event(stand_in: SaaSquatchStandIn) -> None:
    result = run(stand_in, track(), track_upsert_strategy="always")
    assert result.outcome is Status.DELIVERED
    assert summary(stand_in) == [("PUT", 200), ("POST", 200)]


def test_a_404_right_after_a_successful_upsert_is_retried_not_dead_lettered(
    stand_in: SaaSquatchStandIn,
) -> None:
    stand_in.fail(404, times=2, match=is_events)
    result = run(stand_in, track())
    assert (result.outcome, result.reason) == (Status.RETRY, "user_not_found_after_upsert")
    assert summary(stand_in) == [("POST", 404), ("PUT", 200), ("POST", 404)]


def test_409_means_already_delivered(stand_in: SaaSquatchStandIn) -> None:
    stand_in.add_user(USER, USER)
    first = run(stand_in, track())
    again = run(stand_in, track())
    assert first.outcome is again.outcome is Status.DELIVERED
    assert (again.reason, again.status) == ("already_delivered", 409)
    assert stand_in.delivered_events == {"m-track-0001": 1}


def test_409_on_the_resend_after_the_upsert_is_also_delivered(
    stand_in: SaaSquatchStandIn,
) -> None:
    stand_in.fail(404, match=is_events)
    stand_in.fail(409, match=is_events)
    result = run(stand_in, track())
    assert (result.outcome, result.reason) == (Status.DELIVERED, "already_delivered")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (500, "saasquatch_unavailable"),
        (502, "saasquatch_unavailable"),
        (503, "saasquatch_unavailable"),
        (408, "saasquatch_unavailable"),
        (429, "saasquatch_rate_limited"),
    ],
)
def test_transient_answers_are_retried(
    stand_in: SaaSquatchStandIn, status: int, reason: str
) -> None:
    stand_in.fail(status, headers={"Retry-After": "12"})
    result = run(stand_in, identify())
    assert (result.outcome, result.reason, result.status) == (Status.RETRY, reason, status)
    assert result.retry_after == 12


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "saasquatch_rejected"),
        (401, "saasquatch_unauthorized"),
        (403, "saasquatch_unauthorized"),
        (422, "saasquatch_rejected"),
    ],
)
def test_permanent_answers_are_dead_lettered_with_saasquatch_codes(
    stand_in: SaaSquatchStandIn, status: int, reason: str
) -> None:
    stand_in.fail(status)
    result = run(stand_in, identify())
    assert (result.outcome, result.reason, result.status) == (Status.DEAD_LETTERED, reason, status)
    assert (result.api_error_code, result.rs_code) == (f"FAULT_{status}", f"RS{status}")
    assert result.detail.startswith("upsert_user: SaaSquatch answered")


def test_a_failed_upsert_names_the_upsert_not_the_event(stand_in: SaaSquatchStandIn) -> None:
    stand_in.fail(400, match=is_upsert)
    result = run(stand_in, track())
    assert (result.outcome, result.reason) == (Status.DEAD_LETTERED, "saasquatch_rejected")
    assert result.detail.startswith("upsert_user:")


def test_a_timeout_is_retried(stand_in: SaaSquatchStandIn) -> None:
    stand_in.fail(None, delay=1.0)
    result = run(stand_in, identify())
    assert (result.outcome, result.reason) == (Status.RETRY, "saasquatch_timeout")


def test_an_unreachable_saasquatch_is_retried() -> None:
    client = SaaSquatchClient(
        f"http://127.0.0.1:{free_port()}", TENANT, FixedApiKey(API_KEY), timeout=1
    )
    result = execute(plan_for(identify()), client.send)
    assert (result.outcome, result.reason) == (Status.RETRY, "saasquatch_unreachable")


def test_an_unexpected_success_page_is_dead_lettered(stand_in: SaaSquatchStandIn) -> None:
    stand_in.fail(200, body="<html>a web page, not the API</html>")
    result = run(stand_in, identify())
    assert (result.outcome, result.reason) == (Status.DEAD_LETTERED, "saasquatch_unexpected_answer")


def test_deleting_a_user_that_is_already_gone_is_delivered(stand_in: SaaSquatchStandIn) -> None:
    result = run(stand_in, {"type": "delete", "userId": USER}, honor_delete=True)
    assert (result.outcome, result.reason) == (Status.DELIVERED, "already_deleted")
    assert summary(stand_in) == [("DELETE", 404)]
