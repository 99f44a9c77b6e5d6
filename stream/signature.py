"""SaaSquatch webhook signatures: `X-Hook-JWS-RFC-7797` (RS256, keys from SaaSquatch's JWKS)
and, opted in, the older `X-Hook-Signature` (base64 HMAC-SHA1 keyed with the tenant API key).

The JWS is detached: `HEADER..SIGNATURE`. The signed payload is the raw body, base64url-encoded
in the usual way, or as it is when the header says `"b64": false` (RFC 7797); both are checked
by PyJWT over exactly the bytes received, never a re-serialisation. Only RS256 is accepted, so
`alg: none` and an HS256 token "signed" with the public key are refused before any key is used.
The header is checked and its key found before the body is read; the signature after. The keys
are SaaSquatch's JWKS, cached by kid (`stream.signing_keys`: what is fetched when, and bounds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import requests

from common.http import Refusal, RetryLater
from common.outcomes import Reason

from .signing_keys import ALGORITHM, MAX_BYTES, KeysUnavailable, SigningKeys

JWS_HEADER = "X-Hook-JWS-RFC-7797"
HMAC_HEADER = "X-Hook-Signature"
HEADER_MAX = 8192


def _refused(message: str) -> Refusal:
    return Refusal(Reason.BAD_SIGNATURE, message)


@dataclass(frozen=True, slots=True)
class PendingJws:
    """A JWS whose header is checked and whose key is known: the body is next."""

    protected: str
    signature: str
    key: jwt.PyJWK
    unencoded: bool


class JwsVerifier:
    """Checks `X-Hook-JWS-RFC-7797` against the JWKS at `jwks_url`: keys cached by kid, the set
    refreshed in the background after `cache_seconds`, fetched at most every `refetch_cooldown`
    seconds and within `timeout` (see `stream.signing_keys.SigningKeys` for the rest)."""

    def __init__(
        self,
        jwks_url: str,
        cache_seconds: float,
        refetch_cooldown: float,
        timeout: float,
        *,
        wait: float | None = None,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.signing_keys = SigningKeys(
            jwks_url,
            refresh_seconds=cache_seconds,
            cooldown=refetch_cooldown,
            timeout=timeout,
            wait=wait,
            max_bytes=max_bytes,
            clock=clock,
            session=session,
        )

    def prepare(self, header: str) -> PendingJws:
        """The header's JWS with its key, or a 401 (503 when the keys cannot be fetched)."""
        if len(header) > HEADER_MAX:
            raise _refused(f"{JWS_HEADER} is too long")
        parts = header.strip().split(".")
        if len(parts) != 3 or parts[1] != "" or not parts[0] or not parts[2]:
            raise _refused(f"{JWS_HEADER} is not a detached JWS (HEADER..SIGNATURE)")
        try:
            fields = jwt.get_unverified_header(f"{parts[0]}..{parts[2]}")
        except jwt.PyJWTError:
            raise _refused(f"{JWS_HEADER} has an unreadable header") from None
        if fields.get("alg") != ALGORITHM:
            raise _refused(f"{JWS_HEADER} must be signed with {ALGORITHM}")
        kid = fields.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refused(f"{JWS_HEADER} names no key (kid)")
        try:
            key = self.signing_keys.get(kid)
        except KeysUnavailable:
            raise RetryLater(
                Reason.SIGNING_KEYS_UNAVAILABLE,
                "SaaSquatch's signing keys cannot be fetched, retry later",
            ) from None
        if key is None:
            raise _refused(f"{JWS_HEADER} is signed with a key SaaSquatch does not publish")
        return PendingJws(parts[0], parts[2], key, fields.get("b64") is False)

    @staticmethod
    def verify(pending: PendingJws, body: bytes) -> None:
        """A 401 unless the signature is the body's."""
        try:
            if pending.unencoded:
                token = f"{pending.protected}..{pending.signature}"
                jwt.api_jws.decode_complete(
                    token, pending.key, algorithms=[ALGORITHM], detached_payload=body
                )
            else:
                payload = base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")
                token = f"{pending.protected}.{payload}.{pending.signature}"
                jwt.api_jws.decode_complete(token, pending.key, algorithms=[ALGORITHM])
        except jwt.PyJWTError:
            raise _refused(f"{JWS_HEADER} does not match the body") from None


def check_hmac(api_key: str, header: str, body: bytes) -> None:
    """A 401 unless `header` is base64(HMAC-SHA1(body, api_key)), compared in constant time."""
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _refused(f"{HMAC_HEADER} is not base64") from None
    expected = hmac.new(api_key.encode("utf-8"), body, hashlib.sha1).digest()
    if not hmac.compare_digest(given, expected):
        raise _refused(f"{HMAC_HEADER} does not match the body")
