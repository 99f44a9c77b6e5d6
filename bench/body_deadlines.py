"""What a body deadline costs each request, next to the floor of an empty `with` block.

    .venv/bin/python bench/body_deadlines.py [--requests 200000]

Each request enters and leaves `BodyDeadlines.watching` on a real socket, as ingest and deliver
do around every body read; the watcher thread is running. Best of five runs.
"""

from __future__ import annotations

import argparse
import socket
import timeit
from contextlib import nullcontext

from _support import table

from common.deadlines import BodyDeadlines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    deadlines = BodyDeadlines(10.0)
    connection, _peer = socket.socketpair()

    def watched() -> None:
        with deadlines.watching(connection):
            pass

    def floor() -> None:
        with nullcontext(connection):
            pass

    rows = []
    for name, request in (("empty with block (floor)", floor), ("watched body read", watched)):
        best = min(timeit.repeat(request, number=args.requests, repeat=5)) / args.requests
        rows.append([name, f"{best * 1e6:.2f}"])
    print(table(["what", "µs per request"], rows))


if __name__ == "__main__":
    main()
