"""Running plans against the SaaSquatch stand-in, and how each ending is classified."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from common.outcomes import Outcome
from mapper import MappingOptions, map_message
from saasquatch.client import FixedApiKey, SaaSquatchClient
from subscription.execute import Result, execute
from tools.processes import free_port

from ..factories import USER, identify, track
from ..support.saasquatch_standin import (
    API_KEY,
    TENANT,
    SaaSquatchStandIn,
    error_body,
    is_events,
    is_upsert,
)


def run(saasquatch_api: SaaSquatchStandIn, message: dict[str, Any], **options: Any) -> Result:
    """The message mapped now (its timestamp is from the real clock) and run against the API."""
    client = SaaSquatchClient(saasquatch_api.base_url, TENANT, FixedApiKey(API_KEY), timeout=0.5)
    plan = map_message(message, MappingOptions(**options), now=datetime.now(UTC))
    return execute(plan, client.send)


def summary(saasquatch_api: SaaSquatchStandIn) -> list[tuple[str, int]]:
    return [(request.method, request.status) for request in saasquatch_api.requests]


def test_ignored_and_dead_letter_plans_send_nothing(saasquatch_api: SaaSquatchStandIn) -> None:
    ignored = run(saasquatch_api, {"type": "page", "userId": USER})
    assert (ignored.outcome, ignored.reason) == (Outcome.IGNORED, "unsupported_type")
    dead = run(saasquatch_api, {"type": "teleport", "userId": USER})
    assert (dead.outcome, dead.reason) == (Outcome.DEAD_LETTERED, "unknown_type")
    assert saasquatch_api.requests == []


def test_identify_is_one_upsert(saasquatch_api: SaaSquatchStandIn) -> None:
    result = run(saasquatch_api, identify())
    assert (result.outcome, result.status, result.calls) == (Outcome.DELIVERED, 200, 1)
    assert summary(saasquatch_api) == [("PUT", 200)]


def test_event_for_an_existing_user_is_one_call(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.add_user(USER, USER)
    result = run(saasquatch_api, track())
    assert (result.outcome, result.reason, result.calls) == (Outcome.DELIVERED, None, 1)
    assert summary(saasquatch_api) == [("POST", 200)]


def test_event_for_a_missing_user_upserts_then_sends_again(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    result = run(saasquatch_api, track())
    assert (result.outcome, result.reason) == (Outcome.DELIVERED, "user_created")
    assert summary(saasquatch_api) == [("POST", 404), ("PUT", 200), ("POST", 200)]
    assert saasquatch_api.delivered_events == {"m-track-0001": 1}


def test_strategy_never_dead_letters_a_missing_user(saasquatch_api: SaaSquatchStandIn) -> None:
    result = run(saasquatch_api, track(), track_upsert_strategy="never")
    assert result.outcome is Outcome.DEAD_LETTERED
    assert (result.reason, result.status) == ("user_not_found", 404)
    assert dict(result.codes) == {"api_error_code": "USER_NOT_FOUND", "rs_code": "RS014"}
    assert summary(saasquatch_api) == [("POST", 404)]


def test_strategy_always_upserts_before_the_event(saasquatch_api: SaaSquatchStandIn) -> None:
    result = run(saasquatch_api, track(), track_upsert_strategy="always")
    assert result.outcome is Outcome.DELIVERED
    assert summary(saasquatch_api) == [("PUT", 200), ("POST", 200)]


def test_a_404_right_after_a_successful_upsert_is_retried_not_dead_lettered(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    saasquatch_api.fail(404, times=2, match=is_events)
    result = run(saasquatch_api, track())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "user_not_found_after_upsert")
    assert summary(saasquatch_api) == [("POST", 404), ("PUT", 200), ("POST", 404)]


def test_409_means_already_delivered(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.add_user(USER, USER)
    first = run(saasquatch_api, track())
    again = run(saasquatch_api, track())
    assert first.outcome is again.outcome is Outcome.DELIVERED
    assert (again.reason, again.status) == ("already_delivered", 409)
    assert saasquatch_api.delivered_events == {"m-track-0001": 1}


def test_409_on_the_resend_after_the_upsert_is_also_delivered(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    saasquatch_api.fail(404, match=is_events)
    saasquatch_api.fail(409, match=is_events, body=IDEMPOTENCY_CONFLICT)
    result = run(saasquatch_api, track())
    assert (result.outcome, result.reason) == (Outcome.DELIVERED, "already_delivered")


IDEMPOTENCY_CONFLICT = error_body(
    409, "Idempotency key conflict", "IDEMPOTENCY_KEY_CONFLICT", "RS040"
)


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (IDEMPOTENCY_CONFLICT, Outcome.DELIVERED),
        (error_body(409, "Idempotency key conflict", "", ""), Outcome.DELIVERED),
        ("", Outcome.DELIVERED),  # an empty body: the documented meaning stands
        ("<html>Conflict</html>", Outcome.DELIVERED),
        (error_body(409, "Account is locked", "ACCOUNT_LOCKED", "RS077"), Outcome.DEAD_LETTERED),
    ],
)
def test_only_the_idempotency_conflict_counts_as_delivered(
    saasquatch_api: SaaSquatchStandIn, body: object, outcome: Outcome
) -> None:
    saasquatch_api.add_user(USER, USER)
    saasquatch_api.fail(409, match=is_events, body=body)
    result = run(saasquatch_api, track())
    assert result.outcome is outcome
    if outcome is Outcome.DEAD_LETTERED:
        assert (result.reason, dict(result.codes)["api_error_code"]) == (
            "saasquatch_rejected",
            "ACCOUNT_LOCKED",
        )


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
    saasquatch_api: SaaSquatchStandIn, status: int, reason: str
) -> None:
    saasquatch_api.fail(status, headers={"Retry-After": "12"})
    result = run(saasquatch_api, identify())
    assert (result.outcome, result.reason, result.status) == (
        Outcome.RETRY,
        reason,
        status,
    )
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
    saasquatch_api: SaaSquatchStandIn, status: int, reason: str
) -> None:
    saasquatch_api.fail(status)
    result = run(saasquatch_api, identify())
    assert (result.outcome, result.reason, result.status) == (
        Outcome.DEAD_LETTERED,
        reason,
        status,
    )
    assert dict(result.codes) == {"api_error_code": f"FAULT_{status}", "rs_code": f"RS{status}"}
    assert result.detail.startswith("upsert_user: SaaSquatch answered")


def test_a_failed_upsert_names_the_upsert_not_the_event(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(400, match=is_upsert)
    result = run(saasquatch_api, track())
    assert (result.outcome, result.reason) == (Outcome.DEAD_LETTERED, "saasquatch_rejected")
    assert result.detail.startswith("upsert_user:")


def test_a_timeout_is_retried(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(None, delay=1.0)
    result = run(saasquatch_api, identify())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "saasquatch_timeout")


def test_an_unreachable_saasquatch_is_retried() -> None:
    client = SaaSquatchClient(
        f"http://127.0.0.1:{free_port()}", TENANT, FixedApiKey(API_KEY), timeout=1
    )
    result = execute(map_message(identify(), now=datetime.now(UTC)), client.send)
    assert (result.outcome, result.reason) == (Outcome.RETRY, "saasquatch_unreachable")


def test_an_unexpected_success_page_is_dead_lettered(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(200, body="<html>a web page, not the API</html>")
    result = run(saasquatch_api, identify())
    assert (result.outcome, result.reason) == (
        Outcome.DEAD_LETTERED,
        "saasquatch_unexpected_answer",
    )


def test_deleting_a_user_that_is_already_gone_is_delivered(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    result = run(saasquatch_api, {"type": "delete", "userId": USER}, honor_delete=True)
    assert (result.outcome, result.reason) == (Outcome.DELIVERED, "already_deleted")
    assert summary(saasquatch_api) == [("DELETE", 404)]
