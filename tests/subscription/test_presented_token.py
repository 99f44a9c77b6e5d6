"""How a sender presents ingest's token: Bearer, or Basic with the token as user name (Segment's
SDKs and HTTP API). Every refusal is a 401 naming what is wrong, never repeating the header."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.http import Refusal
from subscription.credentials import CHALLENGE, presented_token


def basic(user_and_password: str) -> str:
    return "Basic " + base64.b64encode(user_and_password.encode()).decode()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer t0ken", "t0ken"),
        ("bearer   t0ken  ", "t0ken"),
        (basic("t0ken:"), "t0ken"),
        ("BASIC " + base64.b64encode(b"t\xc3\xb6ken:").decode(), "töken"),
    ],
)
def test_the_token_from_bearer_or_basic(header: str, token: str) -> None:
    assert presented_token(header) == token


REFUSED = {
    None: "missing Authorization header",
    "": "missing Authorization header",
    "Bearer ": "empty bearer token",
    "Basic !!!": "Basic credentials are not base64",
    "Basic " + base64.b64encode(b"\xff\xfe:").decode(): "Basic credentials are not base64",
    basic("t0ken"): "put the token in the user name",
    basic("t0ken:password"): "put the token in the user name",
    basic(":t0ken"): "put the token in the user name",
    "Digest username=t0ken": "unsupported authorization scheme",
    "s3cr3t-Token-ABC": "unsupported authorization scheme",
}


@pytest.mark.parametrize("header", list(REFUSED), ids=repr)
def test_refusals_say_what_is_wrong(header: str | None) -> None:
    with pytest.raises(Refusal) as refused:
        presented_token(header)
    assert refused.value.status == 401
    assert REFUSED[header] in refused.value.message
    assert refused.value.headers == {"WWW-Authenticate": CHALLENGE}


def test_the_challenge_offers_both_schemes() -> None:
    assert CHALLENGE.startswith("Bearer realm=")
    assert ", Basic realm=" in CHALLENGE


def refusal_messages(headers: list[str | None]) -> set[str]:
    messages = set()
    for header in headers:
        with pytest.raises(Refusal) as refused:
            presented_token(header)
        messages.add(refused.value.message)
    return messages


# Every text a refusal can carry, each made from a header that shares nothing with the ones below.
FIXED_MESSAGES = refusal_messages(list(REFUSED))


@given(st.text(min_size=4).filter(lambda s: s.strip() and " " not in s.strip()))
def test_no_refusal_repeats_any_part_of_the_credential(secret: str) -> None:
    """The answer is one of the fixed texts whatever the header holds, so nothing of it is echoed.

    (Checking `secret not in message` instead fails on a secret such as "name", which the fixed
    text "put the token in the user name" happens to contain.)
    """
    encoded = base64.b64encode(secret.encode("utf-8", "surrogatepass")).decode()
    for header in (secret, f"Basic {secret}", f"Token {secret}", f"Basic {encoded}"):
        try:
            presented_token(header)
        except Refusal as refusal:
            assert refusal.message in FIXED_MESSAGES
