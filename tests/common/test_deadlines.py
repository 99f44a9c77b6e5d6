"""Body deadlines on real loopback TCP connections: a read blocked on a client that stalls (or
drips) ends at the deadline, a read that finished in time is never cut, and writing still works
after a cut so the client can be answered."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from common.deadlines import BodyDeadlines
from common.settings import ConfigError, ServiceSettings

from ..support.raw_http import dripping


@contextmanager
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server side, client side) of one loopback TCP connection, with a guard timeout so a
    broken deadline fails the test instead of hanging it."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.settimeout(30)
    client.settimeout(30)
    with server, client:
        yield server, client


def read_until_end(server: socket.socket) -> bytes:
    received = b""
    while chunk := server.recv(65536):
        received += chunk
    return received


def test_a_read_blocked_on_a_stalled_client_ends_at_the_deadline() -> None:
    deadlines = BodyDeadlines(0.2)
    with connection() as (server, client):
        client.sendall(b'{"type": ')
        with deadlines.watching(server) as watch:
            received = read_until_end(server)
        assert received == b'{"type": '
        assert watch.expired
        client.settimeout(30)
        server.sendall(b"HTTP/1.1 503 ...")  # the answer still goes out
        assert client.recv(100) == b"HTTP/1.1 503 ..."


def test_a_client_that_drips_is_cut_at_the_same_deadline() -> None:
    deadlines = BodyDeadlines(0.3)
    with connection() as (server, client), dripping(client):
        with deadlines.watching(server) as watch:
            received = read_until_end(server)  # a gap-based timeout would never end this
        assert watch.expired
        assert received.strip() == b""


def test_a_body_read_in_time_is_never_cut() -> None:
    deadlines = BodyDeadlines(0.2)
    with connection() as (first, first_client), connection() as (second, _):
        first_client.sendall(b"{}")
        with deadlines.watching(first) as finished:
            assert first.recv(2) == b"{}"
        # The second deadline comes after the first: once it has cut its read, the watcher has
        # passed the first one too.
        with deadlines.watching(second) as later:
            assert read_until_end(second) == b""
        assert later.expired
        assert not finished.expired
        first_client.sendall(b"next request")  # the first connection still reads
        assert first.recv(100) == b"next request"


def test_many_reads_at_once_each_end_at_their_deadline() -> None:
    deadlines = BodyDeadlines(0.2)
    results: list[bool] = []

    def stalled() -> None:
        with connection() as (server, client), deadlines.watching(server) as watch:
            client.sendall(b"[")
            read_until_end(server)
            results.append(watch.expired)

    threads = [threading.Thread(target=stalled) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True] * 16


def test_without_a_socket_nothing_is_watched() -> None:
    with BodyDeadlines(0.01).watching(None) as watch:
        pass
    assert not watch.expired


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_the_setting_must_be_positive(seconds: float) -> None:
    with pytest.raises(ConfigError, match="BODY_TIMEOUT_SECONDS"):
        ServiceSettings.checked(BODY_TIMEOUT_SECONDS=seconds)
