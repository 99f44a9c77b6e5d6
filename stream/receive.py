"""saasquatch_webhook: check the signature header -> read -> verify -> parse -> admit ->
publish -> 200.

SaaSquatch retries anything but a 200 (hourly, up to 72 times), so the answer is 200 only
once the webhook is confirmed on its topic; a refusal names what was wrong and never echoes
the header. A signed webhook that is not ours (another tenant, the other mode, outside the age
window: `admission`) is answered 200 and dropped. The body is published byte for byte: the
forward side reads what was signed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import flask

from common import strict_json
from common.http import Refusal, RetryLater
from common.outcomes import Reason
from common.request_log import Handler
from common.secrets import Secret
from publisher import OutgoingMessage, Publisher, Topic
from receiving.receiver import Accepted, Body, Ignored, Receiver, receiver

from .admission import admit
from .receive_settings import WebhookSettings
from .signature import HMAC_HEADER, JWS_HEADER, JwsVerifier, PendingJws, check_hmac

_LOUD = frozenset({Reason.OTHER_TENANT, Reason.WEBHOOK_IN_THE_FUTURE})
EXPECTED = "a SaaSquatch webhook (a JSON object with id, type and created)"


def parse_webhook(raw: bytes) -> dict[str, Any]:
    """The webhook, with a non-empty `id` and `type` and an integer `created` (epoch
    milliseconds), or a 400 saying what is missing."""
    try:
        webhook = strict_json.loads(raw)  # a UTF-8 BOM is dropped here and by forward alike
    except strict_json.NotJson as error:
        raise Refusal(Reason.INVALID_BODY, f"{error}: send {EXPECTED}") from None
    if not isinstance(webhook, dict):
        raise Refusal(Reason.INVALID_BODY, f"not an object: send {EXPECTED}")
    webhook_id, kind = webhook.get("id"), webhook.get("type")
    if not (isinstance(webhook_id, str) and webhook_id.strip()):
        raise Refusal(Reason.INVALID_BODY, f"no id or type: send {EXPECTED}")
    if not (isinstance(kind, str) and kind.strip()):
        raise Refusal(Reason.INVALID_BODY, f"no id or type: send {EXPECTED}")
    created = webhook.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise Refusal(Reason.INVALID_BODY, f"no created (epoch milliseconds): send {EXPECTED}")
    return webhook


def create_handler(
    settings: WebhookSettings,
    *,
    topic: Topic | None = None,
    clock: Callable[[], float] = time.time,
) -> Handler:
    """The `saasquatch_webhook` handler for these settings. Its ports (the webhook topic, the
    clock the age window is read against) are built from the settings unless given; nothing is
    called until a request comes."""
    jws = JwsVerifier(
        settings.WEBHOOK_JWKS_URL,
        settings.WEBHOOK_JWKS_CACHE_SECONDS,
        settings.WEBHOOK_JWKS_REFETCH_SECONDS,
        settings.WEBHOOK_JWKS_TIMEOUT_SECONDS,
    )
    hmac_key = settings.secret(settings.WEBHOOK_HMAC_API_KEY, settings.WEBHOOK_HMAC_API_KEY_SECRET)
    if topic is None:
        topic = Publisher(
            settings.GOOGLE_CLOUD_PROJECT,
            settings.WEBHOOK_TOPIC,
            ordering=False,
            timeout=settings.PUBLISH_TIMEOUT_SECONDS,
        )

    def authenticate(request: flask.Request) -> PendingJws | None:
        """The JWS header checked (and its key found) before the body is read; None for a
        webhook signed the older way (HMAC, when opted in)."""
        signed = request.headers.get(JWS_HEADER)
        older = request.headers.get(HMAC_HEADER) if hmac_key is not None else None
        if not signed and not older:
            wanted = f"{JWS_HEADER} or {HMAC_HEADER}" if hmac_key is not None else JWS_HEADER
            raise Refusal(Reason.BAD_SIGNATURE, f"missing {wanted} header")
        return jws.prepare(signed) if signed else None

    admission = settings.admission

    def accept(
        request: flask.Request, raw: bytes, pending: PendingJws | None
    ) -> Accepted | Ignored:
        if pending is not None:
            jws.verify(pending, raw)
        else:
            check_hmac(_hmac_key(hmac_key), request.headers.get(HMAC_HEADER) or "", raw)
        webhook = parse_webhook(raw)
        webhook_id, kind = webhook["id"], webhook["type"]
        fields = {"webhook_type": kind[:64], "webhook_id": webhook_id[:64]}
        dropped = admit(webhook, admission, round(clock() * 1000))
        if dropped is not None:
            # Someone pointing a tenant at us, or a clock that is wrong (theirs or ours), is
            # worth a look; a replay or the other mode's webhook is routine.
            level = logging.WARNING if dropped.reason in _LOUD else logging.INFO
            fields |= {"tenant_alias": dropped.tenant_alias, "detail": dropped.detail}
            return Ignored(dropped.reason, fields, level)
        message = OutgoingMessage(raw, {"webhookType": kind[:256], "webhookId": webhook_id[:256]})
        return Accepted([message], fields)

    steps = Receiver(("POST",), Body(settings.MAX_WEBHOOK_BYTES, EXPECTED), authenticate, accept)
    return receiver("saasquatch_webhook", steps, topic=topic, settings=settings)


def _hmac_key(key: Secret | None) -> str:
    try:
        return key.value() if key is not None else ""
    except Exception:
        raise RetryLater(
            Reason.TOKEN_STORE_UNAVAILABLE, "the HMAC key cannot be read, retry later"
        ) from None
