"""How a sender presents ingest's token, and which tokens are accepted (in constant time).

Two forms carry the same token: `Authorization: Bearer <token>` (a header set in Segment's
Webhooks destinations) and HTTP Basic with the token as user name and an empty password (how
Segment's SDKs and HTTP API send a write key, so an SDK's write key is ingest's token).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence

from common.http import OWS, Refusal, bearer_token
from common.outcomes import Reason
from common.secrets import CachePolicy, Fetch, SecretCache

REALM = 'realm="segment-saasquatch"'
CHALLENGE = f'Bearer {REALM}, Basic {REALM}, charset="UTF-8"'
REQUIRED = "send 'Authorization: Bearer <token>', or Basic with the token as user name"


def presented_token(header: str | None) -> str:
    """The token of a Bearer or Basic `Authorization` header, or a 401 saying what is wrong.

    Nothing of the header's value is ever repeated in the answer (or the log line it makes).
    """
    scheme, _, credentials = (header or "").strip(OWS).partition(" ")
    if scheme.lower() == "basic":
        return _basic_user(credentials.strip(OWS))
    return bearer_token(header, CHALLENGE, REQUIRED, schemes="Bearer or Basic")


def _basic_user(credentials: str) -> str:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _unauthorized("Basic credentials are not base64 of 'user:password'") from None
    user, colon, password = decoded.partition(":")
    if not colon or password or not user:
        raise _unauthorized(
            "Basic credentials: put the token in the user name and leave the password empty"
        )
    return user


def _unauthorized(message: str) -> Refusal:
    return Refusal(Reason.MALFORMED_CREDENTIALS, message, {"WWW-Authenticate": CHALLENGE})


def matches_any(presented: str, accepted: Sequence[str]) -> bool:
    """Compare against every accepted value in constant time (no early exit on a match)."""
    given = presented.encode("utf-8", "surrogateescape")
    results = [hmac.compare_digest(given, value.encode("utf-8")) for value in accepted]
    return any(results)


class TokenVerifier:
    """Accepts the tokens given directly plus every listed Secret Manager version.

    An unknown token triggers one early refresh, so a rotation takes effect without a redeploy.
    `SecretUnavailable` when Secret Manager cannot be read and nothing is cached.
    """

    def __init__(
        self,
        direct_tokens: Sequence[str],
        secret_versions: Sequence[str],
        fetch: Fetch,
        policy: CachePolicy,
    ) -> None:
        self._direct = list(direct_tokens)
        self._secrets = SecretCache(secret_versions, fetch, policy) if secret_versions else None

    def verify(self, presented: str) -> bool:
        if matches_any(presented, self._direct):
            return True
        if self._secrets is None:
            return False
        if matches_any(presented, self._secrets.get()):
            return True
        return matches_any(presented, self._secrets.get(force=True))
