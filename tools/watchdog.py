"""Stops what `make run` started when `make run` itself dies without stopping it (SIGKILL, a
crash, a terminal that vanished).

`make run` starts this in a session of its own (so the terminal's signals do not reach it) and
writes the process group of each thing it starts on this program's standard input, one per
line. A clean stop ends with a line `done`. The end of input without it means the writer is
gone: every group then gets SIGTERM, and SIGKILL if it has not ended within ten seconds. No
polling: the kernel closes the pipe when the writer dies, whatever killed it.

    python -m tools.watchdog
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import suppress

GRACE_SECONDS = 10.0


def alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_groups(groups: list[int]) -> None:
    for group in groups:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and any(alive(group) for group in groups):
        time.sleep(0.1)
    for group in groups:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the end of input ends it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: list[int] = []
    for line in sys.stdin:
        word = line.strip()
        if word == "done":
            return 0
        if word.isdigit():
            groups.append(int(word))
    stop_groups(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
