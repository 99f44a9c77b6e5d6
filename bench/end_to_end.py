"""End to end: N events through ingest -> Pub/Sub emulator -> push -> deliver -> SaaSquatch
stand-in, and deliver's own cost per event next to calling the stand-in directly.

    .venv/bin/python bench/end_to_end.py [--events 5000]

ingest and deliver are served by functions-framework (gunicorn, THREADS=32, as deployed); the
push subscription is made by tools.provision. Events go in as 100-message batches from 4 client
threads; the clock stops when the stand-in has accepted the last one.

deliver's overhead is measured without the emulator, one request at a time: the round trip of a
push to deliver (which calls the stand-in) minus a direct `requests` call to the stand-in with the
same body, minus the round trip to a do-nothing function served the same way (the HTTP hop). The
delivery ledger's cost is the same round trip with the ledger on (the Firestore emulator): a live
event costs one write, an event two days old (or a replay) a read and a write.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
from _support import ROOT, median, serving, table

from tests.support.saasquatch_standin import API_KEY, TENANT, SaaSquatchStandIn
from tools.emulator import running_emulator, running_firestore
from tools.processes import free_port
from tools.provision import PubSubLayout, provision

PROJECT = "bench-project"
TOKEN = "bench-token"


def event(n: int, age: timedelta = timedelta(minutes=5)) -> dict:
    return {
        "type": "track",
        "event": "Signed Up" if n % 3 else "Order Completed",
        "userId": f"user-{n % 500}",
        "messageId": f"e2e-{n:07d}",
        "timestamp": (datetime.now(UTC) - age).isoformat(),
        "properties": {"order_id": f"o-{n}", "total": 19.5, "currency": "usd", "plan": "pro"},
    }


def through_the_pipeline(events: int, ledger: bool) -> tuple[float, int]:
    """With the delivery ledger on (as deployed, on the Firestore emulator), or off."""
    with (
        running_emulator() as emulator,
        running_firestore() as firestore,
        SaaSquatchStandIn() as saasquatch,
    ):
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        for user in range(500):
            saasquatch.add_user(f"user-{user}", f"user-{user}")
        deliver_port = free_port()
        common = {
            "PUBSUB_EMULATOR_HOST": emulator.host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "THREADS": "32",
        }
        deliver_env = {
            **common,
            "SAASQUATCH_TENANT_ALIAS": TENANT,
            "SAASQUATCH_API_KEY": API_KEY,
            "SAASQUATCH_BASE_URL": saasquatch.base_url,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "DELIVERY_LEDGER": "true" if ledger else "false",
        }
        ingest_env = {**common, "INGEST_TOKEN": TOKEN}
        with serving("deliver", deliver_env, port=deliver_port) as deliver_url:
            provision(PubSubLayout(PROJECT, deliver_url, retry_policy=False))
            with serving("ingest", ingest_env) as ingest_url:
                batches = [[event(n) for n in range(i, min(i + 100, events))]
                           for i in range(0, events, 100)]  # fmt: skip
                started = time.perf_counter()
                with ThreadPoolExecutor(4) as pool, requests.Session() as session:
                    headers = {"Authorization": f"Bearer {TOKEN}"}
                    list(
                        pool.map(
                            lambda b: session.post(ingest_url, json=b, headers=headers), batches
                        )
                    )
                while len(saasquatch.delivered_events) < events:
                    time.sleep(0.01)
                    if time.perf_counter() - started > 600:
                        break
                return time.perf_counter() - started, len(saasquatch.delivered_events)


def deliver_overhead(calls: int) -> dict[str, float]:
    with (
        SaaSquatchStandIn() as saasquatch,
        running_emulator() as emulator,
        running_firestore() as firestore,
    ):
        saasquatch.add_user("user-1", "user-1")
        env = {
            "PUBSUB_EMULATOR_HOST": emulator.host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SAASQUATCH_TENANT_ALIAS": TENANT,
            "SAASQUATCH_API_KEY": API_KEY,
            "SAASQUATCH_BASE_URL": saasquatch.base_url,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
        }
        url = f"{saasquatch.base_url}/api/v1/{TENANT}/open/account/user-1/user/user-1/events"
        auth = SaaSquatchStandIn.basic(API_KEY)

        def body(n: int) -> dict:
            return {
                "userId": "user-1",
                "accountId": "user-1",
                "idempotencyKey": f"direct-{n:07d}",
                "events": [{"key": "signedUp", "fields": {"plan": "pro"}}],
            }

        measured: dict[str, float] = {}
        with requests.Session() as session:
            measured["direct"] = _timed(
                calls, lambda n: session.post(url, json=body(n), headers={"Authorization": auth})
            )
            with serving("noop", {}, source=ROOT / "bench" / "noop_function.py") as noop_url:
                measured["hop"] = _timed(calls, lambda n: session.post(noop_url, data=b"{}"))
            runs = (
                ("deliver", "false", timedelta(minutes=5)),
                ("ledger, live", "true", timedelta(minutes=5)),
                ("ledger, old", "true", timedelta(days=2)),
            )
            for offset, (name, ledger, age) in enumerate(runs):
                with serving("deliver", {**env, "DELIVERY_LEDGER": ledger}) as deliver_url:
                    first = (offset + 1) * 10_000_000

                    def push(n: int, url: str = deliver_url, age: timedelta = age) -> None:
                        message = {**event(n, age), "userId": "user-1"}
                        message["messageId"], message["event"] = f"push-{n:08d}", "Signed Up"
                        data = base64.b64encode(json.dumps(message).encode()).decode()
                        answer = session.post(url, json={"message": {"data": data}})
                        assert answer.json().get("reason") is None, answer.text

                    _timed(50, lambda n, start=first: push(start + n))  # warm up
                    measured[name] = _timed(calls, lambda n, start=first: push(start + 100 + n))
    return measured


def _timed(calls: int, action) -> float:
    samples = []
    for n in range(calls):
        started = time.perf_counter()
        action(n)
        samples.append(time.perf_counter() - started)
    return median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for ledger in (False, True):
        seconds, delivered = through_the_pipeline(args.events, ledger)
        rows.append(
            [
                "on" if ledger else "off",
                args.events,
                delivered,
                f"{seconds:.1f}",
                f"{delivered / seconds:,.0f}",
            ]
        )
    print(table(["ledger", "events", "delivered", "seconds to the last", "events/s"], rows))
    print()
    cost = deliver_overhead(args.calls)
    own = cost["deliver"] - cost["direct"] - cost["hop"]
    print(
        table(
            ["median per event, one at a time", "ms"],
            [
                ["requests -> stand-in directly", f"{cost['direct']:.2f}"],
                ["requests -> no-op function (the HTTP hop)", f"{cost['hop']:.2f}"],
                ["push -> deliver -> stand-in, ledger off", f"{cost['deliver']:.2f}"],
                ["deliver's own overhead (difference)", f"{own:.2f}"],
                ["push, ledger on, live event (a write)", f"{cost['ledger, live']:.2f}"],
                ["push, ledger on, 2 days old (a read, a write)", f"{cost['ledger, old']:.2f}"],
                ["the ledger's cost, live event", f"{cost['ledger, live'] - cost['deliver']:.2f}"],
                ["the ledger's cost, old event", f"{cost['ledger, old'] - cost['deliver']:.2f}"],
            ],
        )
    )


if __name__ == "__main__":
    main()
