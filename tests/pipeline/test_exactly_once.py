"""Exactly once, at any age: a purchase delivered, SaaSquatch's memory of its idempotency key
wiped (as after its 24 hours), then the same message replayed from the dead-letter topic and
backfilled again. With the delivery ledger exactly one POST of it reaches SaaSquatch; without,
a second one does: the doubled referral reward the ledger prevents.

Everything is real but SaaSquatch: the Pub/Sub and Firestore emulators, deliver served by
functions-framework behind a push subscription, and the operator tools' own commands.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1

from common.outcomes import Reason
from pushes.dead_letters import dead_letter_message
from tools.emulator import Emulator, FirestoreEmulator

from ..factories import PROJECT, order_completed
from ..support.pipeline import RAW_TOPIC, Pipeline, deliver_env
from ..support.processes import Processes
from ..support.saasquatch_standin import TENANT, SaaSquatchStandIn, is_events
from ..support.served import Served

pytestmark = pytest.mark.e2e

KEY = "purchase-0001"


def purchase() -> dict[str, Any]:
    message = order_completed()
    message["messageId"] = KEY
    message["timestamp"] = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    return message


def lines_for(deliver: Served, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Wait for deliver's `count`-th log line about the purchase."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in deliver.results() if line.get("idempotency_key") == KEY]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def accepted_posts(saasquatch_api: SaaSquatchStandIn) -> int:
    return sum(
        1
        for request in saasquatch_api.requests
        if is_events(request) and request.status == 200 and request.body["idempotencyKey"] == KEY
    )


def tool(processes: Processes, emulator: Emulator, firestore: FirestoreEmulator, *args: str):
    env = {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "FIRESTORE_EMULATOR_HOST": firestore.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "SAASQUATCH_TENANT_ALIAS": TENANT,
    }
    result = processes.run([sys.executable, "-m", "tools", *args], env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize(("ledger", "posts"), [("true", 1), ("false", 2)], ids=["ledger", "none"])
def test_a_purchase_replayed_and_backfilled_after_saasquatch_forgot_it(
    emulator: Emulator,
    ledger_firestore: FirestoreEmulator,
    saasquatch_api: SaaSquatchStandIn,
    processes: Processes,
    tmp_path: Path,
    ledger: str,
    posts: int,
) -> None:
    env = deliver_env(emulator, saasquatch_api.base_url, ledger_firestore, DELIVERY_LEDGER=ledger)
    deliver = processes.serve("deliver", env)
    pipeline = Pipeline(emulator, deliver.url)
    saasquatch_api.add_user("user-1234", "user-1234")

    # Delivered live; then SaaSquatch forgets the key (its memory is a day, ours is not).
    message = purchase()
    pipeline.publish(message, type="track", messageId=KEY)
    assert lines_for(deliver, 1)[0]["outcome"] == "delivered"
    before = accepted_posts(saasquatch_api)
    saasquatch_api.reset()
    saasquatch_api.add_user("user-1234", "user-1234")

    # The same message on the dead-letter topic (its first POST timed out after SaaSquatch
    # recorded it), replayed by the operator...
    letter = dead_letter_message(
        json.dumps(message).encode(),
        {"type": "track", "messageId": KEY},
        reason=Reason.DELIVERY_ATTEMPTS_EXHAUSTED,
        when=datetime.now(UTC),
    )
    dead = f"projects/{PROJECT}/topics/{pipeline.dead_letters.name}"
    pubsub_v1.PublisherClient().publish(dead, letter.data, **letter.attributes).result(timeout=10)
    subscription = f"{pipeline.dead_letters.name}-pull"
    replayed = tool(
        processes, emulator, ledger_firestore,
        "dead-letters", "replay", "--subscription", subscription, "--topic", RAW_TOPIC,
        *(["--no-ledger"] if ledger == "false" else []),
    )  # fmt: skip
    # ...and backfilled from an export that overlaps what was delivered live.
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps(message) + "\n")
    backfilled = tool(
        processes, emulator, ledger_firestore,
        "backfill", str(export), "--topic", RAW_TOPIC, "--no-progress",
        *(["--no-ledger"] if ledger == "false" else []),
    )  # fmt: skip

    if ledger == "true":
        # The tools asked the ledger first: nothing was sent again, and they say so.
        assert "without replaying: the delivery ledger has them" in replayed.stdout
        assert "skipped 1 message the delivery ledger has" in backfilled.stderr
    else:
        assert lines_for(deliver, 3)[-1]["outcome"] == "delivered"  # all three are done
    assert before + accepted_posts(saasquatch_api) == posts


def test_deliver_itself_skips_a_replayed_event_the_ledger_has(
    emulator: Emulator,
    ledger_firestore: FirestoreEmulator,
    saasquatch_api: SaaSquatchStandIn,
    processes: Processes,
) -> None:
    """The second line of defence: a replay that did not ask the ledger (no tenant given) is
    still not sent, because deliver looks up whatever the tools mark."""
    deliver = processes.serve(
        "deliver", deliver_env(emulator, saasquatch_api.base_url, ledger_firestore)
    )
    pipeline = Pipeline(emulator, deliver.url)
    saasquatch_api.add_user("user-1234", "user-1234")
    message = purchase()
    pipeline.publish(message, type="track", messageId=KEY)
    assert lines_for(deliver, 1)[0]["outcome"] == "delivered"
    saasquatch_api.reset()
    pipeline.publish(message, type="track", messageId=KEY, origin="replay")
    second = lines_for(deliver, 2)[-1]
    assert (second["outcome"], second["reason"]) == ("delivered", "already_in_ledger")
    assert second["ledger_looked_up"] is True
    assert accepted_posts(saasquatch_api) == 0
