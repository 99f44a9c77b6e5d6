"""Message builders shared by the tests: Segment messages, push envelopes and plans.

Each builder returns a fresh object; keyword arguments replace top-level fields.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mapper import MappingOptions, Plan, map_message

PAYLOADS = Path(__file__).resolve().parent / "payloads"
PROJECT = "test-project"
TOKEN = "seg-7f3c9a1e-live-token"  # the bearer token ingest accepts in the tests

# A fixed "now" keeps the mapper's timestamp window deterministic.
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)

USER = "u-1001"
EMAIL = "peter.gibbons@initech.com"


def plan_for(message: Any, **options: Any) -> Plan:
    """The mapper's plan at `NOW` with these mapping options."""
    return map_message(message, MappingOptions(**options), now=NOW)


def recent(days: float = 1) -> tuple[str, int]:
    """A timestamp inside SaaSquatch's window from the real clock, and its epoch milliseconds."""
    when = (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=123000)
    return when.isoformat().replace("+00:00", "Z"), int(when.timestamp() * 1000)


# --- small messages for the services -------------------------------------------------------------


def identify(**changes: Any) -> dict[str, Any]:
    message = {
        "type": "identify",
        "userId": USER,
        "messageId": "m-ident-0001",
        "traits": {"email": EMAIL, "name": "Peter Gibbons", "plan": "pro"},
    }
    return {**message, **changes}


def track(message_id: str = "m-track-0001", event: str = "Signed Up", **changes: Any) -> dict:
    """A custom event a day old (by the real clock, as deliver maps it)."""
    timestamp, _ = recent()
    message = {
        "type": "track",
        "userId": USER,
        "event": event,
        "messageId": message_id,
        "timestamp": timestamp,
        "properties": {"plan": "pro"},
    }
    return {**message, **changes}


def numbered_identify(n: int = 1, **extra: Any) -> dict[str, Any]:
    """One of many distinct identify calls (user, messageId and email from `n`), as Segment
    relays them: stamped on arrival, so ingest publishes them unchanged."""
    return {
        "type": "identify",
        "userId": f"user-{n}",
        "messageId": f"msg-identify-{n:05d}",
        "receivedAt": "2026-11-29T10:00:00.000Z",
        "traits": {"email": f"user{n}@example.com", "plan": "pro"},
        **extra,
    }


def envelope(
    data: dict[str, Any] | bytes,
    attributes: dict[str, str] | None = None,
    message_id: str = "4711",
    **extra: Any,
) -> dict[str, Any]:
    """A push body as Pub/Sub sends it (both spellings of the id, as the emulator does)."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    message = {
        "data": base64.b64encode(raw).decode(),
        "attributes": attributes or {},
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": "2026-11-29T10:00:00.000Z",
    }
    message.update(extra.pop("message", {}))
    return {
        "message": message,
        "subscription": f"projects/{PROJECT}/subscriptions/deliver",
        **extra,
    }


# --- Segment's own spec examples, for the mapping tests ------------------------------------------

IDENTIFY: dict[str, Any] = {
    "anonymousId": "507f191e810c19729de860ea",
    "channel": "browser",
    "context": {
        "ip": "8.8.8.8",
        "locale": "en-US",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_2) AppleWebKit/600.3.18",
    },
    "integrations": {"All": False, "Mixpanel": True, "Salesforce": True},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "receivedAt": "2026-11-23T22:28:55.387Z",
    "sentAt": "2026-11-23T22:28:55.111Z",
    "timestamp": "2026-11-23T22:28:55.111Z",
    "traits": {
        "name": "Peter Gibbons",
        "email": "peter@example.com",
        "plan": "premium",
        "logins": 5,
        "address": {"street": "6th St", "city": "San Francisco", "postalCode": "94103"},
    },
    "type": "identify",
    "userId": "97980cfea0067",
    "version": "1.1",
}


def spec_identify(**changes: Any) -> dict[str, Any]:
    message = copy.deepcopy(IDENTIFY)
    message.update(changes)
    return message


TRACK: dict[str, Any] = {
    "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
    "context": {
        "library": {"name": "analytics.js", "version": "2.11.1"},
        "page": {"path": "/academy/", "url": "https://segment.com/academy/"},
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/537.36",
        "ip": "108.0.78.21",
        "locale": "en-GB",
        "traits": {"email": "ada@example.com", "first_name": "Ada", "plan": "pro"},
    },
    "event": "Course Clicked",
    "integrations": {},
    "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    "properties": {"title": "Intro to Analytics", "course_level": 2},
    "receivedAt": "2026-11-12T20:21:19.300Z",
    "sentAt": "2026-11-12T20:21:19.294Z",
    "timestamp": "2026-11-12T20:21:18.998Z",
    "type": "track",
    "userId": "AiUGstSDIg",
    "originalTimestamp": "2026-11-12T20:21:18.996Z",
}


def spec_track(**changes: Any) -> dict[str, Any]:
    message = copy.deepcopy(TRACK)
    message.update(changes)
    return message


def order_completed(**properties: Any) -> dict[str, Any]:
    """The Segment spec's Order Completed example (`payloads/order_completed.json`)."""
    message = json.loads((PAYLOADS / "order_completed.json").read_text())
    message["properties"].update(properties)
    return message


def order_refunded(properties: dict[str, Any]) -> dict[str, Any]:
    message = order_completed()
    message.update(event="Order Refunded", messageId="refund-50314b8e9bcf", properties=properties)
    return message


# The Segment spec's Order Completed example, as SaaSquatch purchase fields.
ORDER_COMPLETED_FIELDS = {
    "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
    "order_id": "50314b8e9bcf000000000000",
    "affiliation": "Google Store",
    "coupon": "hasbros",
    "subtotal": 22.5,
    "total": 27.5,
    "revenue": 25.0,
    "shipping": 3,
    "tax": 2,
    "discount": 2.5,
    "currency": "USD",
    "products": [
        {
            "product_id": "507f1f77bcf86cd799439011",
            "sku": "45790-32",
            "category": "Games",
            "name": "Monopoly: 3rd Edition",
            "url": "https://www.example.com/product/path",
            "image_url": "https://www.example.com/product/path.jpg",
            "price": 19,
            "quantity": 1,
        },
        {
            "product_id": "505bd76785ebb509fc183733",
            "sku": "46493-32",
            "category": "Games",
            "name": "Uno Card Game",
            "price": 3,
            "quantity": 2,
        },
    ],
}


def actions_event(n: int) -> dict[str, Any]:
    """An ordinary Order Completed as Webhooks (Actions) relays it: about 1.5 KB."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n:08d}",
        "anonymousId": f"anon-{n:012d}",
        "messageId": f"ajs-next-{n:032d}",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "receivedAt": "2026-11-28T10:00:00.200Z",
        "sentAt": "2026-11-28T10:00:00.100Z",
        "context": {
            "ip": "203.0.113.7",
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "locale": "en-US",
            "campaign": {
                "name": "winter-sale",
                "source": "newsletter",
                "medium": "email",
                "content": "hero-banner",
            },
            "page": {
                "path": "/checkout",
                "referrer": "https://shop.example.com/cart",
                "title": "Checkout",
                "url": "https://shop.example.com/checkout?step=3",
            },
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "traits": {"email": f"u{n}@example.com", "firstName": "Ada", "lastName": "Lovelace"},
        },
        "properties": {
            "order_id": f"order-{n:010d}",
            "total": 27.5,
            "revenue": 25.0,
            "currency": "USD",
            "coupon": "WINTER",
            "products": [
                {"product_id": f"p-{i}", "sku": f"SKU-{i}", "name": "Thing", "price": 12.5}
                for i in range(9)
            ],
        },
    }
