"""A bound on how long a request body may take to arrive, whatever the client does.

gunicorn reads a body with blocking receives and no timeout, and functions-framework has no
setting that adds one: a client that sends its headers and then stops (or drips a byte every few
seconds) would hold a request thread for as long as it likes. Here one watcher thread per process
keeps the deadline of every body being read; when one passes, it shuts that connection for
reading. The receive blocked on it returns at once, as if the body had ended, and the handler
answers. Writing still works, so the client gets that answer.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

# The watcher wakes at most this often, however many requests come and go: waking for every
# request's deadline would cost a thread switch per request.
RESOLUTION_SECONDS = 0.25


@dataclass(slots=True)
class Watch:
    """One body being read: `expired` once its deadline shut the connection for reading."""

    connection: socket.socket | None
    deadline: float = 0.0
    done: bool = False
    expired: bool = False


class BodyDeadlines:
    """Deadlines for body reads, `seconds` each, enforced by one lazily started thread.

    A read is cut between `seconds` and `seconds` plus the watcher's resolution after it began.
    Every deadline is `seconds` after its start, so they fall due in the order the reads began
    and a queue (not a heap) keeps them.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._resolution = min(RESOLUTION_SECONDS, seconds / 4)
        self._wake = threading.Condition(threading.Lock())
        self._pending: deque[Watch] = deque()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, connection: socket.socket | None) -> Iterator[Watch]:
        """Bound the reads done inside on `connection` (gunicorn's `environ["gunicorn.socket"]`;
        `None` where there is no socket to bound, such as Flask's test client)."""
        watch = Watch(connection)
        if connection is None:
            yield watch
            return
        with self._wake:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(
                    target=self._run, name="body-deadlines", daemon=True
                )
                self._thread.start()
            watch.deadline = time.monotonic() + self.seconds
            self._pending.append(watch)
            if len(self._pending) == 1:
                self._wake.notify()  # the watcher was waiting for work
        try:
            yield watch
        finally:
            # Read by the watcher at its next turn (no lock needed); the socket is let go now,
            # since the watch may wait in the queue until its deadline comes round.
            watch.done = True
            watch.connection = None

    def _run(self) -> None:
        pending = self._pending
        with self._wake:
            while True:
                if not pending:
                    self._wake.wait()
                    continue
                now = time.monotonic()
                while pending and (pending[0].done or pending[0].deadline <= now):
                    watch = pending.popleft()
                    if not watch.done:
                        self._cut(watch)
                if pending:
                    self._wake.wait(max(pending[0].deadline - now, self._resolution))

    @staticmethod
    def _cut(watch: Watch) -> None:
        connection = watch.connection
        if connection is None:  # the read finished just now
            return
        watch.expired = True
        with suppress(OSError):  # already closed by the server or the client
            connection.shutdown(socket.SHUT_RD)
