"""A refused request is answered before its body is sent, and its connection closed: ingest
neither reads nor buffers what the client still sends (functions-framework would drain it)."""

from __future__ import annotations

import socket

import pytest

from tools.emulator import Emulator

from ..factories import PROJECT, TOKEN
from ..support.processes import Processes
from ..support.pubsub import Topic
from ..support.served import Served


@pytest.fixture
def ingest(processes: Processes, emulator: Emulator, topic: Topic) -> Served:
    env = {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PUBSUB_TOPIC": topic.name,
        "INGEST_TOKEN": TOKEN,
    }
    return processes.serve("ingest", env)


def answer_to_headers(served: Served, headers: str, method: str = "POST") -> tuple[bytes, bool]:
    """Send a request's headers and 2 bytes of a body that claims to be far longer, then wait
    for the answer (no more is ever sent); and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
        conn.sendall(f"{method} / HTTP/1.1\r\nHost: ingest\r\n{headers}\r\n".encode() + b'{"')
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                return received, True
            received += chunk
        return received, conn.recv(65536) == b""


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Length: 419430400\r\n", b"401"),  # no token, 400 MiB announced
        ("Authorization: Bearer guess\r\nContent-Length: 419430400\r\n", b"401"),
        ("Transfer-Encoding: chunked\r\n", b"401"),  # no token, no length at all
        (f"Authorization: Bearer {TOKEN}\r\nContent-Length: 6291456000\r\n", b"413"),
        (f"Authorization: Bearer {TOKEN}\r\nContent-Encoding: br\r\nContent-Length: 9\r\n", b"415"),
    ],
    ids=["no token", "wrong token", "chunked without token", "over the limit", "unknown encoding"],
)
def test_the_answer_comes_before_the_body_and_the_connection_closes(
    ingest: Served, headers: str, status: bytes
) -> None:
    answer, closed = answer_to_headers(ingest, headers)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b'{"error": ' in answer
    assert closed


def test_a_method_not_accepted_is_answered_before_the_body(ingest: Served) -> None:
    headers = f"Authorization: Bearer {TOKEN}\r\nContent-Length: 419430400\r\n"
    answer, closed = answer_to_headers(ingest, headers, method="DELETE")
    assert answer.startswith(b"HTTP/1.1 405"), answer[:200]
    assert b"Allow: POST, PUT, PATCH" in answer
    assert b'{"error": ' in answer
    assert closed
