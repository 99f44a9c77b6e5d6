"""saasquatch_webhook: a verified webhook is on its topic byte for byte before the 200; every
refusal is JSON with its reason, and nothing refused is published. Behaviour through the
in-memory topic; the real Pub/Sub client once, on the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.settings import ConfigError
from stream.receive import create_handler as create_webhook_handler
from stream.receive_settings import WebhookSettings

from ..factories import PROJECT
from ..support.fakes import FakeTopic
from ..support.functions import client_for
from ..support.pubsub import Topic
from ..support.webhook_signing import KID, JwksStandIn, detached_jws, hmac_signature, new_key

KEY = new_key()
API_KEY = "TEST_tenant_api_key"
# As SaaSquatch serialises it: key order and spacing are its own, and kept.
BODY = (
    b'{"id":"wh-81","type":"reward.created","tenantAlias":"test_tenant","live":true,'
    b'"created":1764672000123,"data":{"userId":"u-1","name":"R\\u00e9compense"}}'
)
MakeWebhook = Callable[..., FlaskClient]


@pytest.fixture
def jwks() -> Iterator[JwksStandIn]:
    with JwksStandIn() as stand_in:
        stand_in.keys[KID] = KEY
        yield stand_in


@pytest.fixture
def topic() -> FakeTopic:
    """The in-memory webhook topic `make_webhook` publishes to."""
    return FakeTopic("saasquatch-webhooks")


@pytest.fixture
def make_webhook(topic: FakeTopic, jwks: JwksStandIn) -> MakeWebhook:
    """`saasquatch_webhook` on the in-memory topic; a test that names `WEBHOOK_TOPIC` gets the
    real Pub/Sub client (and needs the `emulator` fixture)."""

    def make(**settings: Any) -> FlaskClient:
        base = {"GOOGLE_CLOUD_PROJECT": PROJECT, "WEBHOOK_JWKS_URL": jwks.url, **settings}
        port = None if "WEBHOOK_TOPIC" in settings else topic
        return client_for(create_webhook_handler(WebhookSettings.checked(**base), topic=port))

    return make


def signed(body: bytes = BODY) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hook-JWS-RFC-7797": detached_jws(body, KEY)}


def test_a_verified_webhook_is_on_its_topic_as_sent(
    make_webhook: MakeWebhook, topic: FakeTopic
) -> None:
    answer = make_webhook().post("/", data=BODY, headers=signed())
    assert (answer.status_code, answer.get_json()) == (200, {"accepted": 1})
    [pulled] = topic.pull(1)
    assert pulled.data == BODY
    assert dict(pulled.attributes) == {"webhookType": "reward.created", "webhookId": "wh-81"}


def test_the_older_hmac_signature_passes_only_when_opted_in(
    make_webhook: MakeWebhook, topic: FakeTopic
) -> None:
    headers = {"X-Hook-Signature": hmac_signature(API_KEY, BODY)}
    refused = make_webhook().post("/", data=BODY, headers=headers)
    assert (refused.status_code, refused.get_json()) == (
        401,
        {"error": "missing X-Hook-JWS-RFC-7797 header", "reason": "bad_signature"},
    )
    accepted = make_webhook(WEBHOOK_HMAC_API_KEY=API_KEY).post("/", data=BODY, headers=headers)
    assert accepted.status_code == 200
    wrong = {"X-Hook-Signature": hmac_signature("another key", BODY)}
    forged = make_webhook(WEBHOOK_HMAC_API_KEY=API_KEY).post("/", data=BODY, headers=wrong)
    assert forged.get_json()["error"] == "X-Hook-Signature does not match the body"
    assert [pulled.data for pulled in topic.pull(1, timeout=3)] == [BODY]


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "reason"),
    [
        ("GET", {}, b"", 405, "method_not_allowed"),
        ("POST", {}, BODY, 401, "bad_signature"),
        ("POST", "signed", b"[1, 2]", 400, "invalid_body"),
        ("POST", "signed", b'{"id": "x"}', 400, "invalid_body"),
        ("POST", "signed", b"not json", 400, "invalid_body"),
        ("POST", "signed", b"", 400, "invalid_body"),
    ],
)
def test_refusals_are_json_with_their_reason_and_publish_nothing(
    make_webhook: MakeWebhook,
    topic: FakeTopic,
    method: str,
    headers: Any,
    body: bytes,
    status: int,
    reason: str,
) -> None:
    sent = signed(body) if headers == "signed" else headers
    answer = make_webhook().open("/", method=method, data=body, headers=sent)
    assert (answer.status_code, answer.get_json()["reason"]) == (status, reason)
    assert set(answer.get_json()) == {"error", "reason"}
    assert topic.pull(1, timeout=1) == []


def test_a_body_over_the_limit_is_refused(make_webhook: MakeWebhook) -> None:
    big = json.dumps({"id": "w", "type": "test", "data": {"pad": "x" * 2000}}).encode()
    answer = make_webhook(MAX_WEBHOOK_BYTES="1000").post("/", data=big, headers=signed(big))
    assert (answer.status_code, answer.get_json()["reason"]) == (413, "body_too_large")


def test_keys_that_cannot_be_fetched_are_a_503_so_saasquatch_retries(
    make_webhook: MakeWebhook, jwks: JwksStandIn
) -> None:
    jwks.failing = True
    answer = make_webhook().post("/", data=BODY, headers=signed())
    assert (answer.status_code, answer.get_json()["reason"]) == (503, "signing_keys_unavailable")


def test_settings_refuse_an_unsafe_start() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_JWKS_URL: must be set"):
        WebhookSettings.checked(WEBHOOK_JWKS_URL="")
    with pytest.raises(ConfigError, match="both set"):
        WebhookSettings.checked(WEBHOOK_HMAC_API_KEY="a", WEBHOOK_HMAC_API_KEY_SECRET="b")


def test_the_real_client_puts_the_webhook_on_its_topic_as_sent(
    make_webhook: MakeWebhook, emulator: Any
) -> None:
    emulator.reset()
    real = Topic("saasquatch-webhooks-real")
    answer = make_webhook(WEBHOOK_TOPIC=real.name).post("/", data=BODY, headers=signed())
    assert answer.get_json() == {"accepted": 1}
    [pulled] = real.pull(1)
    assert pulled.data == BODY
    assert dict(pulled.attributes) == {"webhookType": "reward.created", "webhookId": "wh-81"}
