"""Token checks through the real Secret Manager client (REST) against a local stand-in."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secret_store import SecretUnavailable, TokenVerifier, matches_any, secret_manager_fetch

from .conftest import MakeIngest
from .secret_manager_standin import SecretManagerStandIn
from .test_ingest import identify

ROOT = Path(__file__).resolve().parent.parent
LATEST = "projects/p/secrets/segment-token/versions/latest"
PINNED = "projects/p/secrets/segment-token/versions/3"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stand_in() -> Iterator[SecretManagerStandIn]:
    with SecretManagerStandIn() as running:
        running.values = {LATEST: "token-v4\n", PINNED: "token-v3"}
        yield running


def verifier(stand_in: SecretManagerStandIn, clock: Clock, **kwargs: float) -> TokenVerifier:
    return TokenVerifier(
        [],
        [LATEST, PINNED],
        secret_manager_fetch(stand_in.endpoint, timeout=2),
        cache_seconds=kwargs.get("cache_seconds", 300),
        min_refresh_seconds=kwargs.get("min_refresh_seconds", 5),
        clock=clock,
    )


def test_every_listed_version_is_accepted_and_trailing_newlines_ignored(
    stand_in: SecretManagerStandIn,
) -> None:
    check = verifier(stand_in, Clock())
    assert check.verify("token-v4")
    assert check.verify("token-v3")
    assert not check.verify("token-v2")
    assert {path.split("?")[0] for path in stand_in.requests} == {
        f"/v1/{LATEST}:access",
        f"/v1/{PINNED}:access",
    }


def test_rotation_takes_effect_after_the_cache_expires(stand_in: SecretManagerStandIn) -> None:
    clock = Clock()
    check = verifier(stand_in, clock, min_refresh_seconds=1e9)  # no early refresh
    assert check.verify("token-v4")
    stand_in.values[LATEST] = "token-v5"
    assert not check.verify("token-v5"), "still cached, early refresh disabled"
    clock.now += 301
    assert check.verify("token-v5")
    assert not check.verify("token-v4"), "the old token is refused after rotation"


def test_an_unknown_token_refreshes_once_but_not_more_than_every_few_seconds(
    stand_in: SecretManagerStandIn,
) -> None:
    clock = Clock()
    check = verifier(stand_in, clock)
    assert check.verify("token-v4")
    stand_in.values[LATEST] = "token-v5"
    clock.now += 10
    assert check.verify("token-v5"), "a new token is picked up without waiting for the cache"
    clock.now += 10
    fetches = len(stand_in.requests)
    for _ in range(20):
        assert not check.verify("attacker-guess")
    assert len(stand_in.requests) == fetches + 2, "one refresh (two versions) for 20 guesses"


def test_secret_manager_down_keeps_cached_tokens_working(stand_in: SecretManagerStandIn) -> None:
    clock = Clock()
    check = verifier(stand_in, clock)
    assert check.verify("token-v4")
    stand_in.down = True
    clock.now += 1000  # cache expired, refresh fails
    assert check.verify("token-v4")
    assert not check.verify("wrong")


def test_secret_manager_down_with_nothing_cached_is_unavailable(
    stand_in: SecretManagerStandIn,
) -> None:
    stand_in.down = True
    with pytest.raises(SecretUnavailable):
        verifier(stand_in, Clock()).verify("token-v4")


def test_ingest_uses_secret_manager_and_answers_503_when_it_cannot(
    stand_in: SecretManagerStandIn, make_ingest: MakeIngest
) -> None:
    env = {"INGEST_TOKEN": "", "INGEST_TOKEN_SECRET": f"{LATEST},{PINNED}"}
    client = make_ingest(SECRET_MANAGER_ENDPOINT=stand_in.endpoint, **env)
    good = {"Authorization": "Bearer token-v3"}
    assert client.post("/", json=identify(), headers=good).status_code == 200
    assert (
        client.post("/", json=identify(), headers={"Authorization": "Bearer x"}).status_code == 401
    )

    stand_in.down = True
    cold = make_ingest(SECRET_MANAGER_ENDPOINT=stand_in.endpoint, **env)
    response = cold.post("/", json=identify(), headers=good)
    assert response.status_code == 503, "Segment must retry, not drop, while secrets are down"
    assert response.get_json() == {"error": "token store unavailable, retry later"}


def test_constant_time_comparison_checks_every_token() -> None:
    assert matches_any("b", ["a", "b", "c"])
    assert not matches_any("", ["a"])
    assert not matches_any("a\udcff", ["a"])


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"TRACK_UPSERT_STRATEGY": "sometimes"}, "TRACK_UPSERT_STRATEGY"),
        ({"EVENT_KEY_MAP": "{not json"}, "EVENT_KEY_MAP"),
        ({"EVENT_KEY_MAP": '{"Signed Up": "bad key!"}'}, "event keys"),
        ({"SAASQUATCH_TENANT_ALIAS": "test_abc123"}, "SAASQUATCH_API_KEY"),
        ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
        ({"SAASQUATCH_BASE_URL": "app.referralsaasquatch.com"}, "SAASQUATCH_BASE_URL"),
        ({"PUSH_CERTS_URL": "ftp://certs"}, "PUSH_CERTS_URL"),
        ({"SAASQUATCH_TIMEOUT_SECONDS": "0"}, "SAASQUATCH_TIMEOUT_SECONDS"),
    ],
)
def test_a_wrong_setting_stops_the_process_with_one_line(env: dict[str, str], names: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import main"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "GOOGLE_CLOUD_PROJECT": "p", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error:")
    assert names in lines[0]
