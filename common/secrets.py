"""Secret Manager access: one version's text, several cached together, refreshed on rotation."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence

Fetch = Callable[[str], str]


class SecretUnavailable(Exception):
    """Secret Manager could not be read and nothing usable is cached."""


def secret_manager_fetch(endpoint: str = "", timeout: float = 5.0) -> Fetch:
    """A function reading one secret version's text through the official client.

    With `endpoint` (tests, local stand-ins) the client uses the REST transport and anonymous
    credentials; otherwise the default transport and Application Default Credentials.
    """

    @functools.cache
    def _client():  # imported and created on first use, so starting a service stays fast
        from google.cloud import secretmanager

        if not endpoint:
            return secretmanager.SecretManagerServiceClient()
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return secretmanager.SecretManagerServiceClient(
            transport="rest",
            client_options=ClientOptions(api_endpoint=endpoint),
            credentials=AnonymousCredentials(),
        )

    def fetch(version: str) -> str:
        # One attempt with a short timeout: the verifier decides when to try again.
        response = _client().access_secret_version(name=version, retry=None, timeout=timeout)
        return response.payload.data.decode("utf-8").strip()

    return fetch


class SecretCache:
    """Secret Manager versions read together and cached for `cache_seconds`.

    `get(force=True)` re-reads early, but at most once every `min_refresh_seconds`, so a burst of
    unknown tokens or rejected keys cannot hammer Secret Manager. When it is down, the cached
    values keep being served; with nothing cached, `SecretUnavailable`.
    """

    def __init__(
        self,
        versions: Sequence[str],
        fetch: Fetch,
        cache_seconds: float,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._versions = list(versions)
        self._fetch = fetch
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: list[str] = []
        self._fetched_at: float | None = None
        self._tried_at: float | None = None

    def get(self, force: bool = False) -> list[str]:
        """The non-empty values, in the order of the versions."""
        now = self._clock()
        with self._lock:
            fresh = self._fetched_at is not None and now - self._fetched_at < self._cache_seconds
            if fresh and not force:
                return self._cached
            last_failed = self._tried_at is not None and self._tried_at != self._fetched_at
            recently_tried = self._tried_at is not None and now - self._tried_at < self._min_refresh
            if recently_tried and (force or last_failed):
                return self._available()  # tried a moment ago: do not hammer Secret Manager
            self._tried_at = now
            try:
                values = [self._fetch(version) for version in self._versions]
            except Exception:
                return self._available()
            self._cached = [value for value in values if value]
            self._fetched_at = now
            return self._available()

    def _available(self) -> list[str]:
        if self._fetched_at is None:
            raise SecretUnavailable("Secret Manager could not be read and nothing is cached")
        return self._cached


class SecretValue:
    """One secret (the SaaSquatch API key) from Secret Manager, cached; `refresh` says whether a
    forced re-read found a different value, so a caller can resend after a rotation."""

    def __init__(
        self,
        version: str,
        fetch: Fetch,
        cache_seconds: float,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache = SecretCache([version], fetch, cache_seconds, min_refresh_seconds, clock)

    def value(self) -> str:
        values = self._cache.get()
        if not values:
            raise SecretUnavailable("the secret is empty")
        return values[0]

    def refresh(self) -> bool:
        try:
            before = self._cache.get()
            return self._cache.get(force=True) != before
        except SecretUnavailable:
            return False
