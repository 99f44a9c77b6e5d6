"""The SaaSquatch client through `requests` against the local stand-in."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from common.secrets import CachePolicy, SecretValue
from pushes.verdicts import verdict
from saasquatch.calls import Call, DotSegmentId, Purpose, user_path
from saasquatch.client import FixedApiKey, SaaSquatchClient, basic_auth, parse_retry_after
from saasquatch.errors import (
    ApiError,
    NoAnswer,
    NoAnswerKind,
    SaaSquatchError,
    UnexpectedAnswer,
    UnsendableBody,
)
from tools.processes import free_port

from ..support.saasquatch_standin import API_KEY, TENANT, SaaSquatchStandIn

USER = "peter@initech.com"


def retried(error: SaaSquatchError) -> bool:
    """What the one table (`pushes.verdicts`) makes of the client's description of a failure."""
    silence = error.kind if isinstance(error, NoAnswer) else "unreachable"
    own = isinstance(error, ApiError)
    return verdict(error.status, silence=silence, own_format=own).outcome == "retry"


ACCOUNT = "initech/acct 7"


def client_for(saasquatch_api: SaaSquatchStandIn, timeout: float = 5.0, key: str = API_KEY):
    return SaaSquatchClient(saasquatch_api.base_url, TENANT, FixedApiKey(key), timeout=timeout)


def upsert(user: str = USER, account: str = ACCOUNT) -> Call:
    body = {"id": user, "accountId": account, "firstName": "Peter"}
    return Call(Purpose.UPSERT_USER, "PUT", user_path(account, user), body)


def event(key: str = "m-0001-abcdef", user: str = USER, account: str = ACCOUNT) -> Call:
    body = {
        "userId": user,
        "accountId": account,
        "idempotencyKey": key,
        "events": [{"key": "signedUp", "fields": {}}],
    }
    return Call(Purpose.TRACK_EVENT, "POST", user_path(account, user) + "/events", body)


def test_basic_auth_is_an_empty_user_and_the_api_key_as_password() -> None:
    assert basic_auth("abc") == "Basic OmFiYw=="  # base64(":abc")


def test_a_call_is_sent_exactly_as_planned(saasquatch_api: SaaSquatchStandIn) -> None:
    call = upsert()
    call.headers["User-Agent"] = "Mozilla/5.0 (end user)"
    call.headers["X-Forwarded-For"] = "203.0.113.7"
    answer = client_for(saasquatch_api).send(call)
    assert answer.status == 200
    assert answer.body["referralCode"] == "PETERGIBBONS"
    [sent] = saasquatch_api.requests
    assert sent.method == "PUT"
    assert sent.path == f"/api/v1/{TENANT}/open/account/initech%2Facct%207/user/peter%40initech.com"
    assert sent.headers["Authorization"] == basic_auth(API_KEY)
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"] == "Mozilla/5.0 (end user)"
    assert sent.headers["X-Forwarded-For"] == "203.0.113.7"
    assert sent.body == call.body


@pytest.mark.parametrize(("account", "user"), [("..", ".."), (".", "."), ("acct", "..")])
def test_dot_ids_are_refused_before_they_become_a_path(account: str, user: str) -> None:
    """`..` as an id would climb out of `/open/account/{id}/user/{id}` at any front end that
    removes dot segments, and percent-encoding does not stop one that decodes `%2E` first."""
    with pytest.raises(DotSegmentId, match="dot segment"):
        user_path(account, user)


def test_the_path_goes_on_the_wire_exactly_as_built(saasquatch_api: SaaSquatchStandIn) -> None:
    """requests un-escapes unreserved characters while preparing a URL (`%2E` -> `.`); the client
    must not: what it built is what the request line carries."""
    built = "/open/account/%2E%2E/user/a%2Fb%2E~%7E"
    call = Call(Purpose.DELETE_USER, "DELETE", built, params={"doNotTrack": "false"})
    with pytest.raises(ApiError):  # the front end routes it nowhere: 404
        client_for(saasquatch_api).send(call)
    [sent] = saasquatch_api.requests
    expected = f"DELETE /api/v1/{TENANT}{built}?doNotTrack=false HTTP/1.1"
    assert sent.request_line == expected


def test_ids_with_dots_inside_stay_inside_the_user_endpoint(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    """Dots and slashes inside an id are one segment: the front end routes them to the user."""
    client_for(saasquatch_api).send(upsert("a/../..", "x.."))
    [sent] = saasquatch_api.requests
    assert sent.segments[:4] == ["", "api", "v1", TENANT]
    assert sent.segments[4:] == ["open", "account", "x..", "user", "a/../.."]


def test_a_delete_sends_its_query_and_no_body(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.add_user(ACCOUNT, USER)
    call = Call(
        Purpose.DELETE_USER, "DELETE", user_path(ACCOUNT, USER), params={"doNotTrack": "false"}
    )
    assert client_for(saasquatch_api).send(call).status == 200
    [sent] = saasquatch_api.requests
    assert sent.query == {"doNotTrack": ["false"]}
    assert sent.body is None
    assert "Content-Type" not in sent.headers


def test_an_api_error_carries_saasquatch_fields(saasquatch_api: SaaSquatchStandIn) -> None:
    with pytest.raises(ApiError) as caught:
        client_for(saasquatch_api).send(event())  # the user does not exist yet
    error = caught.value
    assert (error.status_code, error.api_error_code, error.rs_code) == (
        404,
        "USER_NOT_FOUND",
        "RS014",
    )
    assert "No user with id" in error.message
    assert not retried(error)


def test_a_repeated_idempotency_key_is_a_409_api_error(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.add_user(ACCOUNT, USER)
    client = client_for(saasquatch_api)
    assert client.send(event("m-repeat-01")).status == 200
    with pytest.raises(ApiError) as caught:
        client.send(event("m-repeat-01"))
    assert caught.value.status == 409


def test_a_wrong_key_is_401_and_permanent(saasquatch_api: SaaSquatchStandIn) -> None:
    with pytest.raises(ApiError) as caught:
        client_for(saasquatch_api, key="wrong").send(upsert())
    assert caught.value.status == 401
    assert not retried(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_timeouts_and_rate_limits_are_transient(
    saasquatch_api: SaaSquatchStandIn, status: int
) -> None:
    saasquatch_api.fail(status)
    with pytest.raises(ApiError) as caught:
        client_for(saasquatch_api).send(upsert())
    assert retried(caught.value)


def test_an_html_error_page_is_an_unexpected_answer_not_a_crash(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    saasquatch_api.fail(502, body="<html><body>Bad Gateway</body></html>")
    with pytest.raises(UnexpectedAnswer) as caught:
        client_for(saasquatch_api).send(upsert())
    assert caught.value.status == 502
    assert retried(caught.value)
    assert "text/html" in str(caught.value)


def test_a_json_error_without_message_is_unexpected(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(400, body={"error": "not SaaSquatch's shape"})
    with pytest.raises(UnexpectedAnswer):
        client_for(saasquatch_api).send(upsert())


def test_a_success_status_with_an_html_body_is_not_taken_for_delivery(
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    """A wrong SAASQUATCH_BASE_URL that serves a web page must not swallow events."""
    saasquatch_api.fail(200, body="<html>welcome</html>")
    with pytest.raises(UnexpectedAnswer) as caught:
        client_for(saasquatch_api).send(upsert())
    assert not retried(caught.value)


def test_an_empty_success_answer_is_fine(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(204, body=b"")
    assert client_for(saasquatch_api).send(upsert()).status == 204


def test_redirects_are_not_followed(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(301, body=b"", headers={"Location": "https://elsewhere.example/"})
    with pytest.raises(UnexpectedAnswer) as caught:
        client_for(saasquatch_api).send(upsert())
    assert caught.value.status == 301
    assert len(saasquatch_api.requests) == 1


def test_a_slow_answer_is_a_timeout(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(None, delay=1.5)
    started = time.monotonic()
    with pytest.raises(NoAnswer) as caught:
        client_for(saasquatch_api, timeout=0.3).send(upsert())
    assert time.monotonic() - started < 1.4
    assert caught.value.kind is NoAnswerKind.TIMEOUT
    assert retried(caught.value)


def test_a_refused_connection_is_unreachable_and_transient() -> None:
    client = SaaSquatchClient(
        f"http://127.0.0.1:{free_port()}", TENANT, FixedApiKey(API_KEY), timeout=2
    )
    with pytest.raises(NoAnswer) as caught:
        client.send(upsert())
    assert caught.value.kind is NoAnswerKind.UNREACHABLE
    assert retried(caught.value)


def test_a_body_that_is_not_json_is_never_sent(saasquatch_api: SaaSquatchStandIn) -> None:
    call = Call(Purpose.UPSERT_USER, "PUT", "/open/account/a/user/u", {"x": float("nan")})
    with pytest.raises(UnsendableBody):
        client_for(saasquatch_api).send(call)
    assert saasquatch_api.requests == []


def test_retry_after_in_seconds_and_as_a_date(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.fail(429, headers={"Retry-After": "7"})
    with pytest.raises(ApiError) as caught:
        client_for(saasquatch_api).send(upsert())
    assert caught.value.retry_after == 7
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) == 0
    assert parse_retry_after("99999", now) == 600


def test_a_rotated_api_key_is_picked_up_on_the_first_401(saasquatch_api: SaaSquatchStandIn) -> None:
    versions = {"v": "old-key"}
    saasquatch_api.api_keys = {"old-key"}
    key = SecretValue("v", versions.__getitem__, CachePolicy(300, 0))
    client = SaaSquatchClient(saasquatch_api.base_url, TENANT, key, timeout=5)
    assert client.send(upsert()).status == 200
    saasquatch_api.api_keys = {"new-key"}  # rotated in SaaSquatch and in Secret Manager
    versions["v"] = "new-key"
    assert client.send(upsert()).status == 200
    assert [r.status for r in saasquatch_api.requests] == [200, 401, 200]


def test_a_401_with_an_unchanged_key_is_not_resent(saasquatch_api: SaaSquatchStandIn) -> None:
    key = SecretValue("v", {"v": "bad-key"}.__getitem__, CachePolicy(300, 0))
    client = SaaSquatchClient(saasquatch_api.base_url, TENANT, key, timeout=5)
    with pytest.raises(ApiError):
        client.send(upsert())
    assert [r.status for r in saasquatch_api.requests] == [401]


def test_an_unreadable_api_key_is_a_transient_no_answer(saasquatch_api: SaaSquatchStandIn) -> None:
    def down(_version: str) -> str:
        raise ConnectionError("Secret Manager is down")

    key = SecretValue("v", down, CachePolicy(300, 0))
    client = SaaSquatchClient(saasquatch_api.base_url, TENANT, key, timeout=5)
    with pytest.raises(NoAnswer) as caught:
        client.send(upsert())
    assert caught.value.kind is NoAnswerKind.KEY_UNAVAILABLE
    assert saasquatch_api.requests == []


def test_connections_are_reused(saasquatch_api: SaaSquatchStandIn) -> None:
    saasquatch_api.add_user(ACCOUNT, USER)
    client = client_for(saasquatch_api)
    for n in range(5):
        client.send(event(f"m-reuse-{n:04d}"))
    assert len(saasquatch_api.requests) == 5
    assert len({request.client_port for request in saasquatch_api.requests}) == 1
