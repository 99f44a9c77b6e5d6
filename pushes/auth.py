"""Checks the Google-signed OIDC token that a Pub/Sub push subscription sends.

google-auth verifies the signature, expiry and audience (`id_token.verify_token`); this module
adds the issuer and service-account checks, and keeps Google's certificates between requests
(google-auth would fetch them for every push).

Behind Cloud Run's IAM check the token arrives with its signature replaced by
`SIGNATURE_REMOVED_BY_GOOGLE`: Cloud Run has verified signature, expiry and audience before the
request reached us, and strips the signature so the token cannot be replayed. There, with
`signature_checked_by_cloud_run`, the claims are checked without a signature: who sent the push
(`email`) is what Cloud Run's check does not decide, since any principal with invoker rights
passes it. Anywhere else a token without its signature is worthless and refused.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import flask
import google.auth.exceptions
import google.auth.jwt
import google.auth.transport
import google.auth.transport.requests
import requests
from google.oauth2 import id_token

from common.deadlines import BodyDeadlines
from common.http import (
    Refusal,
    RetryLater,
    bearer_token,
    before_the_body,
    read_body,
    require_method,
)
from common.outcomes import Reason

from .envelope import MAX_PUSH_BYTES, PushEnvelope, parse_envelope
from .settings import PushSettings

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_SECONDS = 10
DEFAULT_CERTS_SECONDS = 3600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")
CHALLENGE = "Bearer"
REQUIRED = "send the Google-signed OIDC token of the push subscription"
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"


def _unauthorized(message: str) -> Refusal:
    return Refusal(Reason.WRONG_TOKEN, message, {"WWW-Authenticate": CHALLENGE})


class _CachedCerts(google.auth.transport.Request):
    """A google-auth transport that remembers the certificates for their `max-age`.

    `forget()` drops them so a key that Google just rotated in is found; at most once every
    `min_refresh_seconds`, so forged tokens with made-up key ids cannot make us hammer Google.
    """

    def __init__(
        self,
        session: requests.Session,
        timeout: float,
        min_refresh_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._inner = google.auth.transport.requests.Request(session)
        self._timeout = timeout
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[Any, float]] = {}
        self._forgotten_at: float | None = None

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._cached.get(url)
            if method == "GET" and hit is not None and hit[1] > now:
                return hit[0]
        response = self._inner(
            url, method, body, headers, timeout=timeout or self._timeout, **kwargs
        )
        if method == "GET" and response.status == 200:
            with self._lock:
                self._cached[url] = (response, now + _max_age(response.headers))
        return response

    def forget(self) -> bool:
        """Drop the cached certificates; False when that was done too recently."""
        now = self._clock()
        with self._lock:
            if self._forgotten_at is not None and now - self._forgotten_at < self._min_refresh:
                return False
            self._forgotten_at = now
            self._cached.clear()
            return True


def _max_age(headers: Mapping[str, str]) -> float:
    match = _MAX_AGE.search(headers.get("Cache-Control", "") or headers.get("cache-control", ""))
    return float(match.group(1)) if match else DEFAULT_CERTS_SECONDS


class PushVerifier:
    """Verifies `Authorization: Bearer <Google OIDC token>` on each push request."""

    def __init__(
        self,
        audience: str,
        service_account: str = "",
        certs_url: str = "",
        session: requests.Session | None = None,
        timeout: float = 5.0,
        min_refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        signature_checked_by_cloud_run: bool = False,
    ) -> None:
        self._audience = audience
        self._service_account = service_account
        self._signature_checked_by_cloud_run = signature_checked_by_cloud_run
        self._clock = clock
        self._certs_url = certs_url or GOOGLE_CERTS_URL
        self._request = _CachedCerts(
            session or requests.Session(), timeout, min_refresh_seconds, clock
        )

    def verify(self, authorization: str | None) -> Mapping[str, Any]:
        """The token's claims, or a `Refusal`: 401 (no valid token), 403 (a valid token of
        another sender) or 503 (Google's certificates unavailable: Pub/Sub retries)."""
        token = bearer_token(authorization, CHALLENGE, required=REQUIRED)
        if token.rpartition(".")[2] == SIGNATURE_REMOVED:
            claims = self._claims_checked_by_cloud_run(token)
        else:
            claims = self._decode(token)
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise _unauthorized("the token was not issued by Google")
        if self._service_account and (
            claims.get("email") != self._service_account or claims.get("email_verified") is not True
        ):
            message = "the token belongs to another service account"
            raise Refusal(Reason.WRONG_SERVICE_ACCOUNT, message)
        return claims

    def _claims_checked_by_cloud_run(self, token: str) -> Mapping[str, Any]:
        """The claims of a token whose signature Cloud Run checked and removed: audience and
        time are checked again (cheap, and a wrong audience means a wrong subscription)."""
        if not self._signature_checked_by_cloud_run:
            raise _unauthorized(
                "the token's signature was removed (Cloud Run's IAM check does that): behind "
                "it, set PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN=true"
            )
        try:
            claims = google.auth.jwt.decode(token, verify=False)
        except ValueError:
            raise _unauthorized("invalid token: malformed") from None
        audiences = claims.get("aud")
        if self._audience not in (audiences if isinstance(audiences, list) else [audiences]):
            raise _unauthorized("invalid token: wrong audience")
        now = self._clock()
        expires, issued = claims.get("exp"), claims.get("iat")
        if not all(_is_time(value) for value in (expires, issued)):
            # Not a number of seconds: `1e999` or NaN would never expire.
            raise _unauthorized("invalid token: malformed")
        if expires + CLOCK_SKEW_SECONDS < now:
            raise _unauthorized("invalid token: expired")
        if issued - CLOCK_SKEW_SECONDS > now:
            raise _unauthorized("invalid token: not valid yet")
        return claims

    def _decode(self, token: str) -> Mapping[str, Any]:
        for attempt in range(2):
            try:
                return id_token.verify_token(
                    token,
                    self._request,
                    audience=self._audience,
                    certs_url=self._certs_url,
                    clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
                )
            except google.auth.exceptions.TransportError:
                message = "Google's token certificates are unavailable"
                raise RetryLater(Reason.PUSH_CERTS_UNAVAILABLE, message) from None
            except Exception as error:
                unknown_key = "Certificate for key id" in str(error)
                if attempt == 0 and unknown_key and self._request.forget():
                    continue  # Google may have rotated its keys since we cached them
                raise _unauthorized(f"invalid token: {_why(error)}") from None
        raise _unauthorized("invalid token")


def _is_time(value: Any) -> bool:
    """A JWT time (NumericDate): a finite number, not a bool or a string."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# google-auth's messages, shortened for the answer and the log.
_WHY = (
    ("expired", "expired"),
    ("too early", "not valid yet"),
    ("audience", "wrong audience"),
    ("signature", "bad signature"),
    ("certificate for key id", "unknown signing key"),
)


def _why(error: Exception) -> str:
    text = str(error).lower()
    return next((label for needle, label in _WHY if needle in text), "malformed")


def push_verifier(settings: PushSettings) -> PushVerifier | None:
    """The verifier the settings ask for; None when Cloud Run checks the token before the
    request reaches us (see the docs)."""
    if not settings.PUSH_AUDIENCE:
        return None
    return PushVerifier(
        settings.PUSH_AUDIENCE,
        settings.PUSH_SERVICE_ACCOUNT,
        settings.PUSH_CERTS_URL,
        signature_checked_by_cloud_run=settings.PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN,
    )


def read_push(
    request: flask.Request, verifier: PushVerifier | None, deadlines: BodyDeadlines
) -> PushEnvelope:
    """The envelope of an authenticated push (token checked before the body is read), or a
    refusal: what every push consumer does first."""
    with before_the_body():
        require_method(request.method)
        if verifier is not None:
            verifier.verify(request.headers.get("Authorization"))
    raw = read_body(request, MAX_PUSH_BYTES, "a Pub/Sub push envelope", deadlines)
    return parse_envelope(raw)
