"""Which bearer tokens ingest accepts, compared in constant time."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence

from common.secrets import Fetch, SecretCache


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
        cache_seconds: float,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._direct = list(direct_tokens)
        self._secrets = (
            SecretCache(secret_versions, fetch, cache_seconds, min_refresh_seconds, clock)
            if secret_versions
            else None
        )

    def verify(self, presented: str) -> bool:
        if matches_any(presented, self._direct):
            return True
        if self._secrets is None:
            return False
        if matches_any(presented, self._secrets.get()):
            return True
        return matches_any(presented, self._secrets.get(force=True))
