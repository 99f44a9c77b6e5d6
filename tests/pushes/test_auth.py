"""Push OIDC tokens: signed by a test key whose certificates are served locally, checked by
google-auth inside `deliver`."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from common.settings import ConfigError
from tools.local_http import LocalServer, QuietHandler, answer_json
from tools.processes import free_port

from ..factories import envelope, identify
from ..support.functions import MakeDeliver
from ..support.saasquatch_standin import SaaSquatchStandIn

AUDIENCE = "https://deliver-abc123-uc.a.run.app/"
PUSH_ACCOUNT = "segment-push@my-project.iam.gserviceaccount.com"


class SigningKey:
    """An RSA key with a self-signed certificate, as Google publishes them."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google-signer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        self.certificate = cert.public_bytes(serialization.Encoding.PEM).decode()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._signer = crypt.RSASigner.from_string(private, key_id=kid)

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "sub": "112233445566778899",
            "email": PUSH_ACCOUNT,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        return jwt.encode(self._signer, payload).decode()


class CertsServer:
    """Serves `{kid: PEM certificate}` like https://www.googleapis.com/oauth2/v1/certs."""

    def __init__(self) -> None:
        self.certs: dict[str, str] = {}
        self.fetches = 0
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                cache = {"Cache-Control": "public, max-age=21600, must-revalidate"}
                answer_json(self, 200, server.certs, cache)

        self._server = LocalServer(Handler)
        self._server.start()
        self.url = f"{self._server.base_url}/oauth2/v1/certs"

    def publish(self, key: SigningKey) -> None:
        self.certs[key.kid] = key.certificate

    def close(self) -> None:
        self._server.close()


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey("kid-google-1")


@pytest.fixture
def certs(google_key: SigningKey) -> Iterator[CertsServer]:
    server = CertsServer()
    server.publish(google_key)
    yield server
    server.close()


@pytest.fixture
def push_client(make_deliver: MakeDeliver, certs: CertsServer):
    return make_deliver(
        PUSH_AUDIENCE=AUDIENCE, PUSH_SERVICE_ACCOUNT=PUSH_ACCOUNT, PUSH_CERTS_URL=certs.url
    )


def push(client: Any, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/", json=envelope(identify()), headers=headers)


def test_a_valid_token_is_accepted(
    push_client: Any, google_key: SigningKey, saasquatch_api: SaaSquatchStandIn
) -> None:
    answer = push(push_client, google_key.token())
    assert answer.status_code == 200
    assert answer.json["outcome"] == "delivered"
    assert len(saasquatch_api.requests) == 1


def test_no_token_is_401(push_client: Any, saasquatch_api: SaaSquatchStandIn) -> None:
    answer = push_client.post("/", json=envelope(identify()))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert "error" in answer.json
    assert saasquatch_api.requests == []


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "https://someone-else.example/"}, "wrong audience"),
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200}, "expired"),
        ({"iss": "https://evil.example"}, "not issued by Google"),
    ],
)
def test_a_token_for_another_audience_expired_or_foreign_is_401(
    push_client: Any,
    google_key: SigningKey,
    saasquatch_api: SaaSquatchStandIn,
    claims: dict[str, Any],
    why: str,
) -> None:
    answer = push(push_client, google_key.token(**claims))
    assert answer.status_code == 401
    assert why in answer.json["error"]
    assert saasquatch_api.requests == []


def test_a_token_signed_by_an_unknown_key_is_401(
    push_client: Any, saasquatch_api: SaaSquatchStandIn
) -> None:
    stranger = SigningKey("kid-stranger")
    answer = push(push_client, stranger.token())
    assert answer.status_code == 401
    assert "unknown signing key" in answer.json["error"]
    assert saasquatch_api.requests == []


def test_a_token_forged_under_a_known_key_id_is_401(
    push_client: Any, saasquatch_api: SaaSquatchStandIn
) -> None:
    forger = SigningKey("kid-google-1")  # Google's key id, someone else's key
    answer = push(push_client, forger.token())
    assert answer.status_code == 401
    assert "bad signature" in answer.json["error"]


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_tokens_are_401(push_client: Any, token: str) -> None:
    assert push(push_client, token).status_code == 401


def test_a_token_of_another_service_account_is_403(
    push_client: Any, google_key: SigningKey, saasquatch_api: SaaSquatchStandIn
) -> None:
    answer = push(push_client, google_key.token(email="intruder@other.iam.gserviceaccount.com"))
    assert answer.status_code == 403
    unverified = push(push_client, google_key.token(email_verified=False))
    assert unverified.status_code == 403
    assert saasquatch_api.requests == []


def test_an_audience_without_a_service_account_stops_deliver_at_start(
    make_deliver: MakeDeliver, certs: CertsServer
) -> None:
    """Alone, the audience check passes any Google-signed token minted for it, by any project's
    service account: deliver refuses that configuration instead of running with it."""
    with pytest.raises(ConfigError, match="PUSH_AUDIENCE is set without PUSH_SERVICE_ACCOUNT"):
        make_deliver(PUSH_AUDIENCE=AUDIENCE, PUSH_CERTS_URL=certs.url)


def test_certificates_are_fetched_once_not_per_push(
    push_client: Any, google_key: SigningKey, certs: CertsServer
) -> None:
    for _ in range(5):
        assert push(push_client, google_key.token()).status_code == 200
    assert certs.fetches == 1


def test_a_key_google_rotated_in_is_found_by_one_refresh(
    push_client: Any, google_key: SigningKey, certs: CertsServer
) -> None:
    assert push(push_client, google_key.token()).status_code == 200
    rotated = SigningKey("kid-google-2")
    certs.publish(rotated)
    assert push(push_client, rotated.token()).status_code == 200
    assert certs.fetches == 2
    # Made-up key ids cannot make pushes fetch the certificates again and again.
    for n in range(3):
        assert push(push_client, SigningKey(f"kid-fake-{n}").token()).status_code == 401
    assert certs.fetches == 2


def test_unreachable_certificates_are_503_so_pubsub_retries(
    make_deliver: MakeDeliver, google_key: SigningKey
) -> None:
    client = make_deliver(
        PUSH_AUDIENCE=AUDIENCE,
        PUSH_SERVICE_ACCOUNT=PUSH_ACCOUNT,
        PUSH_CERTS_URL=f"http://127.0.0.1:{free_port()}/certs",
    )
    answer = push(client, google_key.token())
    assert answer.status_code == 503
    assert "certificates" in answer.json["error"]


def test_without_push_audience_no_token_is_needed(make_deliver: MakeDeliver) -> None:
    """The default: Cloud Run checks the token before the request reaches the code."""
    assert push(make_deliver(), None).status_code == 200


# --- behind Cloud Run's IAM check: the signature arrives removed --------------------------------


def stripped(token: str) -> str:
    """The token as Cloud Run passes it on after checking it: its signature replaced."""
    header, payload, _signature = token.split(".")
    return f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE"


@pytest.fixture
def behind_cloud_run(make_deliver: MakeDeliver, certs: CertsServer) -> Any:
    return make_deliver(
        PUSH_AUDIENCE=AUDIENCE,
        PUSH_SERVICE_ACCOUNT=PUSH_ACCOUNT,
        PUSH_CERTS_URL=certs.url,
        PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN="true",
    )


def test_behind_cloud_run_the_push_accounts_stripped_token_is_accepted(
    behind_cloud_run: Any, google_key: SigningKey, saasquatch_api: SaaSquatchStandIn
) -> None:
    answer = push(behind_cloud_run, stripped(google_key.token()))
    assert answer.status_code == 200
    assert len(saasquatch_api.requests) == 1


def test_behind_cloud_run_an_invokers_own_token_is_403(
    behind_cloud_run: Any, google_key: SigningKey, saasquatch_api: SaaSquatchStandIn
) -> None:
    """The second lock: an Owner or Editor passes Cloud Run's invoker check with their own
    identity token, and deliver refuses the forged envelope they post."""
    owner = stripped(google_key.token(email="alice@acme.example", aud=AUDIENCE))
    assert push(behind_cloud_run, owner).status_code == 403
    assert saasquatch_api.requests == []


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "https://someone-else.example/"}, "wrong audience"),
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200}, "expired"),
        ({"iat": int(time.time()) + 600}, "not valid yet"),
        ({"iss": "https://evil.example"}, "not issued by Google"),
        ({"exp": "soon"}, "malformed"),
        ({"exp": str(int(time.time()) + 600)}, "malformed"),  # a string is not a NumericDate
        ({"exp": float("inf")}, "malformed"),  # 1e999: it would never expire
        ({"exp": float("nan")}, "malformed"),  # every comparison with NaN is false
        ({"iat": float("-inf")}, "malformed"),
        ({"exp": True}, "malformed"),
    ],
)
def test_behind_cloud_run_the_claims_are_still_checked(
    behind_cloud_run: Any, google_key: SigningKey, claims: dict[str, Any], why: str
) -> None:
    answer = push(behind_cloud_run, stripped(google_key.token(**claims)))
    assert answer.status_code == 401
    assert why in answer.json["error"]


def test_behind_cloud_run_a_signed_token_is_still_verified(
    behind_cloud_run: Any, google_key: SigningKey
) -> None:
    assert push(behind_cloud_run, google_key.token()).status_code == 200
    forger = SigningKey("kid-google-1")
    assert push(behind_cloud_run, forger.token()).status_code == 401
    assert push(behind_cloud_run, "x.y.SIGNATURE_REMOVED_BY_GOOGLE").status_code == 401


def test_elsewhere_a_token_without_its_signature_is_401(
    push_client: Any, google_key: SigningKey, saasquatch_api: SaaSquatchStandIn
) -> None:
    """Without Cloud Run's check in front, anyone can write claims and remove the signature."""
    answer = push(push_client, stripped(google_key.token()))
    assert answer.status_code == 401
    assert "PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN" in answer.json["error"]
    assert saasquatch_api.requests == []


def test_the_cloud_run_switch_alone_stops_deliver_at_start(make_deliver: MakeDeliver) -> None:
    with pytest.raises(ConfigError, match="PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN"):
        make_deliver(PUSH_SIGNATURE_CHECKED_BY_CLOUD_RUN="true")
