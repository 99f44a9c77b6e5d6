"""Clients that keep dripping cannot hold the public receivers' threads: a request refused
before its body (no or wrong credentials) or cut at its body deadline is answered, and then its
connection is really closed (shut both ways), so the server never drains an unread body a byte
at a time. Meanwhile a normal request is answered. Over real sockets, served by
functions-framework (gunicorn), on both public targets."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tools.emulator import Emulator

from ..factories import PROJECT, TOKEN, identify
from ..support.pipeline import ingest_env
from ..support.processes import Processes
from ..support.pubsub import Topic
from ..support.raw_http import open_request, read_answer, request_head
from ..support.served import Served
from ..support.webhook_signing import KID, JwksStandIn, detached_jws, new_key

THREADS = 4
DRIPPERS = 4 * THREADS
KEY = new_key()


class Dripper:
    """A connection that announced 400 MB of body and sends one byte every 50 ms until the
    server ends the connection (`ended` is set then)."""

    def __init__(self, port: int, head: str) -> None:
        self.conn = open_request(port, head, b"{")
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.conn.sendall(b" ")
            except OSError:  # EPIPE or a reset: the server closed the connection
                self.ended.set()
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


@pytest.fixture
def drippers() -> Iterator[list[Dripper]]:
    started: list[Dripper] = []
    yield started
    for dripper in started:
        dripper.close()


def served_ingest(processes: Processes, emulator: Emulator, topic: Topic) -> Served:
    env = ingest_env(emulator, topic.name, THREADS=str(THREADS), BODY_TIMEOUT_SECONDS="2")
    return processes.serve("ingest", env)


@pytest.fixture
def jwks() -> Iterator[JwksStandIn]:
    with JwksStandIn() as stand_in:
        stand_in.keys[KID] = KEY
        yield stand_in


def served_webhook(processes: Processes, emulator: Emulator, topic: Topic, jwks_url: str) -> Served:
    env = {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "WEBHOOK_TOPIC": topic.name,
        "WEBHOOK_JWKS_URL": jwks_url,
        "WEBHOOK_TENANT_ALIASES": "t",
        "THREADS": str(THREADS),
        "BODY_TIMEOUT_SECONDS": "2",
    }
    return processes.serve("saasquatch_webhook", env)


# Made now: the receiver publishes it (it is of our tenant and inside the age window).
WEBHOOK = b'{"id":"wh-1","type":"test","tenantAlias":"t","live":false,"created":%d,"data":{}}' % (
    time.time() * 1000
)


def normal_ingest(port: int) -> int:
    body = json.dumps(identify()).encode()
    head = request_head(f"Authorization: Bearer {TOKEN}", f"Content-Length: {len(body)}")
    with open_request(port, head, body) as conn:
        conn.settimeout(10)  # a thread pool held by drippers made this wait 9 to 24 s
        return read_answer(conn).status


def normal_webhook(port: int) -> int:
    head = request_head(
        f"X-Hook-JWS-RFC-7797: {detached_jws(WEBHOOK, KEY)}", f"Content-Length: {len(WEBHOOK)}"
    )
    with open_request(port, head, WEBHOOK) as conn:
        conn.settimeout(10)
        return read_answer(conn).status


BIG = "Content-Length: 419430400"
REFUSED_INGEST = [
    request_head(BIG),  # no credentials
    request_head("Authorization: Bearer not-the-token", BIG),
    request_head(f"Authorization: Bearer {TOKEN}", BIG.replace("419430400", "6291456000")),
]


@pytest.mark.parametrize("target", ["ingest", "saasquatch_webhook"])
def test_refused_and_cut_connections_are_closed_and_a_normal_request_is_served(
    processes: Processes,
    emulator: Emulator,
    topic: Topic,
    jwks: JwksStandIn,
    drippers: list[Dripper],
    target: str,
) -> None:
    served: Served
    normal: Callable[[int], int]
    if target == "ingest":
        served, normal = served_ingest(processes, emulator, topic), normal_ingest
        heads = REFUSED_INGEST
        deadline_head = request_head(f"Authorization: Bearer {TOKEN}", "Content-Length: 1000")
    else:
        served, normal = served_webhook(processes, emulator, topic, jwks.url), normal_webhook
        heads = [request_head(BIG), request_head("X-Hook-JWS-RFC-7797: a.b.c", BIG)]
        signed = detached_jws(WEBHOOK, KEY)
        deadline_head = request_head(f"X-Hook-JWS-RFC-7797: {signed}", "Content-Length: 1000")
    for n in range(DRIPPERS):
        drippers.append(Dripper(served.port, heads[n % len(heads)]))
    # With a valid credential, the body deadline cuts a drip too (503), and closes as well.
    drippers.append(Dripper(served.port, deadline_head))
    assert normal(served.port) == 200
    for dripper in drippers:
        assert dripper.ended.wait(15), "the server kept a dripping connection open"
    assert normal(served.port) == 200


def test_the_answer_before_the_body_says_the_connection_closes(
    processes: Processes, emulator: Emulator, topic: Topic
) -> None:
    """The refusal goes out with `Connection: close`, so a client knows not to send more."""
    served = served_ingest(processes, emulator, topic)
    with open_request(served.port, request_head(BIG), b"{") as conn:
        answer = read_answer(conn)
    assert answer.status == 401
    assert b"connection: close" in answer.head.lower()
    assert answer.closed


def test_a_request_line_past_the_bound_is_refused_before_it_costs(
    processes: Processes, emulator: Emulator, topic: Topic
) -> None:
    """functions-framework starts gunicorn with no request-line limit (a 16 MB line cost 21 s of
    CPU); the bound holds wherever the service runs, and a normal request is served after."""
    served = served_ingest(processes, emulator, topic)
    for size in (8200, 2 * 1024 * 1024):
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
            with contextlib.suppress(OSError):  # the server may close while this still sends
                conn.sendall(b"POST /" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            first = conn.recv(200)
        assert first.startswith((b"HTTP/1.1 414", b"HTTP/1.1 400")), first
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        many = "".join(f"X-Field-{n}: {n}\r\n" for n in range(150))
        conn.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
        assert conn.recv(200).startswith((b"HTTP/1.1 431", b"HTTP/1.1 400"))
    assert normal_ingest(served.port) == 200


def test_no_100_continue_goes_out_before_the_credentials_are_checked(
    processes: Processes, emulator: Emulator, topic: Topic
) -> None:
    served = served_ingest(processes, emulator, topic)
    head = request_head("Authorization: Bearer guess", "Expect: 100-continue", BIG)
    with open_request(served.port, head) as conn:
        answer = read_answer(conn)
    assert answer.status == 401  # and not "100 Continue" first
    assert answer.json()["reason"] == "wrong_token"
