"""SaaSquatch webhook signatures, checked against a locally generated RSA key served by a JWKS
stand-in: what SaaSquatch signs passes, and every forgery the issue names is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from common.http import EarlyAnswer
from stream.signature import JwsVerifier, check_hmac

from ..support.webhook_signing import (
    KID,
    JwksStandIn,
    detached_jws,
    hmac_signature,
    new_key,
    unsigned_jws,
)

BODY = (
    b'{"id":"5d96459c8bf319739fa55930","type":"reward.created","created":1467155436449,"data":{}}'
)
KEY = new_key()


@pytest.fixture
def jwks() -> Iterator[JwksStandIn]:
    with JwksStandIn() as stand_in:
        stand_in.keys[KID] = KEY
        yield stand_in


def verifier(jwks: JwksStandIn, cooldown: float = 0.0) -> JwsVerifier:
    return JwsVerifier(jwks.url, cache_seconds=3600, refetch_cooldown=cooldown, timeout=2)


def check(jwks_verifier: JwsVerifier, header: str, body: bytes = BODY) -> None:
    jwks_verifier.verify(jwks_verifier.prepare(header), body)


def refusal(jwks_verifier: JwsVerifier, header: str, body: bytes = BODY) -> EarlyAnswer:
    with pytest.raises(EarlyAnswer) as caught:
        check(jwks_verifier, header, body)
    return caught.value


@pytest.mark.parametrize("unencoded", [False, True], ids=["base64url payload", "b64 false"])
def test_a_webhook_signed_by_saasquatch_passes(jwks: JwksStandIn, unencoded: bool) -> None:
    check(verifier(jwks), detached_jws(BODY, KEY, unencoded=unencoded))


def test_keys_are_cached_by_kid(jwks: JwksStandIn) -> None:
    checking = verifier(jwks)
    for _ in range(3):
        check(checking, detached_jws(BODY, KEY))
    assert jwks.fetches == 1


@pytest.mark.parametrize("unencoded", [False, True], ids=["base64url payload", "b64 false"])
def test_a_changed_body_is_refused(jwks: JwksStandIn, unencoded: bool) -> None:
    header = detached_jws(BODY, KEY, unencoded=unencoded)
    refused = refusal(verifier(jwks), header, BODY.replace(b"reward", b"rewarD"))
    assert (refused.status, refused.reason, refused.message) == (
        401,
        "bad_signature",
        "X-Hook-JWS-RFC-7797 does not match the body",
    )


def test_a_signature_by_another_key_under_the_same_kid_is_refused(jwks: JwksStandIn) -> None:
    refused = refusal(verifier(jwks), detached_jws(BODY, new_key()))
    assert refused.message == "X-Hook-JWS-RFC-7797 does not match the body"


def test_an_unknown_kid_refetches_the_keys_once_then_is_refused(jwks: JwksStandIn) -> None:
    checking = verifier(jwks, cooldown=3600)
    check(checking, detached_jws(BODY, KEY))  # the first fetch
    refused = refusal(checking, detached_jws(BODY, KEY, kid="rotated"))
    assert refused.message == "X-Hook-JWS-RFC-7797 is signed with a key SaaSquatch does not publish"
    assert jwks.fetches == 1  # within the cooldown: no refetch for a kid nobody publishes
    again = verifier(jwks, cooldown=0)
    check(again, detached_jws(BODY, KEY))
    jwks.keys["rotated"] = KEY  # SaaSquatch rotated its key: one refetch finds it
    check(again, detached_jws(BODY, KEY, kid="rotated"))
    assert jwks.fetches == 3


def test_an_unknown_kid_causes_exactly_one_refetch(jwks: JwksStandIn) -> None:
    checking = verifier(jwks, cooldown=0)
    check(checking, detached_jws(BODY, KEY))
    before = jwks.fetches
    refusal(checking, detached_jws(BODY, KEY, kid="nobody"))
    assert jwks.fetches == before + 1


@pytest.mark.parametrize(
    ("signature", "says"),
    [("", "is not a detached JWS (HEADER..SIGNATURE)"), ("c2ln", "must be signed with RS256")],
    ids=["no signature", "any signature"],
)
def test_alg_none_is_refused_before_any_key_is_fetched(
    jwks: JwksStandIn, signature: str, says: str
) -> None:
    refused = refusal(verifier(jwks), unsigned_jws() + signature)
    assert refused.message == f"X-Hook-JWS-RFC-7797 {says}"
    assert jwks.fetches == 0


def test_hs256_keyed_with_the_public_key_is_refused(jwks: JwksStandIn) -> None:
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    # PyJWT itself refuses to HMAC with a PEM key, so the forgery is made by hand.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    protected = b64(json.dumps({"alg": "HS256", "kid": KID}).encode())
    signing_input = f"{protected}.{b64(BODY)}".encode()
    forged = b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    refused = refusal(verifier(jwks), f"{protected}..{forged}")
    assert refused.message == "X-Hook-JWS-RFC-7797 must be signed with RS256"


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("garbage", "is not a detached JWS (HEADER..SIGNATURE)"),
        ("a.b.c", "is not a detached JWS (HEADER..SIGNATURE)"),
        ("!!!..sig", "has an unreadable header"),
        ("x" * 9000, "is too long"),
    ],
)
def test_a_malformed_header_is_refused_without_echoing_it(
    jwks: JwksStandIn, header: str, says: str
) -> None:
    refused = refusal(verifier(jwks), header)
    assert refused.message == f"X-Hook-JWS-RFC-7797 {says}"
    assert header[:20] not in refused.message


def test_no_kid_is_refused(jwks: JwksStandIn) -> None:
    token = jwt.api_jws.encode(BODY, KEY, algorithm="RS256")
    protected, _, signature = token.split(".")
    refused = refusal(verifier(jwks), f"{protected}..{signature}")
    assert refused.message == "X-Hook-JWS-RFC-7797 names no key (kid)"


def test_keys_that_cannot_be_fetched_are_a_503(jwks: JwksStandIn) -> None:
    jwks.failing = True
    refused = refusal(verifier(jwks), detached_jws(BODY, KEY))
    assert (refused.status, refused.reason) == (503, "signing_keys_unavailable")


API_KEY = "TEST_tenant_api_key"


def test_hmac_over_the_body_with_the_api_key_passes() -> None:
    check_hmac(API_KEY, hmac_signature(API_KEY, BODY), BODY)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (hmac_signature("another key", BODY), "does not match the body"),
        (hmac_signature(API_KEY, BODY + b" "), "does not match the body"),
        ("not base64!", "is not base64"),
        ("", "does not match the body"),
    ],
)
def test_a_wrong_hmac_is_refused(header: str, says: str) -> None:
    with pytest.raises(EarlyAnswer) as caught:
        check_hmac(API_KEY, header, BODY)
    assert (caught.value.status, caught.value.message) == (401, f"X-Hook-Signature {says}")
