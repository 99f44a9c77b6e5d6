"""Mapper throughput on one core, next to the floor of only parsing the same JSON.

    .venv/bin/python bench/mapper_throughput.py [--seconds 3]

The mix: a third identify (with traits), a third custom track, a third Order Completed with five
products. Each row is the best of five runs over the whole mix. The last row configures the three
JSONata examples of SaaSquatch's v2 docs (identify segments, a per-event upsert strategy that
upserts before Order Completed, an upsert transformer setting a custom field).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from _support import table

from mapper import MappingOptions, map_message
from mapper.options import parse_track_upsert_strategy
from mapper.transformers import Transformer

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def mix() -> list[bytes]:
    identify = {
        "type": "identify",
        "userId": "user-1234",
        "messageId": "ajs-identify-000000000001",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "context": {"ip": "203.0.113.7", "locale": "en-US", "userAgent": "Mozilla/5.0"},
        "traits": {
            "email": "peter.gibbons@initech.com",
            "name": "Peter Gibbons",
            "plan": "enterprise",
            "logins": 17,
            "company": {"name": "Initech", "employees": 300},
            "referredByCodes": ["MILTON"],
        },
    }
    track = {
        "type": "track",
        "event": "Signed Up",
        "userId": "user-1234",
        "messageId": "ajs-track-000000000002",
        "timestamp": "2026-11-28T10:00:01.000Z",
        "context": {"traits": {"email": "peter.gibbons@initech.com"}},
        "properties": {"plan": "pro", "source": "landing page", "trial_days": 14, "tags": ["a"]},
    }
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": "user-1234",
        "messageId": "ajs-order-000000000003",
        "timestamp": "2026-11-28T10:00:02.000Z",
        "context": {"traits": {"email": "peter.gibbons@initech.com"}},
        "properties": {
            "order_id": "50314b8e9bcf000000000000",
            "total": 27.5,
            "revenue": 25,
            "shipping": 3,
            "tax": 2,
            "discount": 2.5,
            "coupon": "hasbros",
            "currency": "usd",
            "products": [
                {
                    "product_id": f"507f1f77bcf86cd79943901{n}",
                    "sku": f"45790-3{n}",
                    "name": f"Game {n}",
                    "price": 19 + n,
                    "quantity": 1 + n,
                    "category": "Games",
                }
                for n in range(5)
            ],
        },
    }
    return [json.dumps(message).encode() for message in (identify, track, order)] * 1000


def best_rate(work, raw: list[bytes], rounds: int = 5) -> float:
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        work(raw)
        best = max(best, len(raw) / (time.perf_counter() - started))
    return best


def parse_only(raw: list[bytes]) -> None:
    for data in raw:
        json.loads(data)


def parse_and_map(raw: list[bytes]) -> None:
    for data in raw:
        map_message(json.loads(data), now=NOW)


TRANSFORMED = MappingOptions(
    identify_segments_transformer=Transformer(
        "IDENTIFY_SEGMENTS_TRANSFORMER", '[traits.plan, "hardcoded"]'
    ),
    track_upsert_strategy=parse_track_upsert_strategy(
        'event = "Order Completed" ? "ALWAYS" : "MISSING_USER"'
    ),
    track_upsert_transformer=Transformer(
        "TRACK_UPSERT_TRANSFORMER", '{ "customFields": { "plan": properties.plan } }'
    ),
)


def parse_and_map_transformed(raw: list[bytes]) -> None:
    for data in raw:
        plan = map_message(json.loads(data), TRANSFORMED, now=NOW)
        assert plan.outcome == "delivered", plan


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    raw = mix()
    floor = best_rate(parse_only, raw)
    mapped = best_rate(parse_and_map, raw)
    transformed = best_rate(parse_and_map_transformed, raw)
    print(
        table(
            ["what", "messages/s (one core)", "vs floor"],
            [
                ["json.loads only (floor)", f"{floor:,.0f}", "100%"],
                ["json.loads + map_message", f"{mapped:,.0f}", f"{mapped / floor:.1%}"],
                [
                    "json.loads + map_message, 3 transformers",
                    f"{transformed:,.0f}",
                    f"{transformed / floor:.1%}",
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
