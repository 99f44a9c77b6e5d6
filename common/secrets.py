"""Secret Manager access: one version's text, several cached together, refreshed on rotation."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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
        return response.payload.data.decode("utf-8").strip(" \t\r\n")  # echo's newline

    return fetch


# Answers that say a version cannot be read at all (destroyed or disabled: FAILED_PRECONDITION,
# which the REST transport raises as BadRequest; missing; no access), as opposed to Secret Manager
# being slow or down. Matched by class name along the exception's classes: they come from
# google-api-core, which is imported on first use only.
GONE = frozenset({"NotFound", "BadRequest", "Forbidden"})
_log = logging.getLogger("segment_saasquatch")


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long what was read from Secret Manager is trusted (see `SecretCache`): re-read after
    `cache_seconds`, forced re-reads at most every `min_refresh_seconds`, a value kept through an
    outage for at most `max_stale_seconds`. One object, built once from the settings
    (`ServiceSettings.cache_policy`) and handed to every cache."""

    cache_seconds: float = 300.0
    min_refresh_seconds: float = 5.0
    max_stale_seconds: float = 3600.0
    clock: Callable[[], float] = field(default=time.monotonic)


class SecretCache:
    """Secret Manager versions, each read on its own and cached.

    - A version that cannot be read at all (disabled, destroyed, missing) is dropped at once,
      with a WARNING naming it (never its value); the others keep working. That is how a leaked
      token is revoked: disable its version.
    - A version that fails for a while (Secret Manager slow or down) keeps its last value, for at
      most `max_stale_seconds`; after that it counts as unknown.
    - Values are re-read after `cache_seconds`, in the background: a request that a cached value
      can answer never waits for Secret Manager. `get(force=True)` (an unknown token, a rejected
      key) waits for a re-read, at most once every `min_refresh_seconds`, so a burst cannot
      hammer Secret Manager.
    - `SecretUnavailable` when nothing can be served and some version's state is unknown.
    """

    def __init__(self, versions: Sequence[str], fetch: Fetch, policy: CachePolicy) -> None:
        self._versions = list(versions)
        self._fetch = fetch
        self._cache_seconds = policy.cache_seconds
        self._min_refresh = policy.min_refresh_seconds
        self._max_stale = policy.max_stale_seconds
        self._clock = policy.clock
        self._lock = threading.Lock()
        self._read: dict[str, tuple[str, float]] = {}  # version -> (value, when it was read)
        self._gone: set[str] = set()
        self._refreshed_at: float | None = None  # last re-read in which no version failed
        self._tried_at: float | None = None
        self._running: threading.Event | None = None  # set when the re-read under way ends

    def get(self, force: bool = False) -> list[str]:
        """The values that can be served, in the order of the versions (empty ones left out)."""
        now = self._clock()
        with self._lock:
            fresh = (
                self._refreshed_at is not None and now - self._refreshed_at < self._cache_seconds
            )
            if fresh and not force:
                return self._available(now)
            running, start = self._running, False
            if running is None:
                failed = self._tried_at is not None and self._tried_at != self._refreshed_at
                recent = self._tried_at is not None and now - self._tried_at < self._min_refresh
                if recent and (force or failed):
                    return self._available(now)  # tried a moment ago: do not hammer
                running = self._running = threading.Event()
                self._tried_at, start = now, True
            servable = bool(self._available(now, strict=False))
        if start and servable and not force:
            threading.Thread(target=self._refresh, args=(running,), daemon=True).start()
        elif start:
            self._refresh(running)
        elif force or not servable:
            running.wait()
        with self._lock:
            return self._available(self._clock())

    def _refresh(self, done: threading.Event) -> None:
        """Read every version; called by one thread at a time."""
        read: dict[str, tuple[str, float]] = {}
        gone: set[str] = set()
        failed = False
        try:
            for version in self._versions:
                try:
                    read[version] = (self._fetch(version), self._clock())
                except Exception as error:
                    if GONE.intersection(kind.__name__ for kind in type(error).__mro__):
                        gone.add(version)
                    else:
                        failed = True
            with self._lock:
                for version in sorted(gone - self._gone):
                    _log.warning(
                        "secret version dropped: %s",
                        version,
                        extra={"fields": {"secret_version": version, "outcome": "dropped"}},
                    )
                self._gone = gone
                kept = {v: self._read[v] for v in self._read if v not in read and v not in gone}
                self._read = {**kept, **read}
                if not failed:
                    self._refreshed_at = self._tried_at
        finally:
            with self._lock:
                self._running = None
            done.set()

    def settled(self) -> None:
        """Wait for a re-read under way, if any (tests, and callers that want the newest)."""
        with self._lock:
            running = self._running
        if running is not None:
            running.wait()

    def _available(self, now: float, strict: bool = True) -> list[str]:
        values, unknown = [], False
        for version in self._versions:
            entry = self._read.get(version)
            if entry is not None and now - entry[1] <= self._max_stale:
                if entry[0]:
                    values.append(entry[0])
            elif version not in self._gone:
                unknown = True
        if strict and not values and unknown:
            raise SecretUnavailable("Secret Manager could not be read and nothing is cached")
        return values


class SecretValue:
    """One secret (the SaaSquatch API key) from Secret Manager, cached; `refresh` says whether a
    forced re-read found a different value, so a caller can resend after a rotation."""

    def __init__(self, version: str, fetch: Fetch, policy: CachePolicy) -> None:
        self._cache = SecretCache([version], fetch, policy)

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


class Secret(Protocol):
    """Where a key comes from (an API key, a write key); `refresh` re-reads it and says whether
    it changed, so a client can resend once after a rotation."""

    def value(self) -> str: ...

    def refresh(self) -> bool: ...


class FixedSecret:
    """A secret given directly (local runs, tests): the same `value`/`refresh` as `SecretValue`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def value(self) -> str:
        return self._value

    def refresh(self) -> bool:
        return False


def configured_secret(
    direct: str, version: str, endpoint: str, policy: CachePolicy
) -> Secret | None:
    """The secret a setting pair names: the value itself (`direct`), else its Secret Manager
    `version` read through `endpoint` and cached; None when neither is set."""
    if direct:
        return FixedSecret(direct)
    if not version:
        return None
    return SecretValue(version, secret_manager_fetch(endpoint), policy)
