"""A refused request is answered before its body is sent, and its connection closed: ingest
neither reads nor buffers what the client still sends (functions-framework would drain it)."""

from __future__ import annotations

import socket

import pytest

from tools.emulator import Emulator

from ..factories import TOKEN
from ..support.pipeline import ingest_env
from ..support.processes import Processes
from ..support.pubsub import Topic
from ..support.raw_http import Answer, open_request, read_answer, request_head
from ..support.served import Served


@pytest.fixture
def ingest(processes: Processes, emulator: Emulator, topic: Topic) -> Served:
    return processes.serve("ingest", ingest_env(emulator, topic.name))


def answer_to_headers(served: Served, headers: str, method: str = "POST") -> Answer:
    """Send a request's headers and 2 bytes of a body that claims to be far longer, then wait
    for the answer (no more is ever sent)."""
    conn = open_request(served.port, request_head(*headers.splitlines(), method=method), b'{"')
    with conn:
        return read_answer(conn)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Length: 419430400\r\n", 401),  # no token, 400 MiB announced
        ("Authorization: Bearer guess\r\nContent-Length: 419430400\r\n", 401),
        ("Transfer-Encoding: chunked\r\n", 401),  # no token, no length at all
        (f"Authorization: Bearer {TOKEN}\r\nContent-Length: 6291456000\r\n", 413),
        (f"Authorization: Bearer {TOKEN}\r\nContent-Encoding: br\r\nContent-Length: 9\r\n", 415),
    ],
    ids=["no token", "wrong token", "chunked without token", "over the limit", "unknown encoding"],
)
def test_the_answer_comes_before_the_body_and_the_connection_closes(
    ingest: Served, headers: str, status: int
) -> None:
    answer = answer_to_headers(ingest, headers)
    assert answer.status == status, answer.head
    assert answer.json()["error"]
    assert answer.closed


def test_a_method_not_accepted_is_answered_before_the_body(ingest: Served) -> None:
    headers = f"Authorization: Bearer {TOKEN}\r\nContent-Length: 419430400\r\n"
    answer = answer_to_headers(ingest, headers, method="DELETE")
    assert answer.status == 405, answer.head
    assert b"Allow: POST, PUT, PATCH" in answer.head
    assert answer.json()["reason"] == "method_not_allowed"
    assert answer.closed


@pytest.mark.parametrize("around", [b"\xa0", b"\xc2\xa0", b"\xe3\x80\x80"])
def test_a_token_is_compared_exactly_but_for_ascii_white_space(
    ingest: Served, around: bytes
) -> None:
    """`str.strip()` would take U+00A0 (and other Unicode spaces) off a token: a token that is
    not byte for byte the configured one is wrong. HTTP's own white space is fine."""
    body = b'{"type":"identify","userId":"u-1"}'

    def send(token: bytes) -> Answer:
        head = (
            b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", ingest.port), timeout=30) as conn:
            conn.sendall(head + body)
            return read_answer(conn)

    refused = send(TOKEN.encode() + around)
    assert (refused.status, refused.json()["reason"]) == (401, "wrong_token")
    assert send(TOKEN.encode() + b" \t").status == 200
