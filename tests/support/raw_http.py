"""HTTP spoken byte by byte over a socket, for what a client library would never send: a body
that stops, drips or lies about its length, headers that are not valid HTTP."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    head: bytes
    body: bytes
    closed: bool  # the server closed the connection after the answer

    def json(self) -> Any:
        return json.loads(self.body)


def open_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    """A connection that has sent `head` (request line and headers, no blank line) and the
    start of a body; the caller decides what, if anything, follows."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(head.encode() + b"\r\n\r\n" + body)
    return conn


def read_answer(conn: socket.socket) -> Answer:
    """The answer on `conn` (one with a `Content-Length`), and whether the server then closed."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {received[:200]!r}")
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    status = int(head.split(b" ", 2)[1])
    return Answer(status, head, body[:length], closed=conn.recv(65536) == b"")


def request_head(*headers: str, method: str = "POST", path: str = "/") -> str:
    """A request line and `headers` (each `"Name: value"`)."""
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: segment-saasquatch", *headers])


@contextmanager
def dripping(conn: socket.socket, every: float = 0.02) -> Iterator[None]:
    """While inside, `conn` sends a space (JSON whitespace) every `every` seconds: a client that
    never stalls long enough for a gap-based timeout, and never finishes."""
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(every):
            try:
                conn.sendall(b" ")
            except OSError:
                return

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        yield
    finally:
        stop.set()
        dripper.join()
