"""saasquatch_webhook: a verified webhook is on its topic byte for byte before the 200; every
refusal is JSON with its reason, and nothing refused is published; a signed webhook that is not
ours (another tenant, the other mode, outside the age window) is a 200 that publishes nothing.
Behaviour through the in-memory topic; the real Pub/Sub client once, on the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.settings import ConfigError
from pushes.envelope import decode_json_object
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
CREATED = 1764672000123
NOW = (CREATED + 60_000) / 1000  # the handler's clock: a minute after SaaSquatch made BODY
HOUR = 3600.0
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

    def make(now: float = NOW, **settings: Any) -> FlaskClient:
        base = {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "WEBHOOK_JWKS_URL": jwks.url,
            "WEBHOOK_TENANT_ALIASES": "test_tenant",
            **settings,
        }
        port = None if "WEBHOOK_TOPIC" in settings else topic
        handler = create_webhook_handler(
            WebhookSettings.checked(**base), topic=port, clock=lambda: now
        )
        return client_for(handler)

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
        ("POST", "signed", b'{"id": "x", "type": "test", "created": "2025"}', 400, "invalid_body"),
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
    ours = {"WEBHOOK_TENANT_ALIASES": "test_tenant"}
    with pytest.raises(ConfigError, match="WEBHOOK_JWKS_URL: must be set"):
        WebhookSettings.checked(WEBHOOK_JWKS_URL="", **ours)
    with pytest.raises(ConfigError, match="both set"):
        WebhookSettings.checked(WEBHOOK_HMAC_API_KEY="a", WEBHOOK_HMAC_API_KEY_SECRET="b", **ours)
    with pytest.raises(ConfigError, match=r"^configuration error: WEBHOOK_TENANT_ALIASES \(or"):
        WebhookSettings.checked()
    with pytest.raises(ConfigError, match="WEBHOOK_TENANT_ALIASES: a tenant alias is"):
        WebhookSettings.checked(WEBHOOK_TENANT_ALIASES="ours, the other one")
    with pytest.raises(ConfigError, match="WEBHOOK_LIVE"):
        WebhookSettings.checked(WEBHOOK_LIVE="yes", **ours)


def test_the_tenant_comes_from_the_list_or_else_from_deliver_s_alias() -> None:
    listed = WebhookSettings.checked(
        WEBHOOK_TENANT_ALIASES=" a1, b_2 ,", SAASQUATCH_TENANT_ALIAS="c"
    )
    assert listed.admission.tenants == {"a1", "b_2"}
    assert WebhookSettings.checked(SAASQUATCH_TENANT_ALIAS="c").admission.tenants == {"c"}


def hook(**fields: Any) -> bytes:
    webhook = {
        "id": "wh-82",
        "type": "user.created",
        "tenantAlias": "test_tenant",
        "live": True,
        "created": CREATED,
        "data": {"id": "victim-user-42", "email": "attacker@evil.example"},
    }
    return json.dumps({**webhook, **fields}).encode()


def webhook_line(out: str) -> dict[str, Any]:
    [line] = [json.loads(x) for x in out.splitlines() if '"saasquatch_webhook"' in x]
    return line


def test_another_tenant_s_signed_webhook_is_a_200_that_publishes_nothing(
    make_webhook: MakeWebhook, topic: FakeTopic, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone with a tenant of their own can subscribe our URL, and SaaSquatch signs their
    webhooks with the same keys as ours: their `user.created` must not become our identify."""
    body = hook(tenantAlias="test_attacker01")
    answer = make_webhook().post("/", data=body, headers=signed(body))
    assert (answer.status_code, answer.get_json()) == (
        200,
        {"accepted": 0, "ignored": "other_tenant"},
    )
    assert topic.pull(1, timeout=1) == []
    out = capsys.readouterr().out
    line = webhook_line(out)
    assert (line["severity"], line["outcome"], line["reason"], line["tenant_alias"]) == (
        "WARNING",
        "ignored",
        "other_tenant",
        "test_attacker01",
    )
    assert "attacker@evil.example" not in out and "victim-user-42" not in out


@pytest.mark.parametrize(
    ("fields", "settings", "now", "reason"),
    [
        ({"tenantAlias": None}, {}, NOW, "other_tenant"),
        ({"tenantAlias": "TEST_TENANT"}, {}, NOW, "other_tenant"),
        ({"tenantAlias": "test_tenant" + "x" * 100}, {}, NOW, "other_tenant"),
        ({"live": True}, {"WEBHOOK_LIVE": "test"}, NOW, "tenant_mode_excluded"),
        ({"live": False}, {"WEBHOOK_LIVE": "live"}, NOW, "tenant_mode_excluded"),
        ({"live": None}, {"WEBHOOK_LIVE": "live"}, NOW, "tenant_mode_excluded"),
        ({}, {}, NOW + 74 * HOUR, "webhook_too_old"),  # 74 h and a minute
        ({"created": 1467155436449}, {}, NOW, "webhook_too_old"),  # 2016, captured and replayed
        ({}, {"WEBHOOK_MAX_AGE_HOURS": "1"}, NOW + HOUR, "webhook_too_old"),
        ({"created": CREATED + 6 * 60_000 + 60_000}, {}, NOW, "webhook_in_the_future"),
        ({"created": 10**400}, {}, NOW, "webhook_in_the_future"),  # valid JSON, past any float
        ({"created": -(10**400)}, {}, NOW, "webhook_too_old"),
    ],
)
def test_a_signed_webhook_that_is_not_ours_is_dropped_with_its_reason(
    make_webhook: MakeWebhook,
    topic: FakeTopic,
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, Any],
    settings: dict[str, str],
    now: float,
    reason: str,
) -> None:
    body = hook(**fields)
    answer = make_webhook(now=now, **settings).post("/", data=body, headers=signed(body))
    assert (answer.status_code, answer.get_json()) == (200, {"accepted": 0, "ignored": reason})
    assert topic.pull(1, timeout=1) == []
    line = webhook_line(capsys.readouterr().out)
    assert (line["reason"], line["webhook_id"]) == (reason, "wh-82")
    assert len(line["tenant_alias"]) <= 64
    # Someone else's tenant, or a clock gone wrong, is worth a look; the rest is routine.
    loud = reason in {"other_tenant", "webhook_in_the_future"}
    assert line["severity"] == ("WARNING" if loud else "INFO")


@pytest.mark.parametrize(
    ("fields", "settings", "now"),
    [
        ({}, {}, NOW + 74 * HOUR - 120),  # SaaSquatch's 72nd hourly retry, and then some
        ({"created": CREATED + 5 * 60_000}, {}, NOW),  # our clock four minutes behind
        ({"live": False}, {"WEBHOOK_LIVE": "test"}, NOW),
        ({"live": True}, {"WEBHOOK_LIVE": "live"}, NOW),
        ({"tenantAlias": "b"}, {"WEBHOOK_TENANT_ALIASES": "a,b"}, NOW),
    ],
)
def test_our_webhooks_inside_the_window_are_published(
    make_webhook: MakeWebhook,
    topic: FakeTopic,
    fields: dict[str, Any],
    settings: dict[str, str],
    now: float,
) -> None:
    body = hook(**fields)
    answer = make_webhook(now=now, **settings).post("/", data=body, headers=signed(body))
    assert answer.get_json() == {"accepted": 1}
    assert [pulled.data for pulled in topic.pull(1)] == [body]


def test_an_unsigned_webhook_of_another_tenant_is_still_a_401(make_webhook: MakeWebhook) -> None:
    """The signature comes first: admission never answers for a body nobody signed."""
    body = hook(tenantAlias="test_attacker01")
    forged = {"X-Hook-JWS-RFC-7797": detached_jws(body, new_key())}
    answer = make_webhook().post("/", data=body, headers=forged)
    assert (answer.status_code, answer.get_json()["reason"]) == (401, "bad_signature")


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


def test_a_body_with_a_utf8_bom_is_published_as_signed_and_read_alike_by_forward(
    make_webhook: MakeWebhook, topic: FakeTopic
) -> None:
    """The receiver and forward read JSON with the one reader (`common.strict_json`), which
    drops a UTF-8 BOM: what one takes, the other can read."""
    body = b"\xef\xbb\xbf" + BODY
    answer = make_webhook().post("/", data=body, headers=signed(body))
    assert answer.get_json() == {"accepted": 1}
    [pulled] = topic.pull(1)
    assert pulled.data == body
    assert decode_json_object(pulled.data)["id"] == "wh-81"
