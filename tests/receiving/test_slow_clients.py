"""Slow clients cannot starve a service: a body that stalls or drips is cut at
`BODY_TIMEOUT_SECONDS`, answered 503 (`body_timeout`, so Segment retries) and its connection
closed, while other requests are served; a body that breaks off or is not valid chunked encoding
is answered in JSON, not with a 500. Through services served by functions-framework."""

from __future__ import annotations

import json
import socket

import pytest

from tools.emulator import Emulator

from ..factories import TOKEN, identify
from ..support.pipeline import deliver_env, ingest_env
from ..support.processes import Processes
from ..support.pubsub import Topic
from ..support.raw_http import dripping, open_request, read_answer, request_head
from ..support.saasquatch_standin import SaaSquatchStandIn
from ..support.served import Served

THREADS = 4
AUTHORIZED = f"Authorization: Bearer {TOKEN}"


@pytest.fixture
def ingest(processes: Processes, emulator: Emulator, topic: Topic) -> Served:
    env = ingest_env(emulator, topic.name, THREADS=str(THREADS), BODY_TIMEOUT_SECONDS="1")
    return processes.serve("ingest", env)


def stalled(port: int) -> socket.socket:
    """A request whose headers promise 1,000 bytes of body, of which 2 arrive."""
    return open_request(port, request_head(AUTHORIZED, "Content-Length: 1000"), b'{"')


def test_stalled_bodies_on_every_thread_are_cut_and_the_next_request_is_served(
    ingest: Served, topic: Topic
) -> None:
    stalls = [stalled(ingest.port) for _ in range(2 * THREADS)]
    body = json.dumps(identify()).encode()
    whole = open_request(
        ingest.port, request_head(AUTHORIZED, f"Content-Length: {len(body)}"), body
    )
    assert read_answer(whole).json() == {"accepted": 1}
    for conn in stalls:
        answer = read_answer(conn)
        assert answer.status == 503
        assert answer.json()["reason"] == "body_timeout"
        assert answer.closed
    assert len(topic.pull(1)) == 1
    cut = [line for line in ingest.log_lines() if line.get("reason") == "body_timeout"]
    assert len(cut) == 2 * THREADS
    assert {line["outcome"] for line in cut} == {"retry"}


def test_a_body_that_drips_is_cut_at_the_same_deadline(ingest: Served) -> None:
    conn = stalled(ingest.port)
    with dripping(conn, every=0.05):
        answer = read_answer(conn)
    assert answer.status == 503
    assert answer.json()["reason"] == "body_timeout"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (("Transfer-Encoding: chunked",), b"zz\r\n"),  # not a chunk size
        (("Transfer-Encoding: chunked",), b"5\r\n{}"),  # the last chunk never ends
        (("Content-Length: 1000",), b'{"type": "identify"'),  # 19 of 1,000 bytes
    ],
    ids=["bad chunk size", "chunked, cut off", "shorter than its length"],
)
def test_a_body_that_breaks_off_or_is_malformed_gets_a_json_400(
    ingest: Served, headers: tuple[str, ...], body: bytes
) -> None:
    conn = open_request(ingest.port, request_head(AUTHORIZED, *headers), body)
    conn.shutdown(socket.SHUT_WR)  # nothing more comes; the answer can still be read
    answer = read_answer(conn)
    assert answer.status == 400
    assert answer.json()["reason"] == "malformed_body"
    assert b"Error" not in answer.body
    [line] = [line for line in ingest.log_lines() if line.get("entry_point") == "ingest"]
    assert (line["severity"], line["outcome"]) == ("WARNING", "refused")
    assert "exception" not in line


def test_gunicorns_own_error_page_never_repeats_a_credential(ingest: Served) -> None:
    secret = "s3cr3t-Token-ABC"
    conn = open_request(ingest.port, request_head(f"Authorization: Bearer {secret}\x01"))
    answer = read_answer(conn)
    assert answer.status == 400  # gunicorn's page: a control character is not valid HTTP
    assert secret.encode() not in answer.head + answer.body
    assert secret not in ingest.output()


def test_deliver_cuts_a_stalled_push_body_too(
    processes: Processes, emulator: Emulator, saasquatch_api: SaaSquatchStandIn
) -> None:
    env = deliver_env(emulator, saasquatch_api.base_url, BODY_TIMEOUT_SECONDS="1")
    deliver = processes.serve("deliver", env)
    conn = open_request(deliver.port, request_head("Content-Length: 1000"), b'{"message": ')
    answer = read_answer(conn)
    assert answer.status == 503  # Pub/Sub pushes it again
    assert answer.json()["reason"] == "body_timeout"
    assert saasquatch_api.requests == []
