"""Which bearer tokens ingest accepts: direct ones, and Secret Manager versions read through the
real client (REST) from a local stand-in; compared in constant time."""

from __future__ import annotations

import hmac
import logging
import threading

import pytest

from common.secrets import CachePolicy, SecretCache, SecretUnavailable, secret_manager_fetch
from subscription import credentials
from subscription.credentials import TokenVerifier, matches_any

from ..factories import identify
from ..support.functions import MakeIngest
from ..support.secret_manager_standin import SecretManagerStandIn

LATEST = "projects/p/secrets/segment-token/versions/latest"
PINNED = "projects/p/secrets/segment-token/versions/3"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_secrets(secret_manager: SecretManagerStandIn) -> SecretManagerStandIn:
    """Secret Manager holding two versions of the token (one with `echo`'s newline)."""
    secret_manager.values = {LATEST: "token-v4\n", PINNED: "token-v3"}
    return secret_manager


def verifier(secret_manager: SecretManagerStandIn, clock: Clock, **kwargs: float) -> TokenVerifier:
    return TokenVerifier(
        [],
        [LATEST, PINNED],
        secret_manager_fetch(secret_manager.endpoint, timeout=2),
        CachePolicy(
            cache_seconds=kwargs.get("cache_seconds", 300),
            min_refresh_seconds=kwargs.get("min_refresh_seconds", 5),
            clock=clock,
        ),
    )


def test_every_listed_version_is_accepted_and_trailing_newlines_ignored(
    token_secrets: SecretManagerStandIn,
) -> None:
    check = verifier(token_secrets, Clock())
    assert check.verify("token-v4")
    assert check.verify("token-v3")
    assert not check.verify("token-v2")
    assert {path.split("?")[0] for path in token_secrets.requests} == {
        f"/v1/{LATEST}:access",
        f"/v1/{PINNED}:access",
    }


def test_rotation_takes_effect_after_the_cache_expires(
    token_secrets: SecretManagerStandIn,
) -> None:
    clock = Clock()
    check = verifier(token_secrets, clock, min_refresh_seconds=1e9)  # no early refresh
    assert check.verify("token-v4")
    token_secrets.values[LATEST] = "token-v5"
    assert not check.verify("token-v5"), "still cached, early refresh disabled"
    clock.now += 301
    assert check.verify("token-v5")
    assert not check.verify("token-v4"), "the old token is refused after rotation"


def test_an_unknown_token_refreshes_once_but_not_more_than_every_few_seconds(
    token_secrets: SecretManagerStandIn,
) -> None:
    clock = Clock()
    check = verifier(token_secrets, clock)
    assert check.verify("token-v4")
    token_secrets.values[LATEST] = "token-v5"
    clock.now += 10
    assert check.verify("token-v5"), "a new token is picked up without waiting for the cache"
    clock.now += 10
    fetches = len(token_secrets.requests)
    for _ in range(20):
        assert not check.verify("attacker-guess")
    assert len(token_secrets.requests) == fetches + 2, "one refresh (two versions) for 20 guesses"


def test_secret_manager_down_keeps_cached_tokens_working(
    token_secrets: SecretManagerStandIn,
) -> None:
    clock = Clock()
    check = verifier(token_secrets, clock)
    assert check.verify("token-v4")
    token_secrets.down = True
    clock.now += 1000  # cache expired, refresh fails
    assert check.verify("token-v4")
    assert not check.verify("wrong")


def test_secret_manager_down_with_nothing_cached_is_unavailable(
    token_secrets: SecretManagerStandIn,
) -> None:
    token_secrets.down = True
    with pytest.raises(SecretUnavailable):
        verifier(token_secrets, Clock()).verify("token-v4")


def test_ingest_uses_token_secrets_and_answers_503_when_it_cannot(
    token_secrets: SecretManagerStandIn, make_ingest: MakeIngest
) -> None:
    env = {"INGEST_TOKEN": "", "INGEST_TOKEN_SECRET": f"{LATEST},{PINNED}"}
    client = make_ingest(SECRET_MANAGER_ENDPOINT=token_secrets.endpoint, **env)
    good = {"Authorization": "Bearer token-v3"}
    assert client.post("/", json=identify(), headers=good).status_code == 200
    assert (
        client.post("/", json=identify(), headers={"Authorization": "Bearer x"}).status_code == 401
    )

    token_secrets.down = True
    cold = make_ingest(SECRET_MANAGER_ENDPOINT=token_secrets.endpoint, **env)
    response = cold.post("/", json=identify(), headers=good)
    assert response.status_code == 503, "Segment must retry, not drop, while secrets are down"
    assert response.get_json() == {
        "error": "token store unavailable, retry later",
        "reason": "token_store_unavailable",
    }


def test_constant_time_comparison_checks_every_token(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def counting(given: bytes, accepted: bytes) -> bool:
        compared.append((given, accepted))
        return compare(given, accepted)

    monkeypatch.setattr(credentials.hmac, "compare_digest", counting)
    assert matches_any("a", ["a", "b", "c"])
    assert [accepted for _, accepted in compared] == [b"a", b"b", b"c"], "no early exit"
    compared.clear()
    assert not matches_any("a\udcff", ["a", "b"])
    assert len(compared) == 2
    assert not matches_any("", ["a"])


def test_disabling_a_leaked_version_revokes_it_and_the_others_keep_working(
    token_secrets: SecretManagerStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """The rotation after a leak: a new latest version, and the leaked one disabled. Before, the
    disabled version failed the whole re-read, so the old set (the leaked token in it) stayed."""
    clock = Clock()
    check = verifier(token_secrets, clock)
    assert check.verify("token-v3")
    token_secrets.values[LATEST] = "token-v5"
    token_secrets.disabled.add(PINNED)
    clock.now += 301
    with caplog.at_level(logging.WARNING, logger="segment_saasquatch"):
        assert check.verify("token-v5")
        assert not check.verify("token-v3")
    assert [r.getMessage() for r in caplog.records] == [f"secret version dropped: {PINNED}"]
    assert "token-v3" not in caplog.text


def test_a_slow_secret_manager_never_delays_a_cached_token() -> None:
    clock = Clock()
    release, finished = threading.Event(), threading.Event()
    values = {"v": "token-1"}

    def fetch(version: str) -> str:
        if clock.now > 1000:  # every re-read after the first hangs until released
            release.wait(10)
            finished.set()
        return values[version]

    cache = SecretCache(["v"], fetch, CachePolicy(300, 5, clock=clock))
    assert cache.get() == ["token-1"]
    clock.now += 301
    assert cache.get() == ["token-1"]  # answered from the cache while the re-read hangs
    assert not finished.is_set()
    release.set()
    cache.settled()
    assert finished.is_set()


def test_values_older_than_the_bound_are_not_served() -> None:
    clock = Clock()
    up = {"now": True}

    def fetch(version: str) -> str:
        if not up["now"]:
            raise ConnectionError("Secret Manager is down")
        return "token-1"

    cache = SecretCache(["v"], fetch, CachePolicy(300, 5, max_stale_seconds=3600, clock=clock))
    assert cache.get() == ["token-1"]
    up["now"] = False
    clock.now += 3000
    assert cache.get() == ["token-1"]  # down, but within the bound: still served
    cache.settled()
    clock.now += 601
    with pytest.raises(SecretUnavailable):
        cache.get()
