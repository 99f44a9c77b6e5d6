"""No loop: a call forward sends to Segment, routed back to this bridge (a workspace that
connects the HTTP API source to the SaaSquatch destination: one toggle), never reaches
SaaSquatch. The bytes the Segment client sends are posted to ingest as Segment would post
them, each message ingest publishes is pushed to deliver, and deliver makes no SaaSquatch call:
every forwarded call carries `integrations: {"SaaSquatch": false}`. In-memory ports throughout;
the SaaSquatch stand-in counts what reaches it."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from mapper.__main__ import run as preview_mapper
from saasquatch.client import FixedApiKey
from segment_api.client import SegmentClient
from stream.forward import create_handler
from stream.forward_settings import ForwardSettings

from ..factories import PROJECT, TOKEN, envelope
from ..support.fakes import FakeTopic
from ..support.functions import MakeDeliver, MakeIngest, client_for
from ..support.saasquatch_standin import SaaSquatchStandIn

EXAMPLES = Path(__file__).resolve().parents[1] / "stream" / "saasquatch_examples"


class SegmentOnTheWire(requests.Session):
    """What Segment receives from the real `SegmentClient`: the exact bytes it posts, each
    answered 200 as Segment answers a batch it took."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def post(self, url: str | bytes, data: Any = None, **_kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.bodies.append(data)
        answer = requests.Response()
        answer.status_code = 200
        answer._content = b'{"success":true}'
        return answer


def saasquatch_examples() -> list[dict[str, Any]]:
    """SaaSquatch's example webhook of every forwarded type, made now (so the events are
    recent enough for deliver to send, were they not excluded)."""
    now = int(time.time() * 1000)
    hooks = []
    for path in sorted(EXAMPLES.glob("*.json")):
        hook = json.loads(path.read_text())
        hooks.append({**hook, "id": path.stem, "created": now})
    return hooks


def forwarded_batches() -> list[bytes]:
    """Every example through forward's handler to the Segment client, as sent."""
    wire = SegmentOnTheWire()
    settings = ForwardSettings.checked(GOOGLE_CLOUD_PROJECT=PROJECT, SEGMENT_WRITE_KEY="wk")
    segment = SegmentClient("https://api.segment.io", FixedApiKey("wk"), timeout=2, session=wire)
    forward = client_for(create_handler(settings, segment=segment, dead_letters=FakeTopic()))
    for hook in saasquatch_examples():
        raw = json.dumps(hook).encode()
        push = envelope(raw, message_id=hook["id"])
        assert forward.post("/", json=push).json == {"outcome": "delivered"}
    assert len(wire.bodies) == len(list(EXAMPLES.glob("*.json")))
    return wire.bodies


def test_a_forwarded_call_routed_back_through_ingest_and_deliver_makes_no_saasquatch_call(
    make_ingest: MakeIngest,
    make_deliver: MakeDeliver,
    raw_events: FakeTopic,
    saasquatch_api: SaaSquatchStandIn,
    dead_lettered: FakeTopic,
) -> None:
    ingest, deliver = make_ingest(), make_deliver()
    batches = forwarded_batches()
    for body in batches:
        answer = ingest.post(
            "/v1/batch",
            data=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.json
    published = raw_events.pull()
    assert len(published) == len(batches)  # one call per webhook, each on the topic
    answers = [
        deliver.post("/", json=envelope(message.data, message.attributes)) for message in published
    ]
    excluded = {"outcome": "ignored", "reason": "excluded_by_integrations"}
    assert [(answer.status_code, answer.json) for answer in answers] == [(200, excluded)] * len(
        published
    )
    assert {json.loads(message.data)["type"] for message in published} == {"identify", "track"}
    assert [(sent.method, sent.path) for sent in saasquatch_api.requests] == []
    assert dead_lettered.pull() == []


def test_the_mapper_preview_plans_no_call_for_a_forwarded_batch() -> None:
    """`python -m mapper` (in process) on the batches as sent: every call ignored."""
    for body in forwarded_batches():
        out, err = io.StringIO(), io.StringIO()
        assert preview_mapper(io.StringIO(body.decode()), out, err, []) == 0, err.getvalue()
        plans = [json.loads(line) for line in out.getvalue().splitlines()]
        assert plans and all(plan["outcome"] == "ignored" for plan in plans)
        assert {plan["reason"] for plan in plans} == {"excluded_by_integrations"}
        assert not any(plan.get("calls") for plan in plans)


@pytest.mark.parametrize("name", ["SaaSquatch", "SaaSquatch v2"])
def test_every_forwarded_call_names_both_saasquatch_destinations_off(name: str) -> None:
    for body in forwarded_batches():
        for call in json.loads(body)["batch"]:
            assert call["integrations"][name] is False
            assert call["context"]["saasquatch"]["webhookId"]
