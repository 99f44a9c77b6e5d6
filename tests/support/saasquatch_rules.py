"""SaaSquatch's published rules for request bodies, written down independently of the mapper.

Sources: SaaSquatch REST reference (user upsert, track user event) and the "Purchase object" and
"Custom user fields" docs. The mapper's own tables are not used here, so a mistake there shows.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import jsonschema

_TEXT = {"type": "string", "maxLength": 375}
_AMOUNT = {"type": "number", "minimum": 0}

PRODUCT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["product_id"],
    "properties": {
        "product_id": _TEXT,
        "sku": _TEXT,
        "category": _TEXT,
        "name": _TEXT,
        "brand": _TEXT,
        "variant": _TEXT,
        "coupon": _TEXT,
        "url": _TEXT,
        "image_url": _TEXT,
        "price": _AMOUNT,
        "quantity": {"type": "integer", "minimum": 0},
        "position": {"type": "integer"},
    },
}

_PRODUCTS = {"type": "array", "maxItems": 200, "items": PRODUCT}
_CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}

PURCHASE_FIELDS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "checkout_id": _TEXT,
        "order_id": _TEXT,
        "affiliation": _TEXT,
        "coupon": _TEXT,
        "subtotal": _AMOUNT,
        "total": _AMOUNT,
        "revenue": _AMOUNT,
        "shipping": _AMOUNT,
        "tax": _AMOUNT,
        "discount": _AMOUNT,
        "currency": _CURRENCY,
        "products": _PRODUCTS,
    },
}

REFUND_FIELDS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "order_id": _TEXT,
        "affiliation": _TEXT,
        "total": _AMOUNT,
        "revenue": _AMOUNT,
        "shipping": _AMOUNT,
        "tax": _AMOUNT,
        "currency": _CURRENCY,
        "products": _PRODUCTS,
    },
}

IDEMPOTENCY_KEY = {"type": "string", "pattern": "^[A-Za-z0-9._-]{8,64}$"}

EVENTS_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["userId", "accountId", "idempotencyKey", "events"],
    "properties": {
        "userId": {"type": "string", "minLength": 1},
        "accountId": {"type": "string", "minLength": 1},
        "idempotencyKey": IDEMPOTENCY_KEY,
        "events": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key"],
                "properties": {
                    "key": {"type": "string", "pattern": "^[A-Za-z0-9]{1,64}$"},
                    "fields": {"type": "object"},
                    "dateTriggered": {"type": "integer"},
                },
            },
        },
    },
}

_SCALAR = {"type": ["string", "number", "boolean", "null"], "maxLength": 1024}

USER_UPSERT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "accountId"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "accountId": {"type": "string", "minLength": 1},
        "email": {"type": "string"},
        "firstName": {"type": "string"},
        "lastName": {"type": "string"},
        "imageUrl": {"type": "string"},
        "locale": {"type": "string", "pattern": "^[a-z]{2}_[A-Z]{2}$"},
        "referredByCodes": {"type": "array", "items": {"type": "string"}},
        # squatch.js's `_saasquatch` cookie: Base64URL-encoded JSON (`referral_cookie_problem`).
        "cookies": {"type": "string", "minLength": 1},
        # Operations in order: join, leave (`~`), leave all (`~*`); names alphanumeric.
        "segments": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": "^(~?[A-Za-z0-9]+|~\\*)$"},
        },
        "customFields": {
            "type": "object",
            "maxProperties": 100,
            "propertyNames": {
                "pattern": "^[A-Za-z0-9_]{1,64}$",
                "not": {
                    "enum": [
                        "lastPurchaseDate",
                        "firstPurchaseDate",
                        "lastSeenDate",
                        "totalPurchaseCount",
                    ]
                },
            },
            "additionalProperties": _SCALAR,
        },
    },
}


def check_upsert(body: dict[str, Any]) -> None:
    jsonschema.validate(body, USER_UPSERT)
    assert None not in body.values(), "top-level nulls could clear data"


# The decoded `cookies`, as SaaSquatch's GraphQL schema documents it (UserInput.cookies, "The
# Base64URL encoded attribution cookie values"): {domain: {"{tenantAlias}_CODE": {"codes":
# {programId: code}, "codesExp": {code: epoch ms}}}}. squatch.js merges what the referral link
# carries into it, so other keys may sit beside these.
_CODES = {"type": "object", "additionalProperties": {"type": "string"}}
REFERRAL_COOKIE = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {
                "codes": _CODES,
                "codesExp": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        },
    },
}


def referral_cookie_problem(value: Any) -> str | None:
    """Why SaaSquatch would refuse `value` as the upsert's `cookies` (its RS052, "You have passed
    an invalid cookie value": the decoded value did not parse or had the wrong schema), or None.
    Decoded like Java's URL-safe decoder, which SaaSquatch runs on: base64url, padding optional,
    `+` and `/` refused."""
    if not isinstance(value, str):
        return "not a string"
    unpadded = value.rstrip("=")
    if any(char in unpadded for char in "+/=") or len(value) - len(unpadded) > 2:
        return "not Base64URL"
    try:
        data = base64.b64decode(
            unpadded.replace("-", "+").replace("_", "/") + "=" * (-len(unpadded) % 4),
            validate=True,
        )
        decoded = json.loads(data.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "not Base64URL-encoded JSON"
    errors = list(jsonschema.Draft202012Validator(REFERRAL_COOKIE).iter_errors(decoded))
    return "not the cookie's schema" if errors else None


def check_events(body: dict[str, Any]) -> None:
    jsonschema.validate(body, EVENTS_BODY)
    for event in body["events"]:
        fields = event.get("fields", {})
        if event["key"] == "purchase":
            jsonschema.validate(fields, PURCHASE_FIELDS)
        elif event["key"] == "refund":
            jsonschema.validate(fields, REFUND_FIELDS)
        else:
            check_custom_event_fields(fields)


def check_custom_event_fields(value: Any, path: str = "fields") -> None:
    """Names `^[A-Za-z0-9_]{1,64}$`, strings <= 1500 UTF-8 bytes, no arrays of arrays."""
    if isinstance(value, dict):
        for name, item in value.items():
            assert jsonschema.Draft202012Validator({"pattern": "^[A-Za-z0-9_]{1,64}$"}).is_valid(
                name
            ), f"{path}: bad name {name!r}"
            check_custom_event_fields(item, f"{path}.{name}")
    elif isinstance(value, list):
        for item in value:
            assert not isinstance(item, list), f"{path}: array of arrays"
            check_custom_event_fields(item, f"{path}[]")
    elif isinstance(value, str):
        assert len(value.encode("utf-8")) <= 1500, f"{path}: over 1500 bytes"
