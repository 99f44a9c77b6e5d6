"""Referral attribution end to end: a visitor lands with `?_saasquatch=...` on a page with
analytics.js and the plugin, is identified, and the identify analytics.js sent goes through the
real ingest and deliver (served, on the Pub/Sub emulator) to the SaaSquatch stand-in: the user
upsert's `cookies` is the cookie, exactly."""

from __future__ import annotations

import pytest
import requests

from tools.emulator import Emulator

from ..factories import TOKEN
from ..support.pipeline import RAW_TOPIC, Pipeline, ingest_env
from ..support.processes import Processes
from ..support.saasquatch_standin import Recorded, SaaSquatchStandIn, is_upsert
from ..support.served import Served
from .site import Browsing, squatch_encode

pytestmark = [pytest.mark.browser, pytest.mark.subprocess, pytest.mark.e2e]

REFERRAL = {
    "app.referralsaasquatch.com": {
        "test_abc123_CODE": {"codes": {"referral": "BOBTESTERSON"}, "codesExp": {}}
    }
}


def test_a_referred_visitor_identified_through_segment_is_upserted_with_the_cookie(
    browsing: Browsing,
    processes: Processes,
    emulator: Emulator,
    deliver_server: Served,
    saasquatch_api: SaaSquatchStandIn,
) -> None:
    pipeline = Pipeline(emulator, deliver_server.url)
    ingest = processes.serve("ingest", ingest_env(emulator, RAW_TOPIC))
    query = f"_saasquatch={squatch_encode(REFERRAL)}"
    browsing.open(browsing.url("www.shop.test", "landing.html", query)).close()
    app = browsing.open(browsing.url("app.shop.test", "landing.html"))  # signs up, later
    identify = browsing.identify(
        app, "new-user@example.com", {"email": "new-user@example.com", "firstName": "Ann"}
    )
    [raw] = [sent.raw for sent in browsing.api.sent if sent.path == "/v1/i"]

    # What Segment's Webhooks destination posts to ingest: the message as the browser sent it.
    answer = requests.post(
        ingest.url, data=raw, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert (answer.status_code, answer.json()) == (200, {"accepted": 1})

    def upserted() -> list[Recorded]:
        return [r for r in saasquatch_api.requests if is_upsert(r) and r.status == 200]

    assert saasquatch_api.wait_for(lambda: bool(upserted()))
    [upsert] = upserted()
    assert upsert.body["cookies"] == squatch_encode(REFERRAL)
    assert upsert.body["cookies"] == identify["integrations"]["SaaSquatch"]["cookies"]
    assert upsert.body["email"] == "new-user@example.com"
    assert pipeline.dead_letters.pull(1, timeout=1) == []
    assert browsing.problems == []
