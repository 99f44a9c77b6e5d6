"""SaaSquatch's webhook signing keys (its JWKS), cached by `kid`, so that the state of the JWKS
endpoint never reaches a webhook whose key is already known.

- A known kid is answered from memory, always. The set is refreshed in the background once it is
  `refresh_seconds` old: a refresh that fails keeps every known key (a WARNING says why, by the
  answer's shape only); one that succeeds replaces the set, so a kid SaaSquatch stops
  publishing stops verifying then, and not before.
- One fetch at a time (whoever needs it shares it) and at most one per `cooldown` seconds,
  whether it worked or not: neither forged kids nor a JWKS outage make us fetch per request.
- An unknown kid waits for the fetch under way, or starts one, for at most `wait` seconds; the
  fetch goes on for the others if it takes longer.
- A fetch is bounded: no redirects, at most `max_bytes`, the body read by a deadline `timeout`
  after the fetch began (not per read: a drip cannot stretch it). What is not a JSON object
  with a `keys` list, or lists no usable key, is a failed fetch. Within the list, an entry that
  is not an RSA key for signatures (`use` absent or `sig`, `alg` absent or RS256) or cannot be
  read is skipped on its own; only the public members (`n`, `e`) are used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import jwt
import requests

from common import strict_json

ALGORITHM = "RS256"
MAX_BYTES = 256 * 1024  # SaaSquatch's JWKS is a few KB
MAX_WAIT_SECONDS = 3.0  # the longest a request waits for a fetch (less when `timeout` is)
CONNECT_SECONDS = 3.05
CHUNK_BYTES = 16 * 1024
HEADERS = {
    "User-Agent": "segment-saasquatch",
    "Accept": "application/json",
    "Accept-Encoding": "identity",  # so `max_bytes` is what we hold, not what a gzip expands to
}
_log = logging.getLogger("segment_saasquatch")


class KeysUnavailable(Exception):
    """The key set cannot be had now (its last fetch failed, or it is still under way) and the
    kid is not among the keys already known."""


class FetchFailed(Exception):
    """One fetch of the key set failed; the message says how, by the answer's shape (a status,
    a size, "not JSON"), never by its content."""


class SigningKeys:
    """The keys published at `url`, by kid (see the module's docstring for the policy)."""

    def __init__(
        self,
        url: str,
        *,
        refresh_seconds: float,
        cooldown: float,
        timeout: float,
        wait: float | None = None,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self._url = url
        self._refresh_seconds = refresh_seconds
        self._cooldown = cooldown
        self._timeout = timeout
        self._wait = min(timeout, MAX_WAIT_SECONDS) if wait is None else wait
        self._max_bytes = max_bytes
        self._clock = clock  # the cache's time (refresh, cooldown); deadlines use real time
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # when the last successful fetch began
        self._tried_at: float | None = None  # when the last fetch began
        self._failed = False  # whether the last fetch that ended failed
        self._running: threading.Event | None = None  # set when the fetch under way ends

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The key SaaSquatch publishes as `kid`; None when the last fetch succeeded and did not
        list it; `KeysUnavailable` when that cannot be known now."""
        now = self._clock()
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                if self._fetched_at is None or now - self._fetched_at >= self._refresh_seconds:
                    self._start(now)  # in the background: this request does not wait
                return key
            running = self._running or self._start(now)
            if running is None:  # fetched a moment ago: do not hammer SaaSquatch
                if self._failed:
                    raise KeysUnavailable("the last fetch failed")
                return None
        if not running.wait(self._wait):
            raise KeysUnavailable("the fetch under way has not ended")
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._failed:
                raise KeysUnavailable("the last fetch failed")
            return key

    def settled(self, timeout: float | None = None) -> bool:
        """Wait for the fetch under way, if any; False if it has not ended within `timeout`
        (tests, and callers that want the newest set)."""
        with self._lock:
            running = self._running
        return running is None or running.wait(timeout)

    def _start(self, now: float) -> threading.Event | None:
        """A new fetch's end, or None when one is under way or the cooldown forbids one; called
        with the lock held."""
        if self._running is not None:
            return None
        if self._tried_at is not None and now - self._tried_at < self._cooldown:
            return None
        self._tried_at = now
        done = self._running = threading.Event()
        fetch = threading.Thread(
            target=self._refresh, args=(now, done), name="jwks-fetch", daemon=True
        )
        try:
            fetch.start()
        except RuntimeError:  # no thread to be had: as a failed fetch, not one forever running
            self._running, self._failed = None, True
            return None
        return done

    def _refresh(self, started: float, done: threading.Event) -> None:
        keys: dict[str, jwt.PyJWK] | None = None
        skipped, why = 0, "failed"
        try:
            keys, skipped = self._fetch()
        except FetchFailed as failure:
            why = str(failure)
        except Exception as error:  # a bug here must not leave the fetch running forever
            why = f"failed ({type(error).__name__})"
        finally:
            with self._lock:
                if keys is not None:
                    self._keys, self._fetched_at = keys, started
                self._failed = keys is None
                self._running = None
                kept = len(self._keys)
            _logged(keys, skipped, why, kept)
            done.set()  # last: whoever waited sees the new state, and its log line

    def _fetch(self) -> tuple[dict[str, jwt.PyJWK], int]:
        deadline = time.monotonic() + self._timeout
        try:
            response = self._session.get(
                self._url,
                headers=HEADERS,
                timeout=(min(self._timeout, CONNECT_SECONDS), self._timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise FetchFailed("no answer within the timeout") from None
        except requests.RequestException as error:
            raise FetchFailed(f"unreachable ({type(error).__name__})") from None
        with response:
            raw = _body(response, deadline, self._max_bytes)
        return _key_set(raw)


def _logged(keys: dict[str, jwt.PyJWK] | None, skipped: int, why: str, kept: int) -> None:
    if keys is None:
        _log.warning(
            "SaaSquatch's signing keys not fetched: %s; %d known keys kept",
            why,
            kept,
            extra={"fields": {"jwks_failure": why, "jwks_keys": kept}},
        )
    else:
        _log.info(
            "SaaSquatch's signing keys fetched: %d (%d entries skipped)",
            len(keys),
            skipped,
            extra={"fields": {"jwks_keys": len(keys), "jwks_skipped": skipped}},
        )


def _body(response: requests.Response, deadline: float, max_bytes: int) -> bytes:
    """The answer's body, by `deadline` and within `max_bytes`, or why not."""
    if response.status_code != 200:
        moved = 300 <= response.status_code < 400
        raise FetchFailed(f"{'redirected' if moved else 'answered'} {response.status_code}")
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchFailed("an encoded answer (identity was asked for)")
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(f"larger than {max_bytes} bytes")
    # The per-read timeout bounds each receive; this bounds them all: at the deadline the
    # socket is shut, and the read blocked on it returns.
    cut = _Cut(response)
    timer = threading.Timer(max(deadline - time.monotonic(), 0.0), cut)
    timer.daemon = True
    timer.start()
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=False):
            size += len(chunk)
            if size > max_bytes:
                raise FetchFailed(f"larger than {max_bytes} bytes")
            if time.monotonic() > deadline:
                break
            chunks.append(chunk)
    except FetchFailed:
        raise
    except Exception as error:
        if not cut.done and time.monotonic() <= deadline:
            raise FetchFailed(f"an unreadable answer ({type(error).__name__})") from None
    finally:
        timer.cancel()
    if cut.done or time.monotonic() > deadline:
        raise FetchFailed("the whole answer took longer than the timeout")
    return b"".join(chunks)


class _Cut:
    """Shuts the answer's socket for reading (once called): a read blocked on it returns. This
    is urllib3's own `HTTPResponse.shutdown`, made for a read blocked in another thread."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.done = False

    def __call__(self) -> None:
        self.done = True
        # Already released or closed; or an older urllib3, where the per-read timeout is all.
        with suppress(AttributeError, ValueError, RuntimeError, OSError):
            self._response.raw.shutdown()


def _key_set(raw: bytes) -> tuple[dict[str, jwt.PyJWK], int]:
    """The usable keys of a JWKS by kid (the first of a repeated kid), and how many entries were
    skipped."""
    try:
        document = strict_json.loads(raw)
    except (strict_json.NotJson, ValueError, RecursionError):
        raise FetchFailed("not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise FetchFailed("not a key set (no keys list)")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        kid, key = _signing_key(entry)
        if key is not None and kid not in keys:
            keys[kid] = key
    if not keys:
        raise FetchFailed(f"no usable {ALGORITHM} key among {len(entries)} entries")
    return keys, len(entries) - len(keys)


def _signing_key(entry: Any) -> tuple[str, jwt.PyJWK | None]:
    if not isinstance(entry, dict):
        return "", None
    kid = entry.get("kid")
    if not (isinstance(kid, str) and kid) or entry.get("kty") != "RSA":
        return "", None
    if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
        return "", None
    public = {"kty": "RSA", "kid": kid, "n": entry.get("n"), "e": entry.get("e")}
    try:
        return kid, jwt.PyJWK(public, algorithm=ALGORITHM)
    except Exception:  # PyJWT's own errors, and cryptography's for numbers that make no key
        return "", None
