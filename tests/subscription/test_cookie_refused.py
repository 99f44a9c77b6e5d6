"""A referral cookie SaaSquatch refuses (RS052) never costs the user upsert: it is sent once more
without `cookies`, and the outcome says so. Run against the SaaSquatch stand-in, which answers a
`cookies` it cannot read as SaaSquatch does; asserted on what the stand-in received."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from common.outcomes import Outcome
from mapper import MappingOptions, map_message
from saasquatch.client import FixedApiKey, SaaSquatchClient
from subscription.execute import Result, execute

from ..factories import USER, envelope, identify, track
from ..support.functions import MakeDeliver
from ..support.saasquatch_standin import (
    API_KEY,
    TENANT,
    SaaSquatchStandIn,
    error_body,
    is_upsert,
)


def log_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def deliver_lines(out: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(out) if line.get("entry_point") == "deliver"]


def encoded(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


# What squatch.js keeps after a referral link: SaaSquatch takes it.
GOOD = encoded({"app.referralsaasquatch.com": {f"{TENANT}_CODE": {"codes": {"p1": "BOB"}}}})
# Base64URL of a JSON object, so the mapper sends it, but not the cookie's schema: RS052.
REFUSED = encoded({"app.referralsaasquatch.com": "BOB"})


def with_cookie(message: dict[str, Any], cookie: str) -> dict[str, Any]:
    return {**message, "integrations": {"SaaSquatch": {"cookies": cookie}}}


def run(saasquatch_api: SaaSquatchStandIn, message: dict[str, Any], **options: Any) -> Result:
    client = SaaSquatchClient(saasquatch_api.base_url, TENANT, FixedApiKey(API_KEY), timeout=1)
    plan = map_message(message, MappingOptions(**options), now=datetime.now(UTC))
    return execute(plan, client.send)


def received(saasquatch_api: SaaSquatchStandIn) -> list[tuple[str, int, bool]]:
    """(method, status answered, whether the body had `cookies`) of every request, in order."""
    return [
        (
            request.method,
            request.status,
            isinstance(request.body, dict) and "cookies" in request.body,
        )
        for request in saasquatch_api.requests
    ]


def test_a_cookie_saasquatch_takes_is_sent_once(saasquatch_api: SaaSquatchStandIn) -> None:
    result = run(saasquatch_api, with_cookie(identify(), GOOD))
    assert (result.outcome, result.reason, result.calls) == (Outcome.DELIVERED, None, 1)
    [sent] = saasquatch_api.requests
    assert (sent.method, sent.status, sent.body["cookies"]) == ("PUT", 200, GOOD)


def test_a_refused_cookie_is_dropped_and_the_upsert_sent_again(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    result = run(saasquatch_api, with_cookie(identify(), REFUSED))
    assert received(saasquatch_api) == [("PUT", 400, True), ("PUT", 200, False)]
    first, second = (request.body for request in saasquatch_api.requests)
    assert first["cookies"] == REFUSED
    assert second == {name: value for name, value in first.items() if name != "cookies"}
    assert (USER, USER) in saasquatch_api.users
    assert (result.outcome, result.reason) == (Outcome.DELIVERED, "cookie_refused")
    assert (result.status, result.calls) == (200, 2)
    assert dict(result.codes) == {"api_error_code": "INVALID_COOKIE", "rs_code": "RS052"}
    assert result.detail is not None and REFUSED not in result.detail
    assert result.quoted is None


def test_the_track_upsert_before_the_event_drops_a_refused_cookie(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    result = run(saasquatch_api, with_cookie(track(), REFUSED), track_upsert_strategy="always")
    assert received(saasquatch_api) == [
        ("PUT", 400, True),
        ("PUT", 200, False),
        ("POST", 200, False),
    ]
    assert saasquatch_api.delivered_events == {"m-track-0001": 1}
    assert (result.outcome, result.reason) == (Outcome.DELIVERED, "cookie_refused")


def test_the_upsert_after_a_404_drops_a_refused_cookie_and_the_event_still_goes(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    result = run(saasquatch_api, with_cookie(track(), REFUSED))
    assert received(saasquatch_api) == [
        ("POST", 404, False),
        ("PUT", 400, True),
        ("PUT", 200, False),
        ("POST", 200, False),
    ]
    assert saasquatch_api.delivered_events == {"m-track-0001": 1}
    # The cookie refused wins the reason; that the user was created is kept in the detail.
    assert (result.outcome, result.reason, result.calls) == (Outcome.DELIVERED, "cookie_refused", 4)
    assert result.detail is not None and "user_created" in result.detail


def test_another_400_on_an_upsert_with_a_cookie_is_not_retried(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    body = error_body(400, "Invalid locale", "INVALID_REQUEST", "RS002")
    saasquatch_api.fail(400, match=is_upsert, body=body)
    result = run(saasquatch_api, with_cookie(identify(), GOOD))
    assert received(saasquatch_api) == [("PUT", 400, True)]
    assert (result.outcome, result.reason) == (Outcome.DEAD_LETTERED, "saasquatch_rejected")
    assert dict(result.codes)["rs_code"] == "RS002"


def test_rs052_on_an_upsert_without_a_cookie_is_not_retried(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    body = error_body(400, "You have passed an invalid cookie value.", "INVALID_COOKIE", "RS052")
    saasquatch_api.fail(400, match=is_upsert, body=body)
    result = run(saasquatch_api, identify())
    assert received(saasquatch_api) == [("PUT", 400, False)]
    assert (result.outcome, result.reason) == (Outcome.DEAD_LETTERED, "saasquatch_rejected")


def test_a_failure_of_the_upsert_sent_again_is_judged_as_usual(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    body = error_body(400, "You have passed an invalid cookie value.", "INVALID_COOKIE", "RS052")
    saasquatch_api.fail(400, match=is_upsert, body=body)
    saasquatch_api.fail(503, match=is_upsert)
    result = run(saasquatch_api, with_cookie(identify(), GOOD))
    assert received(saasquatch_api) == [("PUT", 400, True), ("PUT", 503, False)]
    assert (result.outcome, result.reason) == (Outcome.RETRY, "saasquatch_unavailable")
    # The detail tells both: the operator sees the cookie was refused before the failure.
    assert result.detail is not None
    assert result.detail.startswith("the referral cookie refused (RS052), then upsert_user: ")


# --- deliver: its answer, its log line, its dry run -----------------------------------------------


def test_deliver_answers_and_logs_cookie_refused_without_the_cookie(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_deliver()
    answer = client.post("/", json=envelope(with_cookie(identify(), REFUSED)))
    assert answer.status_code == 200
    assert answer.json == {"outcome": "delivered", "reason": "cookie_refused"}
    assert received(saasquatch_api) == [("PUT", 400, True), ("PUT", 200, False)]
    out = capsys.readouterr().out
    [line] = deliver_lines(out)
    assert (line["outcome"], line["reason"]) == ("delivered", "cookie_refused")
    assert (line["rs_code"], line["saasquatch_status"], line["calls"]) == ("RS052", 200, 2)
    assert line["severity"] == "INFO"
    assert REFUSED not in out
    assert "invalid cookie value" not in out  # SaaSquatch's own words stay out of logs


def test_dry_run_shows_the_cookie_by_its_size_only(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_deliver(DRY_RUN="true")
    answer = client.post("/", json=envelope(with_cookie(identify(), GOOD)))
    assert answer.json == {"outcome": "delivered"}
    assert saasquatch_api.requests == []
    out = capsys.readouterr().out
    [call] = [line for line in log_lines(out) if line.get("dry_run") is True and "url" in line]
    assert call["body"]["cookies"] == f"str({len(GOOD)})"
    assert GOOD not in out


def test_a_cookie_left_out_by_the_mapper_is_a_counted_note_in_the_log(
    make_deliver: MakeDeliver,
    saasquatch_api: SaaSquatchStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    garbage = "c2VjcmV0LXJlZmVycmFsLXZhbHVl+not/base64url"
    client = make_deliver()
    answer = client.post("/", json=envelope(with_cookie(identify(), garbage)))
    assert answer.json == {"outcome": "delivered"}
    assert received(saasquatch_api) == [("PUT", 200, False)]
    out = capsys.readouterr().out
    [line] = deliver_lines(out)
    assert line["notes"] == ["referral cookie left out: 1"]
    assert "c2VjcmV0" not in out
