"""SaaSquatch's signing keys as a JWKS that misbehaves makes them: broken, huge, slow or down.
A known kid always verifies from memory; an unknown one costs at most one shared fetch per
cooldown, and what cannot be fetched is a 503 `signing_keys_unavailable` (JSON), never a 500.
Driven against a local JWKS stand-in that counts its fetches; time is an injected clock."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.http import EarlyAnswer
from stream.receive import create_handler
from stream.receive_settings import WebhookSettings
from stream.signature import JwsVerifier
from tools.local_http import public_jwk

from ..factories import PROJECT
from ..support.fakes import FakeTopic
from ..support.functions import client_for
from ..support.webhook_signing import (
    KID,
    Answer,
    JwksStandIn,
    detached_jws,
    huge_key_set,
    key_set,
    new_key,
)

KEY = new_key()
BODY = b'{"id":"wh-1","type":"reward.created","created":1764672000123,"data":{}}'
UNAVAILABLE = {
    "error": "SaaSquatch's signing keys cannot be fetched, retry later",
    "reason": "signing_keys_unavailable",
}
NOT_PUBLISHED = "X-Hook-JWS-RFC-7797 is signed with a key SaaSquatch does not publish"
HTML = b"<!doctype html><html><head><title>Maintenance</title></head><body>Back soon</body></html>"
HUGE = huge_key_set()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks() -> Iterator[JwksStandIn]:
    with JwksStandIn() as stand_in:
        stand_in.keys[KID] = KEY
        yield stand_in


class Warnings(logging.Handler):
    """The key cache's WARNING lines: their messages, and all they carry as text."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.module == "signing_keys":
            self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    @property
    def text(self) -> str:
        return repr([(r.getMessage(), getattr(r, "fields", None)) for r in self.records])


@pytest.fixture
def warnings_logged() -> Iterator[Warnings]:
    logger = logging.getLogger("segment_saasquatch")
    lines = Warnings()
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)


def verifier(
    jwks: JwksStandIn,
    clock: Clock | None = None,
    *,
    cooldown: float = 30.0,
    wait: float = 5.0,
    timeout: float = 5.0,
) -> JwsVerifier:
    return JwsVerifier(jwks.url, 3600, cooldown, timeout, wait=wait, clock=clock or Clock())


def primed(checking: JwsVerifier) -> JwsVerifier:
    """`checking` once its first fetch has ended (however short its wait), and KID verifying."""
    with suppress(EarlyAnswer):
        check(checking)
    assert checking.signing_keys.settled(10)
    check(checking)
    return checking


def check(checking: JwsVerifier, kid: str = KID) -> None:
    checking.verify(checking.prepare(detached_jws(BODY, KEY, kid=kid)), BODY)


def refusal(checking: JwsVerifier, kid: str = KID) -> EarlyAnswer:
    with pytest.raises(EarlyAnswer) as caught:
        check(checking, kid)
    return caught.value


def unavailable(refused: EarlyAnswer) -> bool:
    return (refused.status, refused.reason) == (503, "signing_keys_unavailable")


@pytest.fixture
def webhook(jwks: JwksStandIn) -> Callable[..., FlaskClient]:
    """saasquatch_webhook built as the service builds it, reading keys from the stand-in."""

    def make(**settings: Any) -> FlaskClient:
        base = {"GOOGLE_CLOUD_PROJECT": PROJECT, "WEBHOOK_TENANT_ALIASES": "test_tenant"}
        checked = WebhookSettings.checked(**base, WEBHOOK_JWKS_URL=jwks.url, **settings)
        return client_for(create_handler(checked, topic=FakeTopic("saasquatch-webhooks")))

    return make


def post(client: FlaskClient, kid: str = KID) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-Hook-JWS-RFC-7797": detached_jws(BODY, KEY, kid),
    }
    return client.post("/", data=BODY, headers=headers)


EC_KEY = {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AAAA", "y": "AAAA", "use": "sig"}
BROKEN = {
    "500": (Answer(500, b'{"message": "Internal Server Error"}'), "answered 500"),
    "html": (Answer(200, HTML, "text/html"), "not JSON"),
    "no keys list": (Answer(200, b'{"keys": {"a": 1}}'), "not a key set (no keys list)"),
    "a list": (Answer(200, b"[]"), "not a key set (no keys list)"),
    "no usable key": (
        Answer(200, json.dumps({"keys": [EC_KEY]}).encode()),
        "no usable RS256 key among 1 entries",
    ),
    "10 MB declared": (Answer(200, HUGE), "larger than 262144 bytes"),
    "10 MB undeclared": (Answer(200, HUGE, declared=False), "larger than 262144 bytes"),
    "gzip": (
        Answer(200, gzip.compress(key_set({KID: KEY})), headers={"Content-Encoding": "gzip"}),
        "an encoded answer (identity was asked for)",
    ),
}


@pytest.mark.parametrize(("answer", "why"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_jwks_is_a_503_never_a_500_and_logged_by_its_shape(
    webhook: Callable[..., FlaskClient],
    jwks: JwksStandIn,
    warnings_logged: Warnings,
    answer: Answer,
    why: str,
) -> None:
    jwks.answer = answer
    answered = post(webhook())
    assert (answered.status_code, answered.get_json()) == (503, UNAVAILABLE)
    assert warnings_logged.messages == [
        f"SaaSquatch's signing keys not fetched: {why}; 0 known keys kept"
    ]
    assert "Maintenance" not in warnings_logged.text
    assert jwks.fetches == 1


def test_a_redirect_is_not_followed(webhook: Callable[..., FlaskClient], jwks: JwksStandIn) -> None:
    with JwksStandIn() as elsewhere:
        elsewhere.keys[KID] = KEY
        jwks.answer = Answer(302, headers={"Location": elsewhere.url})
        answered = post(webhook())
        assert (answered.status_code, answered.get_json()) == (503, UNAVAILABLE)
        assert elsewhere.fetches == 0


@pytest.mark.parametrize(
    "answer",
    [Answer(500, b'{"message": "down"}'), Answer(200, HTML, "text/html")],
    ids=["500", "html"],
)
def test_while_the_jwks_fails_21_forged_kids_cost_one_fetch(
    webhook: Callable[..., FlaskClient], jwks: JwksStandIn, answer: Answer
) -> None:
    jwks.answer = answer
    client = webhook()  # WEBHOOK_JWKS_REFETCH_SECONDS: 30
    answers = [post(client, kid=f"forged-{n}") for n in range(21)]
    assert {(a.status_code, json.dumps(a.get_json())) for a in answers} == {
        (503, json.dumps(UNAVAILABLE))
    }
    assert jwks.fetches == 1


def test_a_slow_jwks_is_a_503_within_the_timeout(
    webhook: Callable[..., FlaskClient], jwks: JwksStandIn
) -> None:
    """The JWKS holds its answer (as one answering 20 s late does) until the test ends."""
    jwks.hold()
    answered = post(webhook(WEBHOOK_JWKS_TIMEOUT_SECONDS="0.3"))
    assert (answered.status_code, answered.get_json()) == (503, UNAVAILABLE)
    assert jwks.fetches == 1


def test_concurrent_unknown_kids_share_one_fetch(jwks: JwksStandIn) -> None:
    """With no cooldown at all, eight requests arriving while the one fetch is held back still
    cost that one fetch; each gives up after its wait, and the fetch goes on for later ones."""
    jwks.hold()
    checking = verifier(jwks, cooldown=0, wait=0.2, timeout=30)
    refused: list[EarlyAnswer] = []

    def request(n: int) -> None:
        refused.append(refusal(checking, kid=f"new-{n}"))

    threads = [threading.Thread(target=request, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(refused) == 8
    assert all(unavailable(r) for r in refused)
    assert jwks.wait_for_fetches(1)
    assert jwks.fetches == 1
    jwks.release()
    assert checking.signing_keys.settled(10)
    check(checking)  # what the held fetch brought
    assert jwks.fetches == 1


def test_waiters_for_a_kid_being_fetched_all_get_it_from_the_one_fetch(
    jwks: JwksStandIn,
) -> None:
    checking = primed(verifier(jwks, cooldown=0, wait=10))
    jwks.hold()
    jwks.keys["rotated"] = KEY
    failures: list[BaseException] = []

    def request() -> None:
        try:
            check(checking, kid="rotated")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert jwks.wait_for_fetches(2)
    jwks.release()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert jwks.fetches == 2


def test_a_slow_refresh_never_delays_a_known_key(jwks: JwksStandIn) -> None:
    clock = Clock()
    checking = primed(verifier(jwks, clock, wait=0.2, timeout=30))
    clock.now += 3601  # the set is due for a refresh
    jwks.hold()
    jwks.keys["rotated"] = KEY
    check(checking)  # from memory, while the refresh it started is held back
    assert jwks.wait_for_fetches(2)
    assert unavailable(refusal(checking, kid="rotated"))  # only the unknown kid waits
    check(checking)
    jwks.release()
    assert checking.signing_keys.settled(10)
    check(checking, kid="rotated")
    assert jwks.fetches == 2


PADDED = [{"kty": "oct", "kid": f"pad-{n}", "k": "AAAA"} for n in range(100)]
DRIPPED = {
    # About 90 s for the whole key set.
    "the body": None,
    # One endless chunk-size line: each receive returns a byte, but the read wants the line.
    "a chunk size": Answer(
        200, b"0" * 100_000, declared=False, headers={"Transfer-Encoding": "chunked"}
    ),
}


@pytest.mark.parametrize("answer", DRIPPED.values(), ids=DRIPPED.keys())
def test_the_timeout_bounds_the_whole_answer_not_each_read(
    jwks: JwksStandIn, warnings_logged: Warnings, answer: Answer | None
) -> None:
    """A byte every 20 ms never trips a 0.5 s read timeout; the answer's deadline ends it."""
    jwks.extra, jwks.answer = PADDED, answer
    jwks.drip()
    clock = Clock()
    checking = verifier(jwks, clock, wait=0.1, timeout=0.5)
    assert unavailable(refusal(checking))
    assert checking.signing_keys.settled(10)
    assert warnings_logged.messages == [
        "SaaSquatch's signing keys not fetched: the whole answer took longer than the timeout;"
        " 0 known keys kept"
    ]
    jwks.release()
    jwks.answer = None
    clock.now += 30
    primed(checking)
    assert jwks.fetches == 2


def test_known_keys_keep_verifying_while_the_jwks_is_down(
    jwks: JwksStandIn, warnings_logged: Warnings
) -> None:
    clock = Clock()
    checking = primed(verifier(jwks, clock))
    jwks.answer = Answer(200, HTML, "text/html")
    clock.now += 3601  # the set has expired
    check(checking)  # from memory; the refresh it starts fails
    assert checking.signing_keys.settled(10)
    for _ in range(20):
        check(checking)
    assert unavailable(refusal(checking, kid="rotated"))  # the last fetch failed: maybe it is new
    assert jwks.fetches == 2  # one refresh within the cooldown, however many requests
    clock.now += 30
    check(checking)  # the next refresh, which fails too
    assert checking.signing_keys.settled(10)
    assert jwks.fetches == 3
    assert (
        warnings_logged.messages
        == ["SaaSquatch's signing keys not fetched: not JSON; 1 known keys kept"] * 2
    )
    public = public_jwk(KEY.public_key(), KID)
    assert public["n"][:40] not in warnings_logged.text


def test_a_kid_a_successful_refresh_no_longer_lists_stops_verifying(jwks: JwksStandIn) -> None:
    clock = Clock()
    checking = primed(verifier(jwks, clock))
    jwks.keys = {"next": new_key()}
    clock.now += 3601
    check(checking)  # still in the set we have; the refresh replaces it
    assert checking.signing_keys.settled(10)
    refused = refusal(checking)
    assert (refused.status, refused.message) == (401, NOT_PUBLISHED)
    assert jwks.fetches == 2  # within the cooldown, not fetched again


def test_entries_that_are_no_rs256_signing_key_are_skipped_one_by_one(
    jwks: JwksStandIn,
) -> None:
    public = public_jwk(KEY.public_key(), KID)
    jwks.extra = [
        "not an object",
        EC_KEY,
        {**public, "kid": "for-encryption", "use": "enc"},
        {**public, "kid": "rs512", "alg": "RS512"},
        {**public, "kid": "broken", "n": "!!"},
        {**public, "kid": ""},
        {**public, "kid": KID, "n": "AQAB"},  # a repeated kid: the first one counts
    ]
    checking = primed(verifier(jwks))
    for kid in ("ec", "for-encryption", "rs512", "broken"):
        refused = refusal(checking, kid=kid)
        assert (refused.status, refused.message) == (401, NOT_PUBLISHED)
    assert jwks.fetches == 1
